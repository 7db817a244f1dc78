import pytest

from stream.core.identity import (
    KEY_ORDER,
    IdentifierError,
    hash_identifier,
    is_known,
    kind_of,
    normalise_email,
    normalise_phone,
    normalise_social_handle,
    resolve_identity,
    strength,
)


def test_email_is_trimmed_and_lower_cased_before_hashing() -> None:
    assert normalise_email("  Ann.Lee@Example.COM ") == "ann.lee@example.com"
    a = resolve_identity({"email": " Ann.Lee@Example.COM"}, "salt", "US")
    b = resolve_identity({"email": "ann.lee@example.com"}, "salt", "US")
    assert a == b
    assert a.identifiers == {"email_sha256": hash_identifier("ann.lee@example.com", "salt")}


def test_raw_email_and_phone_are_never_kept() -> None:
    identity = resolve_identity({"email": "a@b.co", "phone": "+44 20 7946 0018"}, "", "US")
    assert "email" not in identity.identifiers and "phone" not in identity.identifiers
    assert "a@b.co" not in repr(identity) and "7946" not in repr(identity)


def test_phone_is_normalised_to_e164() -> None:
    assert normalise_phone("(202) 555-0143", "US") == "+12025550143"
    assert normalise_phone("+1 202 555 0143", "DE") == "+12025550143"


def test_a_phone_that_is_not_a_number_is_refused() -> None:
    with pytest.raises(IdentifierError):
        normalise_phone("call me maybe", "US")


def test_salt_changes_the_hash() -> None:
    assert hash_identifier("x@y.z", "a") != hash_identifier("x@y.z", "b")


def test_key_prefers_customer_id_then_loyalty_then_hashed_then_anonymous() -> None:
    both = resolve_identity({"anonymous_id": "anon-1", "customer_id": "C1"}, "", "US")
    assert both.customer_key == "C1"
    assert resolve_identity({"loyalty_id": "L1", "anonymous_id": "a"}, "", "US").customer_key == (
        "loyalty:L1"
    )
    assert resolve_identity({"anonymous_id": "anon-1"}, "", "US").customer_key == "anon:anon-1"
    email_key = resolve_identity({"email": "x@y.z"}, "", "US").customer_key
    assert email_key == "email:" + hash_identifier("x@y.z", "")


def test_no_identifier_is_an_error() -> None:
    with pytest.raises(IdentifierError):
        resolve_identity({}, "", "US")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("x:@Jane_Doe", "x:jane_doe"),
        (" X : @Jane_Doe ", "x:jane_doe"),
        ("twitter:@JANE_DOE", "x:jane_doe"),  # one network, two names
        ("Instagram:jane.doe", "instagram:jane.doe"),
        ("mastodon:@Jane@Social.Example", "mastodon:jane@social.example"),
        ("trustpilot:6741A0c2", "trustpilot:6741A0c2"),  # not known to ignore case: kept
    ],
)
def test_social_handle_is_normalised_per_platform(raw: str, normal: str) -> None:
    assert normalise_social_handle(raw) == normal


@pytest.mark.parametrize("raw", ["@Jane_Doe", "x:", "x:@", "x:jane doe", ":jane", "x y:jane"])
def test_a_social_handle_that_is_not_platform_and_handle_is_refused(raw: str) -> None:
    with pytest.raises(IdentifierError):
        normalise_social_handle(raw)


def test_social_handle_is_hashed_like_email_and_phone_and_never_kept() -> None:
    a = resolve_identity({"social_handle": "x:@Jane_Doe"}, "salt", "US")
    b = resolve_identity({"social_handle": "twitter:jane_doe"}, "salt", "US")
    assert a == b
    assert a.identifiers == {"social_sha256": hash_identifier("x:jane_doe", "salt")}
    assert a.customer_key == "social:" + hash_identifier("x:jane_doe", "salt")
    assert "Jane" not in repr(a) and "jane" not in repr(a)


def test_social_handle_is_weaker_than_email_and_phone_and_stronger_than_a_cookie() -> None:
    assert KEY_ORDER.index("phone_sha256") < KEY_ORDER.index("social_sha256")
    assert KEY_ORDER.index("social_sha256") < KEY_ORDER.index("anonymous_id")
    handle = {"social_handle": "x:@jane"}
    assert resolve_identity({**handle, "anonymous_id": "a1"}, "", "US").customer_key.startswith(
        "social:"
    )
    assert resolve_identity({**handle, "phone": "+33612345678"}, "", "FR").customer_key.startswith(
        "phone:"
    )
    assert resolve_identity({**handle, "customer_id": "C1"}, "", "US").customer_key == "C1"
    token = resolve_identity(handle, "", "US").customer_key
    assert kind_of(token) == "social_sha256" and strength(token) == 4 and not is_known(token)
