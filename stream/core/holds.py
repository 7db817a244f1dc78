"""Quiet-hours holds: an action whose ``send_after`` is in the future waits in the state.

The decision is made (and its explain record written) at once; the action itself is
kept in ``CustomerState.held`` and emitted when it comes due. At release the state is
checked again, because the night may have changed things: an open service case withdraws
a marketing message, a lost consent or hard bounce withdraws it on that channel, and a
message past ``expires_at`` is dropped. A withdrawn message frees its caps. Either way a
release record (a decision record with trigger channel ``timer``, type
``quiet_hours_release``) says what happened and why.
"""

from __future__ import annotations

from stream.core.decide.records import Action, Candidate, Decision, Reason, TriggerRef, stable_id
from stream.core.state import CustomerState, withdraw_contact
from stream.core.timers import TIMER_CHANNEL
from stream.core.timestamps import format_ms

RELEASE_TRIGGER = "quiet_hours_release"


def hold(state: CustomerState, action: Action) -> None:
    """Keep an action until its ``send_after`` (mutates the caller's copy)."""
    assert action.send_after_ms is not None
    state.held.append({"due_ms": action.send_after_ms, "action": action.to_dict()})


def release_due(
    state: CustomerState, now_ms: int, policy_version: str
) -> tuple[list[Action], list[Decision]]:
    """Take the held actions due at ``now_ms`` out of ``state``: (to send, release records)."""
    due = [h for h in state.held if h["due_ms"] <= now_ms]
    if not due:
        return [], []
    state.held = [h for h in state.held if h["due_ms"] > now_ms]
    released: list[Action] = []
    records: list[Decision] = []
    for entry in sorted(due, key=lambda h: (h["due_ms"], h["action"]["action_id"])):
        action = Action.from_dict(entry["action"])
        reason, detail = _recheck(state, action, now_ms)
        if reason is Reason.CHOSEN:
            released.append(action)
        else:
            withdraw_contact(state, action.action_id)
        records.append(_release_record(state, action, reason, detail, now_ms, policy_version))
    return released, records


def _recheck(state: CustomerState, action: Action, now_ms: int) -> tuple[Reason, str]:
    if action.category == "marketing" and state.open_cases:
        return Reason.OPEN_SERVICE_CASE, f"open case(s): {', '.join(sorted(state.open_cases))}"
    if not state.may_contact(action.channel, action.category):
        return Reason.NO_CONSENT, f"no consent on {action.channel} at release"
    if action.expires_at_ms <= now_ms:
        return Reason.EXPIRED, "expired before it could be released"
    return Reason.CHOSEN, ""


def _release_record(
    state: CustomerState,
    action: Action,
    reason: Reason,
    detail: str,
    now_ms: int,
    policy_version: str,
) -> Decision:
    released = reason is Reason.CHOSEN
    return Decision(
        decision_id=stable_id(state.customer_key, action.action_id, RELEASE_TRIGGER),
        customer_id=state.customer_key,
        trigger=TriggerRef(action.action_id, RELEASE_TRIGGER, TIMER_CHANNEL),
        stage=state.stage,
        policy_version=policy_version,
        decided_at_ms=now_ms,
        candidates=(
            Candidate(
                action.action,
                action.category,
                reason,
                detail or f"held until {format_ms(action.send_after_ms or now_ms)}, released",
                action.channel if released else None,
            ),
        ),
        actions=(action,) if released else (),
    )
