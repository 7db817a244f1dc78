"""Ground-truth customer preferences for the simulator (pure: no Kafka, no clock).

The engine does not know these numbers; it has to learn them from the outcomes the
loopback sender (``stream.simulate.sender``) reports. A ``Preferences`` answers, for one
customer key, action and channel, how likely a message is to be clicked, and how likely a
click is to turn into an order.

Profiles:

* ``"default"``: every customer belongs to one segment, picked from a SHA-256 of the seed
  and the customer key (stable across processes and runs):

  ============== ===== ==== ===== ==== ====
  segment        share push email sms  web
  ============== ===== ==== ===== ==== ====
  app-first      35%   0.30 0.03  0.05 0.10
  email-reader   35%   0.04 0.20  0.03 0.10
  sms-responder  10%   0.05 0.03  0.25 0.08
  unresponsive   20%   0.01 0.01  0.01 0.01
  ============== ===== ==== ===== ==== ====

  A store, call-center or community-team (social) contact lands with 0.3 in every
  segment (a person talks to the customer). The channel's rate is multiplied by the
  action's multiplier (``cart_reminder`` 1.5, ``review_request`` 0.6,
  ``referral_request`` 0.5, ``win_back`` 0.7, others 1.0) and capped at 0.95.
* ``"push-only"``: every customer answers on push only (0.6), never on any other channel;
  no action multipliers. Handy to check that the engine converges on one channel.

Given a click, an order follows with ``CONVERSION_PROBABILITY`` (0.35) in every profile.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from stream.config import CHANNELS_OUT

ACTION_CHANNELS: tuple[str, ...] = CHANNELS_OUT  # every action topic's channel
CONVERSION_PROBABILITY = 0.35
MAX_CLICK_PROBABILITY = 0.95
IN_PERSON_RESPONSE = 0.3


@dataclass(frozen=True, slots=True)
class Segment:
    """A group of customers sharing one response rate per channel."""

    name: str
    share: float
    response: Mapping[str, float]


def _segment(name: str, share: float, **digital: float) -> Segment:
    """A segment with the given digital rates and the in-person rate on store, call center
    and social (the community team's reply)."""
    in_person = ("call_center", "store", "social")
    response = {**dict.fromkeys(in_person, IN_PERSON_RESPONSE), **digital}
    return Segment(name, share, MappingProxyType(response))


DEFAULT_SEGMENTS: tuple[Segment, ...] = (
    _segment("app-first", 0.35, push=0.30, email=0.03, sms=0.05, web=0.10),
    _segment("email-reader", 0.35, push=0.04, email=0.20, sms=0.03, web=0.10),
    _segment("sms-responder", 0.10, push=0.05, email=0.03, sms=0.25, web=0.08),
    _segment("unresponsive", 0.20, push=0.01, email=0.01, sms=0.01, web=0.01),
)
DEFAULT_ACTION_MULTIPLIERS: Mapping[str, float] = MappingProxyType(
    {
        "cart_reminder": 1.5,
        "complete_the_look": 1.0,
        "review_request": 0.6,
        "referral_request": 0.5,
        "win_back": 0.7,
    }
)
PUSH_ONLY_SEGMENTS: tuple[Segment, ...] = (
    Segment(
        "push-only",
        1.0,
        MappingProxyType(
            {channel: 0.6 if channel == "push" else 0.0 for channel in ACTION_CHANNELS}
        ),
    ),
)


@dataclass(frozen=True, slots=True)
class Preferences:
    """Deterministic ground truth: segment, click and conversion probabilities per customer."""

    profile: str
    seed: int
    segments: tuple[Segment, ...]
    action_multipliers: Mapping[str, float] = field(default_factory=dict)
    conversion_rate: float = CONVERSION_PROBABILITY

    def segment(self, customer_key: str) -> str:
        """Name of the customer's segment; the same for the same seed and key, always."""
        return self._segment_of(customer_key).name

    def click_probability(self, customer_key: str, action: str, channel: str) -> float:
        """Chance that ``action`` sent on ``channel`` is clicked (or answered), in [0, 0.95]."""
        base = self._segment_of(customer_key).response.get(channel, 0.0)
        return min(MAX_CLICK_PROBABILITY, base * self.action_multipliers.get(action, 1.0))

    def conversion_probability(self, customer_key: str, action: str) -> float:
        """Chance that a click leads to an order (the same for every customer and action)."""
        return self.conversion_rate

    def _segment_of(self, customer_key: str) -> Segment:
        """The segment the key's uniform draw falls in (the last one absorbs rounding)."""
        draw = _uniform(self.seed, customer_key)
        cumulative = 0.0
        for candidate in self.segments:
            cumulative += candidate.share
            if draw < cumulative:
                return candidate
        return self.segments[-1]


PROFILES: tuple[str, ...] = ("default", "push-only")


def preferences_for(profile: str, seed: int) -> Preferences:
    """The ground truth of a named profile; ValueError for an unknown name."""
    if profile == "default":
        return Preferences(profile, seed, DEFAULT_SEGMENTS, DEFAULT_ACTION_MULTIPLIERS)
    if profile == "push-only":
        return Preferences(profile, seed, PUSH_ONLY_SEGMENTS)
    raise ValueError(f"unknown preference profile {profile!r}; known: {', '.join(PROFILES)}")


def _uniform(seed: int, customer_key: str) -> float:
    """A number in [0, 1) from SHA-256 of seed and key (not ``hash()``, which is salted)."""
    digest = hashlib.sha256(f"{seed}\x00{customer_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
