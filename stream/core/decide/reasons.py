"""Every reason code of an explain record in plain words, for the people who read them.

One mapping for every ``Reason``: the API adds the words beside the code
(``with_reason_text``), and the page shows both, e.g. "Contact limit reached
(contact_cap)". A test checks that no code is left without words.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from stream.core.decide.records import Reason

REASON_TEXT: Mapping[Reason, str] = MappingProxyType(
    {
        Reason.CHOSEN: "Chosen: the best action for this customer now",
        Reason.TRIGGER_CONDITION: "Trigger condition not met",
        Reason.NOT_ELIGIBLE: "Customer not eligible",
        Reason.NOT_APPLICABLE: "Does not apply to this situation",
        Reason.NOT_SUITABLE: "Not suitable for this customer",
        Reason.CONDITION_ERROR: "A policy condition could not be evaluated",
        Reason.OPEN_SERVICE_CASE: "Paused while a service case is open",
        Reason.COOLDOWN: "Too soon after the last one",
        Reason.ALREADY_SENT: "Already sent as often as allowed",
        Reason.UNREACHABLE: "No address for the customer on its channels",
        Reason.NO_CONSENT: "No consent on its channels",
        Reason.CONTACT_CAP: "Contact limit reached",
        Reason.CHANNEL_TAKEN: "Another action took the channel",
        Reason.OUTRANKED: "Another action ranked higher",
        Reason.EXPIRED: "Expired before it could be sent",
        Reason.FATIGUED: "Channel resting: recent messages went unanswered",
        Reason.EXPERIMENT_ARM: "Customer is in another arm of the experiment",
        Reason.HOLDOUT: "Control group: decided but not sent",
        Reason.JOURNEY_EXITED: "Its journey run ended before it was sent",
    }
)


def describe(code: str) -> str:
    """The plain words for a reason code (the code itself if this version does not know it)."""
    try:
        return REASON_TEXT[Reason(code)]
    except ValueError:
        return code


def with_reason_text(record: Mapping[str, Any]) -> dict[str, Any]:
    """An explain record whose candidates carry ``reason_text`` beside their ``reason``."""
    candidates = record.get("candidates")
    if not isinstance(candidates, list):
        return dict(record)
    return {
        **record,
        "candidates": [
            {**candidate, "reason_text": describe(str(candidate.get("reason", "")))}
            if isinstance(candidate, dict)
            else candidate
            for candidate in candidates
        ],
    }
