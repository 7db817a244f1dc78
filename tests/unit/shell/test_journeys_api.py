"""The journeys API's views, driven without a broker (the fakes of test_api)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import orjson

from stream.config import Clock, load_settings
from stream.core.census import at_node, journey_move
from stream.shell.api import add_api
from tests.unit.core.journeys.test_report import V1, P
from tests.unit.shell.test_api import OWN_URL, TOKEN, FakeApp, FakeRequest, FakeTable, get


def served(census: dict[str, int]) -> FakeApp:
    """A fake app with the API registered, one partition owned and ``census`` as its row."""
    app = FakeApp(census_hosts=[OWN_URL])
    add_api(
        app,
        load_settings({"JOURNEY_API_TOKEN": TOKEN, "JOURNEY_PARTITIONS": "1"}),
        FakeTable(),
        FakeTable(),
        FakeTable(),
        FakeTable({b"0": orjson.dumps(census)}),
        SimpleNamespace(current=P),  # type: ignore[arg-type]
        Clock(),
        lambda: {0},
    )
    return app


CENSUS = {
    at_node(V1, "wait_install"): 2,
    journey_move(V1, "invite", "entered", "", "treatment"): 2,
    journey_move(V1, "invite", "edge", "sent", "treatment"): 2,
}


async def test_the_journeys_are_listed_with_the_census_of_every_worker() -> None:
    answer = await get(served(CENSUS), "/journeys")
    assert answer.status == 200
    listed: list[dict[str, Any]] = answer.body["journeys"]
    assert [(j["id"], j["entered"], j["active"]) for j in listed] == [
        ("onboarding", 2, 2),
        ("nurture", 0, 0),
    ]


async def test_one_journey_shows_its_counted_edges() -> None:
    answer = await get(served(CENSUS), "/journeys/{journey_id}", journey_id="onboarding")
    assert answer.status == 200
    (version,) = answer.body["versions"]
    sent = next(e for e in version["edges"] if (e["from"], e["label"]) == ("invite", "sent"))
    assert sent == {"from": "invite", "label": "sent", "to": "wait_install", "count": 2}


async def test_an_unknown_journey_is_a_readable_404() -> None:
    app = served(CENSUS)
    for journey_id in ("nope", "Not a journey!"):
        answer = await get(app, "/journeys/{journey_id}", journey_id=journey_id)
        assert answer.status == 404
        assert answer.body == {
            "error": "not_found",
            "detail": f"no journey {journey_id!r} in the policy or the counts; "
            "the policy has: onboarding, nurture",
        }


async def test_the_journeys_need_the_token() -> None:
    answer = await get(served(CENSUS), "/journeys", FakeRequest(headers={}))
    assert answer.status == 401
