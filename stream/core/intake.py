"""The ingest and outcomes steps' pure batches: validate input, address it inward.

- ``ingest_batch``: each ingress record is decoded and validated (``decode_event``); a
  valid event goes to the identity-events topic keyed by its strongest identifier (the
  resolve step owns that identifier's alias there), or straight to its profile when that
  identifier is a customer id (``route_of``); anything else is a dead letter with its
  reason.
- ``outcomes_batch``: each sender's outcome is validated and re-keyed to the customer's
  partition of the customer-events topic.
- ``learn_partition``: learning updates (keyed by action) are counted into the action's
  propensity row; every changed row is published to the compacted model topic.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from stream.core.batch import BatchResult, DeadLetter, Destination, Output, processing_error
from stream.core.events import DecodeOptions, Rejection, decode_event
from stream.core.identity import is_known
from stream.core.messages import EventMessage, OutcomeMessage, encode
from stream.core.outcomes import decode_outcome
from stream.core.propensity import LearningUpdate, fold
from stream.core.schemas import SchemaCatalog
from stream.core.social import POST_TYPES
from stream.core.stored import PROPENSITY

IngressRecord = tuple[str | None, bytes | None, int | None]  # channel, value, timestamp ms


def ingest_batch(
    records: Sequence[IngressRecord], options: DecodeOptions, now_ms: int
) -> BatchResult:
    """Valid events addressed to the resolve step; the rest are dead letters."""
    result = BatchResult()
    for position, (channel, value, timestamp_ms) in enumerate(records):
        try:
            decoded = decode_event(value, channel, options, now_ms)
        except Exception as exc:  # decode never raises on input; this is a bug
            result.dead_letters.append(processing_error(position, exc))
            continue
        if isinstance(decoded, Rejection):
            result.dead_letters.append(DeadLetter(position, decoded))
            continue
        result.tally.count("events", decoded.channel, decoded.type)
        if decoded.type in POST_TYPES:  # a social post: its sentiment, from ingest
            sentiment = str(decoded.properties["sentiment"])
            source = str(decoded.properties["sentiment_source"])
            result.tally.count("social_posts", decoded.type, sentiment, source)
        message = EventMessage(decoded, timestamp_ms)
        key = decoded.customer_key.encode()
        result.outputs.append(Output(route_of(decoded.customer_key), key, encode(message)))
    return result


def route_of(customer_key: str) -> Destination:
    """Where an ingested event goes: straight to its profile when it is keyed by a customer id.

    The resolve step would route it to the profile its key's alias names, and a customer
    id never gets an alias: a known customer is the strongest identity, so no link makes
    it point elsewhere (``decide_link``: another known profile is a conflict, a weaker one
    merges into it). Skipping the identity round trip is then exactly as correct, and the
    event crosses Kafka once less. Any other key goes through the resolve step.
    """
    return Destination.CUSTOMER_EVENTS if is_known(customer_key) else Destination.IDENTITY_EVENTS


def outcomes_batch(
    values: Sequence[bytes | None], catalog: SchemaCatalog, max_bytes: int
) -> BatchResult:
    """Valid outcomes re-keyed to their customer; the rest are dead letters."""
    result = BatchResult()
    for position, value in enumerate(values):
        decoded = decode_outcome(value, catalog, max_bytes)
        if isinstance(decoded, Rejection):
            result.dead_letters.append(DeadLetter(position, decoded))
            continue
        key = decoded.customer_id.encode()
        message = encode(OutcomeMessage(decoded))
        result.outputs.append(Output(Destination.CUSTOMER_EVENTS, key, message))
    return result


StoredRow = Callable[[bytes], bytes | None]  # the propensity table's row of an action


def learn_partition(
    records: Sequence[tuple[bytes | None, bytes | None]], stored: StoredRow, now_ms: int
) -> BatchResult:
    """Count one partition's learning updates into their rows and publish those rows."""
    result = BatchResult()
    by_action: dict[bytes, list[LearningUpdate]] = {}
    for position, (key, value) in enumerate(records):
        try:
            update = LearningUpdate.from_message(orjson.loads(value or b""))
            if key is None or update.action.encode() != key:
                raise ValueError(f"key {key!r} is not the update's action")
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            # not an update the process step wrote: a bug
            result.dead_letters.append(processing_error(position, exc))
            continue
        by_action.setdefault(key, []).append(update)
    rows = result.writes.setdefault(PROPENSITY, {})
    for key, updates in by_action.items():
        stored_row = stored(key)
        row = fold(orjson.loads(stored_row) if stored_row is not None else None, updates, now_ms)
        value = orjson.dumps(row)
        rows[key] = value
        result.outputs.append(Output(Destination.MODEL, key, value))
    return result
