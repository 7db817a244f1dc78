"""Quiet-hours holds: an action whose ``send_after`` is in the future waits in the state.

The decision is made (and its explain record written) at once; the action itself is
kept in ``CustomerState.held`` and emitted when it comes due. At release the state is
checked again, because the night may have changed things: an open service case withdraws
a marketing message, a lost consent or hard bounce withdraws it on that channel, and a
message past ``expires_at`` is dropped. A withdrawn message frees its caps. A customer
whose time zone changed overnight (a trip, a corrected profile) may still be in quiet
hours at the planned release: the message is held again until they end in the new
zone, its expiry and its counted send time moved by the same amount. A journey's message
is withdrawn if its run ended before the release other than by reaching an exit node (an
exit rule, the goal, the max duration; see ``journeys.runs._finish``). Every outcome gets
a release record (a decision record with trigger channel ``timer``, type
``quiet_hours_release``) that says what happened and why.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stream.core.decide.contact import customer_zone, is_exempt, quiet_release_ms
from stream.core.decide.policy import ContactPolicy
from stream.core.decide.records import Action, Candidate, Decision, Reason, TriggerRef, stable_id
from stream.core.state import CustomerState, withdraw_contact
from stream.core.timers import TIMER_CHANNEL
from stream.core.timestamps import format_ms

RELEASE_TRIGGER = "quiet_hours_release"


def hold(state: CustomerState, action: Action) -> None:
    """Keep an action until its ``send_after`` (mutates the caller's copy)."""
    assert action.send_after_ms is not None
    state.held.append({"due_ms": action.send_after_ms, "action": action.to_dict()})


@dataclass(frozen=True)
class Release:
    """What coming due did to the held actions: sent, held again, and one record each."""

    to_send: tuple[Action, ...] = ()
    held_again: tuple[Action, ...] = ()
    records: tuple[Decision, ...] = ()


def release_due(
    state: CustomerState, now_ms: int, policy_version: str, contact: ContactPolicy
) -> Release:
    """Take the held actions due at ``now_ms`` out of ``state`` (mutated): each is sent,
    withdrawn, or held again if quiet hours still hold in the customer's zone now."""
    due = [h for h in state.held if h["due_ms"] <= now_ms]
    if not due:
        return Release()
    state.held = [h for h in state.held if h["due_ms"] > now_ms]
    send: list[Action] = []
    held_again: list[Action] = []
    records: list[Decision] = []
    for entry in sorted(due, key=lambda h: (h["due_ms"], h["action"]["action_id"])):
        action = Action.from_dict(entry["action"])
        reason, detail = _recheck(state, action, now_ms, entry.get("journey_exit"))
        again = False
        if reason is not Reason.CHOSEN:
            withdraw_contact(state, action.action_id)
        elif (later := _quiet_until(state, action, now_ms, contact)) is not None:
            action, detail = _hold_again(state, action, later, contact)
            held_again.append(action)
            again = True
        else:
            send.append(action)
        records.append(
            _release_record(state, action, reason, detail, now_ms, policy_version, again)
        )
    return Release(tuple(send), tuple(held_again), tuple(records))


def _recheck(
    state: CustomerState, action: Action, now_ms: int, journey_exit: str | None = None
) -> tuple[Reason, str]:
    if journey_exit is not None:
        return Reason.JOURNEY_EXITED, f"its journey run ended ({journey_exit}) before release"
    if action.category == "marketing" and state.open_cases:
        return Reason.OPEN_SERVICE_CASE, f"open case(s): {', '.join(sorted(state.open_cases))}"
    if not state.may_contact(action.channel, action.category):
        return Reason.NO_CONSENT, f"no consent on {action.channel} at release"
    if action.expires_at_ms <= now_ms:
        return Reason.EXPIRED, "expired before it could be released"
    return Reason.CHOSEN, ""


def _quiet_until(
    state: CustomerState, action: Action, now_ms: int, contact: ContactPolicy
) -> int | None:
    """When quiet hours end, if they hold for this action in the customer's zone now."""
    quiet = contact.quiet_hours
    if quiet is None or action.channel not in quiet.channels:
        return None
    if is_exempt(contact, action.category):
        return None
    return quiet_release_ms(now_ms, customer_zone(state.timezone, contact.default_timezone), quiet)


def _hold_again(
    state: CustomerState, action: Action, until_ms: int, contact: ContactPolicy
) -> tuple[Action, str]:
    """Hold ``action`` until ``until_ms``: its expiry and counted send time move with it."""
    shift = until_ms - (action.send_after_ms or until_ms)
    moved = replace(action, send_after_ms=until_ms, expires_at_ms=action.expires_at_ms + shift)
    hold(state, moved)
    for entry in state.contacts:
        if entry["action_id"] == action.action_id and not entry.get("withdrawn"):
            entry["send_at_ms"] = until_ms
    zone = customer_zone(state.timezone, contact.default_timezone)
    return moved, f"quiet hours in {zone.key} at release: held again until {format_ms(until_ms)}"


def _release_record(
    state: CustomerState,
    action: Action,
    reason: Reason,
    detail: str,
    now_ms: int,
    policy_version: str,
    held_again: bool = False,
) -> Decision:
    released = reason is Reason.CHOSEN
    # Held again: one release record per hold, so its id names the new release time.
    again = (str(action.send_after_ms),) if held_again else ()
    return Decision(
        decision_id=stable_id(state.customer_key, action.action_id, RELEASE_TRIGGER, *again),
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
