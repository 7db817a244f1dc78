"""End to end on the real broker with a real worker process: events in, state and actions out."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

from stream.core.dlq import ORIGINAL_LIMIT
from tests.integration.conftest import ROOT, Deployment, WorkerProcess
from tests.integration.events import complaint, event, order


def of(actions: list[dict[str, Any]], customer_id: str) -> list[dict[str, Any]]:
    return [a for a in actions if a["customer_id"] == customer_id]


async def test_events_from_all_six_channels_change_state_and_produce_actions(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    cid = "C100001"
    who = {"customer_id": cid}
    # Topics are not ordered with each other: wait for each channel's events to be applied
    # before the next channel speaks, as a real customer's steps are apart in time.
    journey = [
        (
            "web",
            [
                event("web", "page_view", who, {"url": "/shoes"}),
                event(
                    "web",
                    "add_to_cart",
                    who,
                    {"product_id": "P1", "price": 89.9, "category": "shoes"},
                ),
                order(cid, "O1", "shoes"),
            ],
        ),
        (
            "app",
            [
                event("app", "app_installed", who, {"platform": "ios"}),
                order(cid, "O2", "outerwear", channel="app"),
            ],
        ),
        (
            "store",
            [
                event(
                    "store", "loyalty_scan", {**who, "loyalty_id": "L100001"}, {"store_id": "S1"}
                ),
                event(
                    "store",
                    "store_purchase",
                    who,
                    {"store_id": "S1", "order_id": "O3", "value": 40.0, "category": "beauty"},
                ),
            ],
        ),
        ("email", [event("email", "email_opened", who, {"campaign": "fall"})]),
        (
            "call_center",
            [
                complaint(cid, "K1", "late delivery", severity="high"),
            ],
        ),
        (
            "social",
            [
                event(
                    "social",
                    "direct_message",
                    {**who, "social_handle": "x:@Shopper_100001"},
                    {"platform": "x", "post_id": "m1", "thread_id": "t1", "text": "Any news?"},
                )
            ],
        ),
    ]
    applied = 0
    for channel, events in journey:
        await deployment.produce(channel, events)
        applied += len(events)
        state = await deployment.wait_for(
            lambda n=applied: (s := worker.customer(cid)) and s["event_count"] == n and s,
            what=f"{applied} events of {cid} applied",
        )

    actions = of(await deployment.actions(lambda a: len(of(a, cid)) >= 6), cid)
    assert [(a["action"], a["channel"]) for a in actions if a["channel"] == "web"] == [
        ("welcome_content", "web"),
        ("loyalty_signup_nudge", "web"),
    ]
    assert sorted((a["action"], a["channel"]) for a in actions if a["channel"] != "web") == [
        ("app_download_invite", "email"),  # the onboarding journey, at the first order
        ("getting_started_series", "push"),  # its next step, at the install
        ("service_recovery", "call_center"),
        ("social_reply_private", "social"),  # the community team answers the message
    ]
    for action in actions:
        assert deployment.catalog.message_error("action", action) is None
        assert action["policy_version"] and action["decided_at"]
    by_action = {a["action"]: a for a in actions}
    assert by_action["service_recovery"]["payload"]["case_id"] == "K1"
    invite, welcome = by_action["app_download_invite"], by_action["getting_started_series"]
    assert (invite["journey"]["id"], invite["journey"]["node"]) == ("onboarding", "qr_invite")
    assert welcome["journey"]["node"] == "getting_started"
    assert welcome["journey"]["run"] == invite["journey"]["run"]

    assert set(state["channels"]) == {"web", "app", "store", "email", "call_center", "social"}
    assert state["orders"]["count"] == 3 and state["orders"]["revenue"] == 219.8
    assert state["stage"] == "engagement"
    assert [(h["from"], h["to"]) for h in state["stage_history"]] == [
        ("awareness", "acquisition"),
        ("acquisition", "onboarding"),
        ("onboarding", "engagement"),
    ]
    assert state["app_installed"] and set(state["open_cases"]) == {"K1"}
    assert state["identifiers"]["loyalty_id"] == "L100001"
    assert len(state["contacts"]) == 6
    assert "social_sha256" in state["identifiers"] and state["social"]["posts"] == {
        "direct_message": 1
    }
    # The install ended the onboarding; the complaint ended the repeat order's cross-sell
    # wait and now waits for its resolution.
    assert "inactivity" in state["timers"]
    assert {j: run["node"] for j, run in state["journeys"].items()} == {
        "complaint_recovery": "wait_resolution"
    }
    ends = {j: end["reason"] for j, end in state["journey_ends"].items()}
    assert ends == {
        "cart_abandonment": "goal",
        "onboarding": "completed",
        "post_purchase": "complaint",
    }

    records = await deployment.collect(
        [deployment.settings.topics.decisions],
        lambda rs: sum(r.key == cid.encode() for r in rs) >= 8,
    )
    decisions = [orjson.loads(r.value) for r in records if r.key == cid.encode()]
    for decision in decisions:
        assert deployment.catalog.message_error("decision", decision) is None
    # The store purchase was decided, and capped: two marketing messages a day at most.
    repeat = next(d for d in decisions if d["trigger"]["event_id"] == journey[2][1][1]["event_id"])
    assert repeat["chosen"] == [] and repeat["chosen_channel"] is None
    refill = next(c for c in repeat["candidates"] if c["action"] == "replenishment_reminder")
    assert refill["reason"] == "contact_cap" and refill["scores"]["priority"] > 0

    metrics = worker.metrics()
    assert 'journey_events_total{channel="call_center",type="complaint_opened"}' in metrics
    assert 'journey_actions_total{action="service_recovery",channel="call_center"}' in metrics
    assert 'journey_actions_total{action="social_reply_private",channel="social"}' in metrics
    assert (
        'journey_stage_transitions_total{from_stage="acquisition",to_stage="onboarding"}' in metrics
    )


async def test_open_complaint_suppresses_marketing_with_a_reason(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    cid = "C100002"
    decisions_topic = [deployment.settings.topics.decisions]
    await deployment.produce("call_center", [complaint(cid, "K2", "rude")])
    # Two ingress topics are not ordered with each other: the case must be open (the
    # complaint decided) before the order arrives, or the order may be decided first.
    await deployment.collect(decisions_topic, lambda rs: any(r.key == cid.encode() for r in rs))
    await deployment.produce("web", [order(cid, "O21")])
    records = await deployment.collect(
        [deployment.settings.topics.decisions],
        lambda rs: sum(r.key == cid.encode() for r in rs) >= 3,
    )
    decisions = [orjson.loads(r.value) for r in records if r.key == cid.encode()]
    # The first order starts the onboarding journey; its invitation is marketing.
    onboarding = next(d for d in decisions if d.get("journey", {}).get("id") == "onboarding")
    assert onboarding["chosen"] == [] and onboarding["journey"]["node"] == "qr_invite"
    reasons = {c["action"]: c["reason"] for c in onboarding["candidates"]}
    assert reasons == {"app_download_invite": "open_service_case"}


async def console_produce(
    deployment: Deployment, channel: str, lines: list[str], *options: str
) -> None:
    """Produce ``key|value`` lines with Kafka's own Java console producer."""
    console = await asyncio.to_thread(
        subprocess.run,
        [
            str(ROOT / "deploy/local/kafka.sh"),
            "run",
            "org.apache.kafka.tools.ConsoleProducer",
            "--bootstrap-server",
            deployment.settings.broker,
            "--topic",
            deployment.settings.topics.events(channel),
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=|",
            *options,
        ],
        input="".join(f"{line}\n" for line in lines).encode(),
        capture_output=True,
        timeout=120,
    )
    assert console.returncode == 0, console.stderr.decode()[-2000:]


async def test_event_from_kafkas_console_producer_is_processed_the_same(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    cid = "C100003"
    opened = complaint(cid, "K3", "broken item")
    await console_produce(deployment, "call_center", [f"{cid}|{orjson.dumps(opened).decode()}"])
    actions = of(await deployment.actions(lambda a: len(of(a, cid)) >= 1), cid)
    assert [(a["action"], a["trigger"]["event_id"]) for a in actions] == [
        ("service_recovery", opened["event_id"])
    ]
    state = await deployment.wait_for(lambda: worker.customer(cid), what="state of C100003")
    assert set(state["open_cases"]) == {"K3"}


@pytest.mark.parametrize("codec", ["gzip", "snappy", "lz4", "zstd"])
async def test_every_compression_codec_of_the_console_producer_is_processed(
    deployment: Deployment, worker: WorkerProcess, codec: str
) -> None:
    cid = f"C1001{codec}"
    views = [event("web", "page_view", {"customer_id": cid}, {"url": f"/{n}"}) for n in range(3)]
    lines = [f"{cid}|{orjson.dumps(view).decode()}" for view in views]
    await console_produce(deployment, "web", lines, "--compression-codec", codec)
    state = await deployment.wait_for(
        lambda: (s := worker.customer(cid)) and s["event_count"] == len(views) and s,
        what=f"three {codec} events processed",
    )
    assert {v["event_id"] for v in views} <= set(state["seen_event_ids"])
    assert worker.process is not None and worker.process.poll() is None, "the worker died"


async def test_duplicate_event_ids_change_nothing(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    cid = "C100004"
    first = order(cid, "O41", "beauty")  # a first order of a consumable: one reminder
    await deployment.produce("web", [first, first])
    await deployment.produce("app", [{**first, "channel": "app"}])  # same id, other topic
    marker = event("web", "page_view", {"customer_id": cid}, {"url": "/after"})
    await deployment.produce("web", [marker])
    state = await deployment.wait_for(
        lambda: (s := worker.customer(cid)) and marker["event_id"] in s["seen_event_ids"] and s,
        what="marker event processed",
    )
    assert state["orders"]["count"] == 1 and state["event_count"] == 2
    actions = of(await deployment.actions(lambda a: len(of(a, cid)) >= 1), cid)
    assert len(actions) == 1
    assert "journey_events_duplicate_total 2.0" in worker.metrics()


BAD_INPUTS: dict[str, bytes] = {
    "invalid_json": b'{"event_id": "x", ',
    "invalid_utf8": b'{"event_id": "\xff\xfe"}',
    "not_an_object": b"[1, 2, 3]",
    "missing_field": orjson.dumps({"event_id": "m1", "type": "page_view", "channel": "web"}),
    "unknown_event_type": orjson.dumps(event("web", "teleported", {"customer_id": "C9"})),
    "channel_mismatch": orjson.dumps(event("app", "app_opened", {"customer_id": "C9"})),
    "missing_identifier": orjson.dumps(event("web", "page_view", {}, {"url": "/"})),
    "schema_violation": orjson.dumps(
        event("web", "add_to_cart", {"customer_id": "C9"}, {"product_id": "P", "price": "free"})
    ),
    "invalid_timestamp": orjson.dumps(
        {
            **event("web", "page_view", {"customer_id": "C9"}, {"url": "/"}),
            "occurred_at": "2026-11-23T10:00:00",
        }
    ),
    "too_large": orjson.dumps(
        event("web", "page_view", {"customer_id": "C9"}, {"url": "/", "title": "x" * 70_000})
    ),
}


async def test_malformed_input_lands_in_the_dlq_with_reasons_and_the_worker_keeps_going(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    web_topic = deployment.settings.topics.events("web")
    await deployment.produce_raw(web_topic, list(BAD_INPUTS.values()), key=b"bad-key")
    cid = "C100005"
    await deployment.produce("call_center", [complaint(cid, "K5", "x")])
    records = await deployment.collect(
        [deployment.settings.topics.dlq], lambda rs: len(rs) >= len(BAD_INPUTS)
    )
    dlq = [orjson.loads(r.value) for r in records]
    assert sorted(d["reason"] for d in dlq) == sorted(BAD_INPUTS)
    for record, message in zip(records, dlq, strict=True):
        assert deployment.catalog.message_error("dlq", message) is None
        assert record.key == b"bad-key"
        assert base64.b64decode(message["original_b64"]) == BAD_INPUTS[message["reason"]]
        assert message["source"]["topic"] == web_topic and message["detail"]
    offsets = sorted(m["source"]["offset"] for m in dlq)
    assert len(set(offsets)) == len(BAD_INPUTS)
    actions = of(await deployment.actions(lambda a: len(of(a, cid)) >= 1), cid)
    assert actions[0]["action"] == "service_recovery"
    assert worker.process is not None and worker.process.poll() is None
    assert 'journey_events_invalid_total{reason="too_large"} 1.0' in worker.metrics()


async def test_a_one_megabyte_message_is_dead_lettered_bounded_and_the_event_behind_it_counts(
    deployment: Deployment, worker: WorkerProcess
) -> None:
    cid = "C100006"
    topic = deployment.settings.topics.events("web")
    huge = b'{"event_id": "huge", "padding": "' + b"x" * 1_000_000 + b'"}'
    behind = event("web", "page_view", {"customer_id": cid}, {"url": "/behind"})
    # One key, so one partition: the valid event is read right after the huge one.
    await deployment.produce_raw(topic, [huge, orjson.dumps(behind)], key=cid.encode())
    state = await deployment.wait_for(
        lambda: (s := worker.customer(cid)) and behind["event_id"] in s["seen_event_ids"] and s,
        what="the event behind the huge one processed",
    )
    assert state["event_count"] == 1
    records = await deployment.collect(
        [deployment.settings.topics.dlq],
        lambda rs: any(orjson.loads(r.value).get("original_size") == len(huge) for r in rs),
    )
    # The module's other bad input is small; at least once, the huge message may be
    # dead-lettered more than once, always from the same offset.
    dead = [m for m in map(orjson.loads, (r.value for r in records)) if m["original_size"] > 1e5]
    assert len({(m["source"]["partition"], m["source"]["offset"]) for m in dead}) == 1
    assert dead[0]["reason"] == "too_large" and dead[0]["source"]["topic"] == topic
    assert dead[0]["original_truncated"] is True and dead[0]["original_size"] == len(huge)
    assert dead[0]["original_sha256"] == hashlib.sha256(huge).hexdigest()
    assert base64.b64decode(dead[0]["original_b64"]) == huge[:ORIGINAL_LIMIT]
    assert deployment.catalog.message_error("dlq", dead[0]) is None
    assert worker.process is not None and worker.process.poll() is None, "the worker died"


def test_rocksdb_databases_open_with_bounded_memory(worker: WorkerProcess) -> None:
    tables = Path(worker.env["JOURNEY_DATA_DIR"])
    expected = {"customers": (16 << 20, 64 << 20), "due": (2 << 20, 8 << 20)}
    for table, (write_buffer, block_cache) in expected.items():
        databases = sorted(tables.rglob(f"{table}-*.db"))
        assert databases, f"no {table} database under {tables}"
        for database in databases:
            options = max(database.glob("OPTIONS-*")).read_text()
            assert f"  write_buffer_size={write_buffer}\n" in options
            assert "  max_write_buffer_number=2\n" in options
            assert f"capacity : {block_cache}\n" in (database / "LOG").read_text()
