import pytest

from stream.core.identity import (
    IdentifierError,
    hash_identifier,
    normalise_email,
    normalise_phone,
    resolve_identity,
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
