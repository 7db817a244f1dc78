"""The demo's simulated traffic through a real worker: actions on the right topics, explained."""

from __future__ import annotations

import re
from collections import Counter

import orjson
import pytest

from stream.core.decide import Reason
from stream.shell.watch import events_total
from stream.simulate.producer import run_simulation
from tests.integration.conftest import BROKER, ROOT, Deployment, WorkerProcess

EVENTS = 3000


@pytest.fixture(scope="module")
def shipped_policy(deployment: Deployment) -> None:
    """The shipped policy exactly as it is: Thompson sampling, control group, experiment."""
    deployment.env["JOURNEY_POLICY_FILE"] = str(ROOT / "policies" / "default.yaml")


async def test_simulated_journeys_yield_actions_on_channel_topics_and_explain_records(
    deployment: Deployment, shipped_policy: None, worker: WorkerProcess
) -> None:
    stats = await run_simulation(
        BROKER,
        deployment.settings.topics.prefix,
        customers=300,
        rate=0,
        seed=11,
        max_events=EVENTS,
        start_ms=deployment.clock().now_ms(),  # the workers' pinned clock, not today
    )
    assert stats.events_sent == EVENTS
    await deployment.wait_for(
        lambda: events_total(f"{worker.url}/metrics") == EVENTS,
        timeout_s=120,
        what=f"{EVENTS} events ingested",
    )
    topics = deployment.settings.topics
    # Enough decisions to hold a control-group customer's marketing decision (5 % of them).
    decision_records = await deployment.collect(
        [topics.decisions],
        lambda rs: len(rs) >= 200 and any(b'"holdout"' in r.value for r in rs),
        timeout_s=120,
    )
    decisions = [orjson.loads(r.value) for r in decision_records]
    wanted = {topics.actions(c) for c in ("email", "web", "call_center")}
    action_records = await deployment.collect(
        topics.all_actions, lambda rs: len(rs) >= 50 and wanted <= {r.topic for r in rs}
    )

    for record in action_records:
        action = orjson.loads(record.value)
        assert record.topic == topics.actions(action["channel"])
        assert record.key == action["customer_id"].encode()
        assert deployment.catalog.message_error("action", action) is None
    channels = Counter(orjson.loads(r.value)["channel"] for r in action_records)
    assert {"email", "web", "call_center"} <= set(channels), channels

    known_reasons = {reason.value for reason in Reason}
    suppressed = Counter()
    for decision in decisions:
        assert deployment.catalog.message_error("decision", decision) is None
        for candidate in decision["candidates"]:
            assert candidate["reason"] in known_reasons
            if candidate["outcome"] == "suppressed":
                suppressed[candidate["reason"]] += 1
    assert any(d["chosen"] == [] for d in decisions), "no fully suppressed decision"
    assert {"not_eligible", "not_applicable"} <= set(suppressed), suppressed
    # The 5% control group: decided and explained, never sent marketing (service goes).
    assert suppressed["holdout"] > 0, suppressed
    control = {d["customer_id"] for d in decisions if d["group"] == "control"}
    sent = [orjson.loads(r.value) for r in action_records]
    to_control = [a for a in sent if a["customer_id"] in control]
    assert control and all(a["category"] == "service" for a in to_control), to_control
    # The simulator's events are all valid: every DLQ reason is still at zero.
    invalid = re.findall(r"^journey_events_invalid_total\{[^}]*\} (\S+)$", worker.metrics(), re.M)
    assert invalid and all(float(value) == 0 for value in invalid)
    # Sign-ups, card scans and verified calls link identifiers (the links go back through
    # the resolve step, so they may trail the decisions); some profiles merge.
    await deployment.wait_for(
        lambda: 'journey_identity_links_total{outcome="linked"}' in worker.metrics(),
        what="identity links",
    )
    assert "journey_identity_merges_total" in worker.metrics()
