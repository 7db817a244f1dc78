"""Per-day performance counters of every action and journey: the page's performance table.

The process step's fold counts, for each action, and for each journey when the action
came from a journey's step:

- ``sent``: messages handed to a channel's sender (a held one when it is released);
- the senders' outcomes (``OUTCOMES``): the first of each kind per message, as the
  customer's contact history records them; unknown and repeated outcomes count nothing;
- per holdout group (``treatment``, ``control``): ``exposures`` (a marketing action
  decided for a customer, sent or held out), ``conversions`` (an exposure followed by a
  purchase within the conversion window: the holdout rule of
  ``pipeline._attribute_conversion``) and ``revenue``, the value of each such purchase, per
  currency, in hundredths (``stream.core.money``). A purchase converts every exposure in
  its window and its value counts for each of them, as its conversion does: an action's
  revenue is what the customers it reached bought afterwards, and rows of several actions
  do not add up to total sales.

A batch's counts go to one census-table row per partition and UTC day of the processing
clock (``day_key``): a batch rewrites only today's row, and the rows survive restarts and
move with their partition, as the census does. ``days_key`` lists the days a partition
has rows for; when a new day's row starts, the rows older than ``DAYS_KEPT`` days are
deleted. The API adds up the rows of a range of days (``in_range``) over every partition
and turns the sum into the table (``report``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from typing import Any, Protocol

import orjson

from stream.core import census
from stream.core.batch import Writes
from stream.core.decide.holdout import CONTROL, TREATMENT
from stream.core.decide.records import JourneyRef
from stream.core.money import DEFAULT_CURRENCY, from_hundredths, hundredths
from stream.core.outcomes import Outcome, OutcomeStatus
from stream.core.pipeline import StepResult
from stream.core.propensity import UpdateKind
from stream.core.state import CustomerState

DAY_MS = 86_400_000
DAYS_KEPT = 90  # a partition keeps the rows of its last 90 days (today included)
OUTCOMES = (
    "delivered",
    "opened",
    "clicked",
    "converted",
    "dismissed",
    "bounced",
    "unsubscribed",
    "failed",
)  # schemas/outcome.schema.json
GROUPS = (TREATMENT, CONTROL)
SCOPES = ("action", "journey")
_EPOCH = date(1970, 1, 1)
_ISO_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_DAY_KEY = re.compile(rb"^p([0-9]+)/day/([0-9]{4}-[0-9]{2}-[0-9]{2})$")


class CensusRows(Protocol):
    """Read access to the census table by key (the fold's ``StoredView`` has it)."""

    def census_row(self, key: bytes) -> bytes | None:
        """The census-table value of a key."""


# --- counting (the fold) -----------------------------------------------------------------


def count_step(counts: Counter[str], result: StepResult) -> None:
    """Add what one step sent, exposed and converted to ``counts``."""
    for action in result.to_send:
        _add(counts, action.action, journey_id(action.journey), "sent")
    for update in result.learning:
        if update.kind is UpdateKind.EXPOSURE:
            _add(counts, update.action, update.journey, f"exposures:{update.group}")
        elif update.kind is UpdateKind.CONVERSION:
            _add(counts, update.action, update.journey, f"conversions:{update.group}")
            revenue = hundredths(update.value)
            if revenue:
                currency = update.currency or DEFAULT_CURRENCY
                measure = f"revenue:{update.group}:{currency}"
                _add(counts, update.action, update.journey, measure, revenue)


def count_outcome(counts: Counter[str], outcome: Outcome, result: StepResult) -> None:
    """Add a sender's outcome to the action (and journey) of the message it answers."""
    if result.outcome is not OutcomeStatus.APPLIED or outcome.outcome not in OUTCOMES:
        return
    contact = _contact(result.state, outcome.action_id)
    if contact is not None:
        _add(counts, contact["action"], contact.get("journey", ""), outcome.outcome)


def journey_id(journey: JourneyRef | None) -> str:
    """The id of the journey behind an action, or "" for an always-on action."""
    return journey.journey if journey is not None else ""


def _add(counts: Counter[str], action: str, journey: str, measure: str, amount: int = 1) -> None:
    counts[f"action:{action}:{measure}"] += amount
    if journey:
        counts[f"journey:{journey}:{measure}"] += amount


def _contact(state: CustomerState, action_id: str) -> dict[str, Any] | None:
    """The newest contact of the message ``action_id`` (the one an outcome was applied to)."""
    contact: dict[str, Any]
    for contact in reversed(state.contacts):
        if contact["action_id"] == action_id:
            return contact
    return None


# --- the day rows -------------------------------------------------------------------------


def day_of(ms: int) -> int:
    """The UTC day (days since 1970-01-01) an instant falls on."""
    return ms // DAY_MS


def iso_day(day: int) -> str:
    """A day as ``YYYY-MM-DD``."""
    return (_EPOCH + timedelta(days=day)).isoformat()


def parse_day(text: str) -> int:
    """The day of a ``YYYY-MM-DD`` date; raises ValueError for anything else."""
    if not _ISO_DAY.match(text):
        raise ValueError(f"{text[:40]!r} is not a date (YYYY-MM-DD)")
    return (date.fromisoformat(text) - _EPOCH).days


def day_key(partition: int, day: int) -> bytes:
    """The census-table key of a partition's performance row for one day."""
    return f"p{partition}/day/{iso_day(day)}".encode()


def days_key(partition: int) -> bytes:
    """The census-table key listing the days a partition has performance rows for."""
    return f"p{partition}/days".encode()


def parse_day_key(key: bytes) -> tuple[int, int] | None:
    """(partition, day) of a performance row's key; None for any other census key."""
    match = _DAY_KEY.match(key)
    if match is None:
        return None
    return int(match.group(1)), parse_day(match.group(2).decode())


def is_performance_key(key: bytes) -> bool:
    """True for the keys this module writes (a partition's census row is not one)."""
    return b"/" in key


def day_writes(counts: Counter[str], partition: int, now_ms: int, stored: CensusRows) -> Writes:
    """The census-table writes that add a batch's counts to today's row, pruning old days.

    Nothing to count: no write. The first row of a new day lists the day and deletes the
    rows of days more than ``DAYS_KEPT - 1`` days before it.
    """
    if not any(counts.values()):
        return {}
    today = day_of(now_ms)
    key = day_key(partition, today)
    stored_row = stored.census_row(key)
    row = census.apply(orjson.loads(stored_row) if stored_row is not None else None, [counts])
    writes: Writes = {key: orjson.dumps(row)}
    listed = stored.census_row(days_key(partition))
    days: list[int] = orjson.loads(listed) if listed is not None else []
    if today not in days:
        kept = [day for day in days if day > today - DAYS_KEPT]
        writes.update({day_key(partition, day): None for day in days if day not in kept})
        writes[days_key(partition)] = orjson.dumps(sorted([*kept, today]))
    return writes


# --- reading (the API) --------------------------------------------------------------------


def in_range(rows: Iterable[tuple[int, bytes, bytes]], first: int, last: int) -> dict[str, int]:
    """The performance rows of days ``first`` to ``last`` (inclusive), added up.

    ``rows``: (partition asked, key, value) of census-table items; other keys, and rows
    of another partition than the one asked for (a store without partitions yields every
    item for each), are skipped.
    """
    chosen = []
    for partition, key, value in rows:
        parsed = parse_day_key(key)
        if parsed is not None and parsed[0] == partition and first <= parsed[1] <= last:
            chosen.append(Counter(orjson.loads(value)))
    return census.apply(None, chosen)


def report(total: Mapping[str, int]) -> dict[str, list[dict[str, Any]]]:
    """The performance table of summed counts: a row per action and per journey."""
    measures: dict[tuple[str, str], dict[str, int]] = {}
    for key, count in total.items():
        scope, _, rest = key.partition(":")
        name, _, measure = rest.partition(":")
        if scope in SCOPES and measure:
            measures.setdefault((scope, name), {})[measure] = int(count)
    tables: dict[str, list[dict[str, Any]]] = {"actions": [], "journeys": []}
    for (scope, name), counted in measures.items():
        tables[f"{scope}s"].append({scope: name, **_row(counted)})
    for rows in tables.values():
        rows.sort(key=lambda row: (-row["sent"], -row["treatment"]["exposures"], _name(row)))
    return tables


def _name(row: Mapping[str, Any]) -> str:
    return str(row.get("action", row.get("journey", "")))


def _row(measures: Mapping[str, int]) -> dict[str, Any]:
    """One action's (or journey's) row: the message funnel, revenue and uplift."""
    arms = {group: _arm(measures, group) for group in GROUPS}
    treated, control = arms[TREATMENT]["conversion_rate"], arms[CONTROL]["conversion_rate"]
    return {
        "sent": measures.get("sent", 0),
        **{outcome: measures.get(outcome, 0) for outcome in OUTCOMES},
        "revenue": arms[TREATMENT]["revenue"],
        **arms,
        "uplift": None if treated is None or control is None else round(treated - control, 4),
    }


def _arm(measures: Mapping[str, int], group: str) -> dict[str, Any]:
    """Exposures, conversions, conversion rate and revenue of one holdout group."""
    exposures = measures.get(f"exposures:{group}", 0)
    conversions = measures.get(f"conversions:{group}", 0)
    prefix = f"revenue:{group}:"
    revenue = {
        measure.removeprefix(prefix): from_hundredths(count)
        for measure, count in sorted(measures.items())
        if measure.startswith(prefix)
    }
    return {
        "exposures": exposures,
        "conversions": conversions,
        "conversion_rate": round(conversions / exposures, 4) if exposures else None,
        "revenue": revenue,
    }
