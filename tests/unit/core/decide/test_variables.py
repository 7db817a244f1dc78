"""The variables a decision hands to CEL: only what the policy reads, and all of that."""

from __future__ import annotations

import pytest

from stream.core.decide import Reason
from stream.core.decide.variables import ViewPlan
from stream.core.state import CustomerState
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import policy_from, run

POLICY = """\
format: 1
name: view
constants: {tiers: {gold: 1}, other: 2}
actions:
  - id: promo
    category: marketing
    channels: [web]
    triggers: [{event: page_view}]
    eligibility: "%s"
"""


@pytest.mark.parametrize(
    "eligibility",
    [
        "customer.channels.exists(c, c == 'web')",  # a macro on a map: all its keys
        "customer['stage'] == 'awareness'",  # a field read by index
        "customer.channels.web == 1 && 'web' in customer.channels",
        "size(constants) == 2 && constants.tiers.gold == 1",
        "customer . stage == 'awareness'",  # CEL allows spaces around the dot
    ],
)
def test_a_condition_sees_every_field_it_reads_however_written(eligibility: str) -> None:
    policy = policy_from(POLICY % eligibility)
    _, [result] = run([build_event("page_view", properties={"url": "/"})], policy)
    [candidate] = result.decision.candidates
    assert candidate.reason is Reason.CHOSEN, candidate.detail


def test_only_the_fields_read_are_converted() -> None:
    plan = ViewPlan.from_sources(["customer.orders.count > 1 && customer.cart.items > 0"])
    view = plan.customer(CustomerState("C1"))
    assert view == {"orders": {"count": 0}, "cart": {"items": 0}}
    assert ViewPlan.from_sources(["constants.a"]).constants({"a": 1, "b": 2}) == {"a": 1}
    assert ViewPlan.from_sources(["constants['a']"]).constants({"a": 1, "b": 2}) == {"a": 1, "b": 2}


def test_the_union_of_two_plans_reads_what_either_reads() -> None:
    one = ViewPlan.from_sources(["customer.orders.count > 0", "event.properties.sku == 'x'"])
    two = ViewPlan.from_sources(["customer.orders.total > 9", "customer.channels.exists(c, c)"])
    union = one.union(two)
    assert union.fields["customer"] == {
        "orders": frozenset({"count", "total"}),
        "channels": None,  # all of it
    }
    assert union.fields["event"] == one.fields["event"]
    assert one.union(ViewPlan({})) == one
