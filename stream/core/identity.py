"""Customer identifiers: normalise, hash the personal ones, pick the customer key.

Raw email addresses, phone numbers and social handles never leave this module: they are
normalised (email: trimmed, lower-cased; phone: E.164; social handle: see
``normalise_social_handle``) and replaced by a salted SHA-256.

An identifier is written as a *token*: its kind's prefix and its value (``C000123``,
``loyalty:L000123``, ``email:<sha256>``, ``phone:<sha256>``, ``social:<sha256>``,
``anon:<cookie>``). A customer key is the token of the strongest identifier a profile was
created under; the resolve step maps every other token to it (see ``stream.core.resolve``).

Strength (``KEY_ORDER``): a customer id, then a loyalty card, then the verified contact
points (an email address, a phone number: a message sent there reaches the person), then a
social handle, then a cookie. A handle is weaker than an address because it is public and
self-asserted: anyone can name it, an account is renamed and its old name taken by someone
else, and nothing we send proves it. It is stronger than a cookie because it names one
account across devices and browsers and outlives cleared cookies.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

import phonenumbers

# Strongest first: the key of an event is the first identifier it carries in this order.
KEY_ORDER: tuple[str, ...] = (
    "customer_id",
    "loyalty_id",
    "email_sha256",
    "phone_sha256",
    "social_sha256",
    "anonymous_id",
)
KEY_PREFIX: dict[str, str] = {
    "customer_id": "",
    "loyalty_id": "loyalty:",
    "email_sha256": "email:",
    "phone_sha256": "phone:",
    "social_sha256": "social:",
    "anonymous_id": "anon:",
}


# Raw identifiers an event may carry, each replaced at ingest by the hash of its normal form.
RAW_IDENTIFIERS: dict[str, str] = {
    "email": "email_sha256",
    "phone": "phone_sha256",
    "social_handle": "social_sha256",
}
# Networks whose handles ignore case (@Jane_Doe and @jane_doe are one account), and the
# names a platform is also sent under. A platform not listed keeps the handle's case:
# two accounts that differ only by case stay two.
CASE_INSENSITIVE_PLATFORMS: frozenset[str] = frozenset(
    {
        "x",
        "instagram",
        "threads",
        "facebook",
        "tiktok",
        "youtube",
        "linkedin",
        "reddit",
        "pinterest",
        "snapchat",
        "bluesky",
        "mastodon",
    }
)
PLATFORM_ALIASES: dict[str, str] = {"twitter": "x"}
_PLATFORM = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")
MAX_HANDLE_LENGTH = 100

KIND_OF_PREFIX: dict[str, str] = {prefix: kind for kind, prefix in KEY_PREFIX.items() if prefix}


def token(kind: str, value: str) -> str:
    """The token of one identifier, e.g. ``token("anonymous_id", "a1") == "anon:a1"``."""
    return KEY_PREFIX[kind] + value


def tokens(identifiers: Mapping[str, str]) -> list[str]:
    """The tokens of an event's identifiers, strongest first."""
    return [token(kind, identifiers[kind]) for kind in KEY_ORDER if identifiers.get(kind)]


def kind_of(key: str) -> str:
    """The identifier kind a token or customer key was made from."""
    prefix, colon, _ = key.partition(":")
    if colon and prefix + ":" in KIND_OF_PREFIX:
        return KIND_OF_PREFIX[prefix + ":"]
    return "customer_id"


def is_known(key: str) -> bool:
    """True for a customer id (a known customer), False for a profile keyed otherwise."""
    return kind_of(key) == "customer_id"


def strength(key: str) -> int:
    """Rank of a key's kind: 0 is the strongest (customer id), then loyalty, email, ..."""
    return KEY_ORDER.index(kind_of(key))


class IdentifierError(ValueError):
    """An identifier that cannot be normalised (e.g. a phone number that is not one)."""


@dataclass(frozen=True, slots=True)
class Identity:
    """The hashed identifiers of one event and the customer key derived from them."""

    customer_key: str
    identifiers: dict[str, str]


def normalise_email(email: str) -> str:
    """Trimmed, lower-cased email address."""
    return email.strip().lower()


def normalise_phone(phone: str, default_region: str) -> str:
    """E.164 form of a phone number; raises IdentifierError if it is not a number."""
    try:
        parsed = phonenumbers.parse(phone, default_region)
    except phonenumbers.NumberParseException as exc:
        raise IdentifierError(f"phone is not a number: {exc}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise IdentifierError("phone is not a possible number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalise_social_handle(handle: str) -> str:
    """``<platform>:<handle>`` in its normal form; raises IdentifierError if it is not one.

    The platform is trimmed and lower-cased (``twitter`` is ``x``); the handle is trimmed
    and loses one leading ``@``; where the platform's handles ignore case
    (``CASE_INSENSITIVE_PLATFORMS``) it is case-folded: ``X:@Jane_Doe`` -> ``x:jane_doe``.
    """
    platform, colon, name = handle.partition(":")
    platform = platform.strip().lower()
    platform = PLATFORM_ALIASES.get(platform, platform)
    name = name.strip().removeprefix("@")
    if not colon or not _PLATFORM.fullmatch(platform):
        raise IdentifierError("social_handle is not <platform>:<handle>, e.g. x:@Jane_Doe")
    if not name or len(name) > MAX_HANDLE_LENGTH or any(c.isspace() for c in name):
        raise IdentifierError(
            f"social_handle: a handle of 1 to {MAX_HANDLE_LENGTH} characters without spaces"
        )
    if platform in CASE_INSENSITIVE_PLATFORMS:
        name = name.casefold()
    return f"{platform}:{name}"


def hash_identifier(value: str, salt: str) -> str:
    """Salted SHA-256 hex digest of a normalised identifier."""
    return hashlib.sha256(f"{salt}{value}".encode()).hexdigest()


def resolve_identity(customer: Mapping[str, str], salt: str, default_region: str) -> Identity:
    """Hash raw email/phone/social handle, drop the raw values and derive the customer key."""
    identifiers = {
        name: value
        for name, value in customer.items()
        if name not in RAW_IDENTIFIERS and isinstance(value, str)
    }
    email = customer.get("email")
    if email is not None and "email_sha256" not in identifiers:
        identifiers["email_sha256"] = hash_identifier(normalise_email(email), salt)
    phone = customer.get("phone")
    if phone is not None and "phone_sha256" not in identifiers:
        identifiers["phone_sha256"] = hash_identifier(normalise_phone(phone, default_region), salt)
    handle = customer.get("social_handle")
    if handle is not None and "social_sha256" not in identifiers:
        identifiers["social_sha256"] = hash_identifier(normalise_social_handle(handle), salt)
    for name in KEY_ORDER:
        value = identifiers.get(name)
        if value:
            return Identity(KEY_PREFIX[name] + value, identifiers)
    raise IdentifierError("no customer identifier")
