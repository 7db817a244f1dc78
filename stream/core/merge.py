"""Merging two profiles of one person into one state: pure, commutative where it can be.

Used when an identity link shows that a profile (say an anonymous visitor's) belongs to
another (the known customer's). The profiles saw disjoint events (each event is applied
to exactly one profile), so counts add up; an event id both have seen (a duplicate
delivered to both) is counted once. Rules:

- first seen: the earliest; last update: the latest; stage: the furthest in the funnel,
  its history the union by time;
- cart: the union of the items (a product in both keeps the larger quantity);
- orders: counts, revenue and returns add up, the last order is the latest one;
- consent: the most recent profile's grants, and every opt-out of either (safety first);
- social posts: counts add up, the latest post's sentiment is kept;
- open cases, channels, contact history, sent counts, responses, recent events, seen
  event ids, pending timers (the later-armed of a name), held actions: united, bounded;
- journeys: one run per journey, the one that entered first (see ``_merge_journeys``);
- unanswered streaks (fatigue): the longer of the two per channel;
- identifiers: every kind, the known profile's value where both have one.
"""

from __future__ import annotations

from typing import Any

from stream.core.stages import Stage
from stream.core.state import (
    STAGE_HISTORY_LIMIT,
    CustomerState,
    Limits,
    amount,
    bounded_contacts,
    new_state,
)

_STAGE_ORDER = {stage.value: index for index, stage in enumerate(Stage)}
CONFLICTS_KEPT = 20  # identity conflicts a profile remembers (the latest)


def merge_in(
    state: CustomerState | None,
    customer_key: str,
    source: str,
    other: dict[str, Any],
    limits: Limits,
) -> CustomerState | None:
    """Profile ``source`` (stored form ``other``) folded into this one, once.

    None when this merge was applied already (a redelivered ``MergeIn``): the merge is
    remembered among the seen event ids, so it falls out of the same dedupe window.
    """
    merge_id = f"merge:{source}"
    if state is not None and merge_id in state.seen_event_ids:
        return None
    merged = merge_states(state or new_state(customer_key), CustomerState.from_dict(other), limits)
    merged.seen_event_ids.append(merge_id)
    return merged


def merge_states(into: CustomerState, other: CustomerState, limits: Limits) -> CustomerState:
    """``other`` folded into ``into`` (which keeps its key); neither input is changed."""
    a, b = into.copy(), other.copy()
    newer, older = (a, b) if a.updated_at_ms >= b.updated_at_ms else (b, a)
    overlap = len(set(a.seen_event_ids) & set(b.seen_event_ids))
    a.created_at_ms = _min_known(a.created_at_ms, b.created_at_ms)
    a.updated_at_ms = max(a.updated_at_ms, b.updated_at_ms)
    a.event_count = a.event_count + b.event_count - overlap
    if _STAGE_ORDER[b.stage] > _STAGE_ORDER[a.stage]:
        a.stage, a.stage_since_ms = b.stage, b.stage_since_ms
    a.stage_history = _by_time(a.stage_history, b.stage_history, "at_ms")[-STAGE_HISTORY_LIMIT:]
    a.identifiers = {**b.identifiers, **a.identifiers}
    a.timezone = newer.timezone or older.timezone
    for channel, seen in b.channels.items():
        mine = a.channels.setdefault(channel, {"events": 0, "last_seen_ms": 0})
        mine["events"] += seen["events"]
        mine["last_seen_ms"] = max(mine["last_seen_ms"], seen["last_seen_ms"])
    a.cart = _merge_carts(a.cart, b.cart)
    a.orders = _merge_orders(a.orders, b.orders)
    a.consent = {**older.consent, **newer.consent}
    a.opt_outs = {**b.opt_outs, **a.opt_outs}
    for channel in a.opt_outs:
        a.consent[channel] = False
    a.app_installed = a.app_installed or b.app_installed
    a.open_cases = {**b.open_cases, **a.open_cases}
    a.social = _merge_social(a.social, b.social)
    a.contacts = bounded_contacts(_by_time(a.contacts, b.contacts, "at_ms", "action_id"))
    a.sent_counts = _add(a.sent_counts, b.sent_counts)
    a.sent_by_channel = _add(a.sent_by_channel, b.sent_by_channel)
    a.responses = _add(a.responses, b.responses)
    a.unanswered = {
        channel: max(a.unanswered.get(channel, 0), b.unanswered.get(channel, 0))
        for channel in {*a.unanswered, *b.unanswered}
    }
    recent = _by_time(a.recent_events, b.recent_events, "at_ms", "event_id")
    a.recent_events = recent[-limits.recent_events :]
    a.seen_event_ids = list(dict.fromkeys([*b.seen_event_ids, *a.seen_event_ids]))[
        -limits.dedupe_window :
    ]
    for name, timer in b.timers.items():
        pending = a.timers.get(name)
        if pending is None or timer["armed_at_ms"] > pending["armed_at_ms"]:
            a.timers[name] = timer
    for name, at_ms in b.timer_cancelled_at.items():
        a.timer_cancelled_at[name] = max(at_ms, a.timer_cancelled_at.get(name, at_ms))
    held_ids = {h["action"]["action_id"] for h in a.held}
    a.held.extend(h for h in b.held if h["action"]["action_id"] not in held_ids)
    _merge_journeys(a, b)
    a.linked = list(dict.fromkeys([*a.linked, *b.linked, b.customer_key]))
    a.identity_conflicts = [*a.identity_conflicts, *b.identity_conflicts][-CONFLICTS_KEPT:]
    return a


def _merge_social(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Both profiles' posts: counts added, the later of the two latest posts kept."""
    if not a or not b:
        return a or b
    last_a, last_b = a["last"], b["last"]
    b_later = last_a is None or (last_b is not None and last_b["at_ms"] > last_a["at_ms"])
    return {
        "posts": _add(a["posts"], b["posts"]),
        "sentiment": _add(a["sentiment"], b["sentiment"]),
        "reviews": _add(a["reviews"], b["reviews"]),
        "last": last_b if b_later else last_a,
    }


def _merge_journeys(a: CustomerState, b: CustomerState) -> None:
    """One run per journey: the one that entered first (the conversation that began
    first goes on; on a tie, the surviving profile's); the later exit and the runs of
    both count for re-entry; an entry condition held if it held for either."""
    for journey, run in b.journeys.items():
        kept = a.journeys.get(journey)
        if kept is None or run["entered_at_ms"] < kept["entered_at_ms"]:
            a.journeys[journey] = run
    for journey, ended in b.journey_ends.items():
        mine = a.journey_ends.get(journey)
        if mine is None:
            a.journey_ends[journey] = ended
            continue
        latest = ended if ended["at_ms"] > mine["at_ms"] else mine
        a.journey_ends[journey] = {**latest, "runs": mine["runs"] + ended["runs"]}
    a.journey_conditions = sorted({*a.journey_conditions, *b.journey_conditions})


def _min_known(x: int, y: int) -> int:
    return min(v for v in (x, y) if v) if (x or y) else 0


def _by_time(
    mine: list[dict[str, Any]], theirs: list[dict[str, Any]], time_key: str, id_key: str = ""
) -> list[dict[str, Any]]:
    items = list(mine)
    if id_key:
        known = {item[id_key] for item in mine}
        items.extend(item for item in theirs if item[id_key] not in known)
    else:
        items.extend(theirs)
    return sorted(items, key=lambda item: item[time_key])


def _add(x: dict[str, int], y: dict[str, int]) -> dict[str, int]:
    return {key: x.get(key, 0) + y.get(key, 0) for key in {*x, *y}}


def _merge_carts(x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any]:
    items = {pid: dict(item) for pid, item in x["items"].items()}
    for pid, item in y["items"].items():
        mine = items.get(pid)
        if mine is None or item["quantity"] > mine["quantity"]:
            items[pid] = dict(item)
    value = amount(round(sum(float(i["quantity"] * i["price"]) for i in items.values()), 2))
    return {
        "items": items,
        "value": value,
        "updated_at_ms": max(x["updated_at_ms"], y["updated_at_ms"]),
    }


def _merge_orders(x: dict[str, Any], y: dict[str, Any]) -> dict[str, Any]:
    latest = x if (x["last_order_at_ms"] or 0) >= (y["last_order_at_ms"] or 0) else y
    return {
        "count": x["count"] + y["count"],
        "revenue": amount(round(x["revenue"] + y["revenue"], 2)),
        "returns": x["returns"] + y["returns"],
        "last_order_id": latest["last_order_id"],
        "last_order_at_ms": latest["last_order_at_ms"],
        "last_category": latest["last_category"] or x["last_category"] or y["last_category"],
        "currency": latest.get("currency") or x.get("currency") or y.get("currency"),
    }
