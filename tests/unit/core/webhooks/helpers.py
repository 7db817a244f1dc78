"""Shared by the webhook tests: the documented samples, our identifiers, contract checks."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson

from stream.core.outcomes import Outcome, decode_outcome
from stream.core.webhooks import WebhookBatch
from tests.unit.core.decide.helpers import CATALOG

SAMPLES = Path(__file__).resolve().parent / "samples"
ACTION_ID = "act-5f1c0e2a9b"
CUSTOMER_ID = "C000123"
OURS = {"action_id": ACTION_ID, "customer_id": CUSTOMER_ID}
# Every address that appears in the providers' samples: none may reach an outcome.
SAMPLE_ADDRESSES = (
    "example@test.com",
    "john@example.com",
    "recipient@example.com",
    "foo@example.com",
    "slava@mailgun.com",
    "christest123@test.com",
    "test@test.com",
    "bounced-address@example.com",
)


def sample(name: str) -> Any:
    """A documented sample (``samples/<provider>/<file>``), parsed."""
    return orjson.loads((SAMPLES / name).read_bytes())


def sample_bytes(name: str) -> bytes:
    """A documented sample's bytes, exactly as stored."""
    return (SAMPLES / name).read_bytes()


def body(value: Any) -> bytes:
    """JSON bytes of a payload."""
    return orjson.dumps(value)


def copied(value: Any) -> Any:
    """A deep copy, for variations of a sample."""
    return copy.deepcopy(value)


def assert_valid_outcomes(batch: WebhookBatch) -> list[Outcome]:
    """Each outcome record follows schemas/outcome.schema.json, decodes as the outcomes step
    decodes it, and carries no address from the samples; the decoded outcomes."""
    decoded = []
    for _, record in batch.outcomes:
        assert CATALOG.message_error("outcome", record) is None, record
        raw = orjson.dumps(record)
        for address in SAMPLE_ADDRESSES:
            assert address.encode() not in raw, (address, record)
        outcome = decode_outcome(raw, CATALOG, 64_000)
        assert isinstance(outcome, Outcome), outcome
        decoded.append(outcome)
    return decoded


def only_outcome(batch: WebhookBatch) -> dict[str, Any]:
    """The one outcome record of a one-item batch (checked against the contract)."""
    assert not batch.rejected and not batch.ignored, batch
    assert [index for index, _ in batch.outcomes] == [0]
    assert_valid_outcomes(batch)
    return batch.outcomes[0][1]
