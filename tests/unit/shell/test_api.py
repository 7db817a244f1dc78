"""The API's views, driven without a broker: a fake app, fake tables and a fake router."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from stream.config import Clock, Settings, load_settings
from stream.core import performance
from stream.core.decide.holdout import HoldoutPolicy
from stream.core.state import new_state
from stream.shell.api import ApiContext, ApiError, add_api, authorize, customer_key, register_api

TOKEN = "s3cret"
OWN_URL = "http://127.0.0.1:6066"
OTHER_URL = "http://10.0.0.2:6066"


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] | None = None
    content_type: str | None = None


class FakeWeb:
    """What a view answers with (Faust's ``View.json`` and ``View.bytes``)."""

    def json(self, value: Any, *, status: int = 200, headers: Any = None) -> Answer:
        return Answer(status, value, headers)

    def bytes(
        self,
        value: bytes,
        *,
        content_type: str | None = None,
        status: int = 200,
        headers: Any = None,
    ) -> Answer:
        return Answer(status, value, headers, content_type)


@dataclass
class FakeRequest:
    path: str = "/"
    headers: dict[str, str] = field(default_factory=lambda: {"Authorization": f"Bearer {TOKEN}"})
    query: dict[str, str] = field(default_factory=dict)


class FakeRouter:
    def __init__(self, owner: str | None, census_hosts: list[str] | None) -> None:
        self.owner, self.census_hosts = owner, census_hosts

    def key_store(self, table: str, key: bytes) -> str:
        if self.owner is None:
            raise KeyError(key)
        return self.owner

    def table_metadata(self, table: str) -> dict[str, Any]:
        if self.census_hosts is None:
            raise KeyError(table)
        return {host: {} for host in self.census_hosts}


class FakeApp:
    """Records the pages registered, in order."""

    def __init__(self, owner: str | None = OWN_URL, census_hosts: list[str] | None = None) -> None:
        self.pages: dict[str, Any] = {}
        self.router = FakeRouter(owner, census_hosts)

    def page(self, path: str) -> Any:
        def register(fun: Any) -> Any:
            self.pages[path] = fun
            return fun

        return register


class FakeTable:
    """A memory-store table: ``get`` and, for ``partition_items``, ``data``."""

    def __init__(self, items: dict[bytes, bytes] | None = None) -> None:
        self.data = dict(items or {})

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)


def served(
    app: FakeApp | None = None,
    settings: Settings | None = None,
    customers: dict[bytes, bytes] | None = None,
    aliases: dict[bytes, bytes] | None = None,
    decisions: dict[bytes, bytes] | None = None,
    census_rows: dict[bytes, bytes] | None = None,
    owned: set[int] | None = None,
    clock: Clock | None = None,
) -> FakeApp:
    """A fake app with the API registered on it."""
    app = app or FakeApp()
    policy: Any = SimpleNamespace(current=SimpleNamespace(holdout=HoldoutPolicy()))
    add_api(
        app,
        settings or load_settings({"JOURNEY_API_TOKEN": TOKEN, "JOURNEY_PARTITIONS": "1"}),
        FakeTable(customers),
        FakeTable(aliases),
        FakeTable(decisions),
        FakeTable(census_rows),
        policy,
        clock or Clock(),
        lambda: owned,
    )
    return app


async def get(app: FakeApp, path: str, request: FakeRequest | None = None, **params: str) -> Any:
    return await app.pages[path](FakeWeb(), request or FakeRequest(path), **params)


def test_every_view_is_registered_under_its_own_name_in_order() -> None:
    app = served()
    assert list(app.pages) == [
        "/customers/{customer_id}",
        "/customers/{customer_id}/decisions",
        "/journey/census",
        "/journey/funnel",
        "/journey/transitions",
        "/journey/performance",
        "/journey/performance/share",
        "/openapi.json",
        "/debug/state/{key}",
        "/debug/aliases/{token}",
        "/journeys",
        "/journeys/{journey_id}",
        "/ui",
        "/ui/",
        "/ui/{name}",
        "/ui/vendor/{name}",
    ]
    names = [page.__name__ for page in app.pages.values()]
    assert len(set(names)) == len(names)
    assert names[0] == "customer_view"


def test_customer_ids_are_checked_before_any_lookup() -> None:
    assert customer_key("C000123") == b"C000123"
    with pytest.raises(ApiError) as raised:
        customer_key("../etc")
    assert raised.value.status == 400 and raised.value.code == "bad_request"


def test_without_a_configured_token_the_api_is_disabled() -> None:
    with pytest.raises(ApiError) as raised:
        authorize(load_settings({}), FakeRequest())
    assert raised.value.status == 401 and "disabled" in raised.value.detail


async def test_a_wrong_token_is_refused_with_a_bearer_challenge() -> None:
    authorize(load_settings({"JOURNEY_API_TOKEN": TOKEN}), FakeRequest())
    app = served()
    answer = await get(app, "/openapi.json", FakeRequest(headers={"Authorization": "Bearer x"}))
    assert answer.status == 401
    assert answer.headers == {"WWW-Authenticate": "Bearer"}
    assert answer.body == {"error": "unauthorized", "detail": "missing or wrong bearer token"}


async def test_a_local_customer_is_answered_with_its_profile() -> None:
    app = served(customers={b"C1": new_state("C1").to_json()})
    answer = await get(app, "/customers/{customer_id}", customer_id="C1")
    assert answer.status == 200 and answer.body["customer_id"] == "C1"


async def test_an_unknown_or_malformed_customer_is_an_error() -> None:
    app = served()
    missing = await get(app, "/customers/{customer_id}", customer_id="C404")
    assert missing.status == 404 and missing.body["error"] == "not_found"
    malformed = await get(app, "/customers/{customer_id}", customer_id="a b")
    assert malformed.status == 400


async def test_a_merged_profile_redirects_to_the_one_it_merged_into() -> None:
    app = served(customers={b"C2": orjson.dumps({"merged_into": "C1"})})
    answer = await get(app, "/customers/{customer_id}/decisions", customer_id="C2")
    assert answer.status == 308
    assert answer.headers == {"Location": "/customers/C1/decisions"}


async def test_decisions_are_answered_even_without_a_profile() -> None:
    records = [{"decision_id": "d1"}]
    app = served(decisions={b"C3": orjson.dumps(records)})
    answer = await get(app, "/customers/{customer_id}/decisions", customer_id="C3")
    assert answer.status == 200
    assert answer.body == {"customer_id": "C3", "decisions": records}


async def test_every_candidates_reason_comes_in_plain_words_beside_its_code() -> None:
    records = [{"decision_id": "d1", "candidates": [{"action": "a", "reason": "contact_cap"}]}]
    app = served(decisions={b"C3": orjson.dumps(records)})
    answer = await get(app, "/customers/{customer_id}/decisions", customer_id="C3")
    [candidate] = answer.body["decisions"][0]["candidates"]
    assert (candidate["reason"], candidate["reason_text"]) == (
        "contact_cap",
        "Contact limit reached",
    )


async def test_a_request_forwarded_once_is_not_forwarded_again() -> None:
    app = served(app=FakeApp(owner=OTHER_URL))
    request = FakeRequest("/customers/C1")
    request.headers["X-Journey-Forwarded"] = "1"
    answer = await get(app, "/customers/{customer_id}", request, customer_id="C1")
    assert answer.status == 503 and "rebalance" in answer.body["detail"]


class FakeForwarder:
    """Another worker's answer, and the URLs asked."""

    def __init__(self, status: int, body: bytes, location: str) -> None:
        self.answer = status, body, location
        self.asked: list[str] = []

    async def get(self, url: Any, request: Any) -> tuple[int, bytes, str]:
        self.asked.append(str(url))
        return self.answer


async def test_a_customer_another_worker_owns_is_answered_by_it_location_included() -> None:
    app = FakeApp(owner=OTHER_URL)
    forwarder: Any = FakeForwarder(308, b'{"error": "merged"}', "/customers/C1")
    policy: Any = SimpleNamespace(current=SimpleNamespace(holdout=HoldoutPolicy()))
    context = ApiContext(
        app,
        load_settings({"JOURNEY_API_TOKEN": TOKEN}),
        customers=FakeTable(),
        aliases=FakeTable(),
        decisions=FakeTable(),
        census_table=FakeTable(),
        policy=policy,
        clock=Clock(),
        owned=lambda: {0},
        forwarder=forwarder,
    )
    register_api(context)
    answer = await get(
        app, "/customers/{customer_id}", FakeRequest("/customers/C2"), customer_id="C2"
    )
    assert forwarder.asked == [f"{OTHER_URL}/customers/C2"]
    assert answer == Answer(
        308, b'{"error": "merged"}', {"Location": "/customers/C1"}, "application/json"
    )


async def test_without_an_assignment_customer_views_ask_to_retry() -> None:
    app = served(app=FakeApp(owner=None))
    answer = await get(app, "/customers/{customer_id}", customer_id="C1")
    assert answer.status == 503 and answer.body["error"] == "unavailable"


async def test_the_census_is_this_workers_own_rows_and_the_funnel_covers_every_partition() -> None:
    rows = {b"0": orjson.dumps({"stage:awareness": 2, "since:awareness": 10})}
    app = served(app=FakeApp(census_hosts=[OWN_URL]), census_rows=rows, owned={0})
    census = await get(app, "/journey/census")
    assert census.body == {
        "partitions": [0],
        "census": {"since:awareness": 10, "stage:awareness": 2},
    }
    funnel = await get(app, "/journey/funnel")
    assert funnel.status == 200 and funnel.body["total"] == 2
    transitions = await get(app, "/journey/transitions")
    assert transitions.status == 200 and "transitions" in transitions.body


async def test_the_funnel_refuses_to_answer_with_a_partition_unowned() -> None:
    settings = load_settings({"JOURNEY_API_TOKEN": TOKEN, "JOURNEY_PARTITIONS": "2"})
    app = served(app=FakeApp(census_hosts=[OWN_URL]), settings=settings, owned={0})
    answer = await get(app, "/journey/funnel")
    assert answer.status == 503 and answer.body["detail"] == "no worker owns partition(s) [1]"


async def test_the_census_asks_to_retry_during_an_assignment() -> None:
    answer = await get(served(owned=None), "/journey/census")
    assert answer.status == 503


async def test_debug_views_show_what_this_worker_holds() -> None:
    stored = new_state("C1").to_json()
    app = served(customers={b"C1": stored}, aliases={b"loyalty:L1": b"C1"})
    state = await get(app, "/debug/state/{key}", key="C1")
    assert state.body == stored and state.content_type == "application/json"
    alias = await get(app, "/debug/aliases/{token}", token="loyalty:L1")
    assert alias.body == {"token": "loyalty:L1", "customer_key": "C1"}
    missing = await get(app, "/debug/aliases/{token}", token="loyalty:L2")
    assert missing.status == 404


async def test_the_web_page_needs_no_token_and_serves_only_plain_names() -> None:
    app = served()
    no_token = FakeRequest(headers={})
    redirect = await get(app, "/ui", no_token)
    assert redirect.status == 308 and redirect.headers == {"Location": "/ui/"}
    index = await get(app, "/ui/", no_token)
    assert index.status == 200 and index.content_type == "text/html"
    assert (await get(app, "/ui/{name}", no_token, name="..")).status == 404
    assert (await get(app, "/ui/vendor/{name}", no_token, name=".x")).status == 404


# 2026-11-23 10:00 UTC, pinned (the API's "today")
PINNED = Clock(anchor_ms=int(time.time() * 1000), start_ms=1_795_428_000_000 + 3_600_000)
TODAY = performance.day_of(PINNED.now_ms())


def performance_rows(*rows: tuple[int, int, dict[str, int]]) -> dict[bytes, bytes]:
    return {performance.day_key(p, day): orjson.dumps(row) for p, day, row in rows}


async def test_performance_sums_the_chosen_days_and_leaves_the_census_alone() -> None:
    rows = performance_rows(
        (0, TODAY, {"action:promo:sent": 2, "action:promo:exposures:treatment": 2}),
        (0, TODAY - 6, {"action:promo:sent": 3, "action:promo:exposures:treatment": 3}),
        (0, TODAY - 7, {"action:promo:sent": 50}),
    )
    rows[b"p0"] = orjson.dumps({"stage:awareness": 2})
    rows[performance.days_key(0)] = orjson.dumps([TODAY - 7, TODAY - 6, TODAY])
    app = served(app=FakeApp(census_hosts=[OWN_URL]), census_rows=rows, owned={0}, clock=PINNED)
    week = await get(app, "/journey/performance", FakeRequest(query={"days": "7"}))
    assert week.status == 200
    assert (week.body["from"], week.body["to"], week.body["days"]) == (
        "2026-11-17",
        "2026-11-23",
        7,
    )
    [promo] = week.body["actions"]
    assert (promo["action"], promo["sent"], promo["treatment"]["exposures"]) == ("promo", 5, 5)
    assert week.body["journeys"] == []
    today = await get(app, "/journey/performance", FakeRequest(query={"days": "1"}))
    assert today.body["actions"][0]["sent"] == 2
    census = await get(app, "/journey/census")
    assert census.body["census"] == {"stage:awareness": 2}  # no performance key in it


async def test_performance_asks_for_a_range_it_keeps() -> None:
    app = served(app=FakeApp(census_hosts=[OWN_URL]), owned={0}, clock=PINNED)
    for days in ("0", "91", "-1", "7.5", "x", "\uff17"):
        answer = await get(app, "/journey/performance", FakeRequest(query={"days": days}))
        assert answer.status == 400 and answer.body["error"] == "bad_request", days
    default = await get(app, "/journey/performance")
    assert default.status == 200 and default.body["days"] == 7
    for query in ({}, {"from": "2026-11-23", "to": "2026-11-22"}, {"from": "x", "to": "y"}):
        answer = await get(app, "/journey/performance/share", FakeRequest(query=query))
        assert answer.status == 400, query


async def test_performance_adds_the_share_of_every_other_worker() -> None:
    app = FakeApp(census_hosts=[OWN_URL, OTHER_URL])
    share = {"partitions": [1], "counts": {"action:promo:sent": 4}}
    forwarder: Any = FakeForwarder(200, orjson.dumps(share), "")
    policy: Any = SimpleNamespace(current=SimpleNamespace(holdout=HoldoutPolicy()))
    rows = performance_rows((0, TODAY, {"action:promo:sent": 1}))
    context = ApiContext(
        app,
        load_settings({"JOURNEY_API_TOKEN": TOKEN, "JOURNEY_PARTITIONS": "2"}),
        customers=FakeTable(),
        aliases=FakeTable(),
        decisions=FakeTable(),
        census_table=FakeTable(rows),
        policy=policy,
        clock=PINNED,
        owned=lambda: {0},
        forwarder=forwarder,
    )
    register_api(context)
    answer = await get(app, "/journey/performance", FakeRequest(query={"days": "30"}))
    assert forwarder.asked == [
        f"{OTHER_URL}/journey/performance/share?from=2026-10-25&to=2026-11-23"
    ]
    assert answer.body["actions"][0]["sent"] == 5
