"""Invariants of journey runs over arbitrary histories of one customer (hypothesis).

A history mixes entry, awaited, exit and unrelated events, clock ticks (``fire`` at each
deadline passed, or once and late), senders' outcomes and redeliveries (the last event,
firing or outcome applied again), against a fixed policy with waits, a wait_for of an
event and of an outcome, a branch, a split, sends held by quiet hours and a condition
entry. After every step:

- at most one active run per journey, keyed by the journeys of the policy;
- no action of a run is sent after the run was stopped (an exit rule, the goal, the
  max duration); a run that reaches an exit node may still release what it held;
- no run outlives its max duration, and a firing at the last end leaves none;
- no action id is ever sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stream.core.decide.records import Action
from stream.core.events import Event
from stream.core.outcomes import Outcome
from stream.core.pipeline import StepResult, fire, observe, step
from stream.core.state import CustomerState, new_state
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import LIMITS, NOON_MS
from tests.unit.core.journeys.helpers import DAY_MS, HOUR_MS, MINUTE_MS, journey_policy

POLICY = journey_policy(
    """
    - id: cart
      entry: {event: add_to_cart}
      max_duration: 2d
      exit:
        - {event: search, when: "event.properties.query == 'stop'", reason: asked}
        - {condition: "customer.open_cases > 0", reason: complaint}
      goal: {event: order_completed, exit: true}
      start: pause
      nodes:
        pause: {wait: 1h, next: nudge}
        nudge: {send: promo_email, next: read, suppressed: done}
        read:
          wait_for: {outcome: opened}
          timeout: 1d
          next: done
          on_timeout: text
        text: {send: promo_sms, next: done}
        done: {exit: completed}
    - id: onboarding
      entry: {event: order_completed}
      reentry: {cooldown: 1d}
      max_duration: 5d
      exit: [{event: product_return, when: "event.properties.value > 100.0"}]
      start: route
      nodes:
        route:
          branch: [{name: vip, when: "event.properties.value >= 100.0", next: vip}]
          else: arms
        vip: {send: high_offer, next: watch}
        arms:
          split:
            - {arm: app, weight: 50, next: app}
            - {arm: offer, weight: 50, next: offer}
        app: {send: promo_push, next: watch}
        offer: {decide: [low_offer, high_offer], next: watch}
        watch:
          wait_for: {event: product_return, match: [order_id]}
          timeout: 2d
          next: sorry
          on_timeout: morning
        sorry: {send: receipt, next: finished}
        morning: {wait: {until_local: '09:00'}, next: remind}
        remind: {send: promo_sms, next: later}
        later: {wait: 12h, next: route}
        finished: {exit: completed}
    - id: winback
      entry: {condition: "customer.orders.count >= 2"}
      reentry: never
      max_duration: 1d
      start: mail
      nodes:
        mail: {send: low_offer, next: pause}
        pause: {wait: 6h, next: done}
        done: {exit: completed}
    """,
    contact="{default_timezone: UTC, quiet_hours: {start: '21:00', end: '08:00'}}",
)
MAX_MS = {journey.id: journey.max_duration_ms for journey in POLICY.journeys}
NODE_EXITS = {"completed"}  # the reasons of the policy's exit nodes
# mostly short gaps, so that runs get somewhere before their max duration
GAPS_MS = [0, MINUTE_MS, HOUR_MS] * 2 + [5 * HOUR_MS, 13 * HOUR_MS, DAY_MS, 2 * DAY_MS]
ZONES = ["UTC", "Asia/Tokyo", "America/New_York"]
KEYS = [f"C{n:06d}" for n in range(1, 9)]  # customers in both arms of the split

EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "cart": ("add_to_cart", {"product_id": "p1", "price": 20.0}),
    "order_o1": ("order_completed", {"order_id": "o1", "value": 50.0}),
    "big_order_o2": ("order_completed", {"order_id": "o2", "value": 150.0}),
    "return_o1": ("product_return", {"store_id": "s", "product_id": "p1", "order_id": "o1"}),
    "big_return_o2": (
        "product_return",
        {"store_id": "s", "product_id": "p1", "order_id": "o2", "value": 150.0},
    ),
    "stop": ("search", {"query": "stop"}),
    "search": ("search", {"query": "shoes"}),
    "complaint": ("complaint_opened", {"case_id": "k1", "reason": "late"}),
    "view": ("page_view", {"url": "/"}),
    "app": ("app_installed", {}),
}

operations = st.one_of(
    st.tuples(st.just("event"), st.sampled_from(sorted(EVENTS)), st.sampled_from(GAPS_MS)),
    # the scheduler fires each deadline as it passes ("tick"), or once, late ("late")
    st.tuples(st.sampled_from(["tick", "late"]), st.just(""), st.sampled_from(GAPS_MS)),
    st.tuples(st.just("outcome"), st.sampled_from(["delivered", "opened", "clicked"]), st.just(0)),
    st.tuples(st.just("again"), st.just(""), st.just(0)),
)


@dataclass
class History:
    """One customer's history as it is delivered, and what the checks remember of it."""

    key: str
    zone: str
    now_ms: int = NOON_MS
    state: CustomerState = field(init=False)
    events: int = 0
    last: tuple[str, Any] | None = None  # the last delivery, for a redelivery
    last_sent: Action | None = None  # the last journey action sent (an outcome answers it)
    sent_ids: set[str] = field(default_factory=set)
    stopped_runs: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.state = new_state(self.key)

    def apply(self, kind: str, detail: str, gap_ms: int) -> None:
        """Move the clock on by ``gap_ms``, deliver what ``kind`` says and check."""
        until_ms = self.now_ms + gap_ms
        if kind == "tick":
            while (due_ms := self.state.next_due_ms()) is not None and due_ms <= until_ms:
                self.now_ms = max(self.now_ms, due_ms)
                self.deliver(("firing", None))
        self.now_ms = until_ms
        if kind == "again" and self.last is not None:
            self.deliver(self.last)
        elif kind == "late":
            self.deliver(("firing", None))
        elif kind == "event":
            self.deliver(("event", self._event(detail)))
        elif kind == "outcome" and self.last_sent is not None:
            self.deliver(("outcome", self._outcome(self.last_sent, detail)))

    def deliver(self, delivery: tuple[str, Any]) -> None:
        self.last = delivery
        what, message = delivery
        if what == "event":
            result = step(self.state, message, self.now_ms, LIMITS, POLICY)
        elif what == "firing":
            result = fire(self.state, self.now_ms, POLICY)
        else:
            result = observe(self.state, message, POLICY, self.now_ms)
        self.check(result)

    def _event(self, name: str) -> Event:
        type_, properties = EVENTS[name]
        self.events += 1
        return build_event(
            type_,
            properties=properties,
            customer_key=self.key,
            at_ms=self.now_ms,
            event_id=f"e{self.events}",
            context={"consent": {"email": True, "push": True, "sms": True}, "timezone": self.zone},
        )

    def _outcome(self, action: Action, what: str) -> Outcome:
        outcome_id = f"{action.action_id}-{what}"
        return Outcome(
            outcome_id, action.action_id, self.key, action.channel, what, self.now_ms, {}
        )

    def check(self, result: StepResult) -> None:
        """Every invariant of the module, on one delivery's result."""
        before, after = self.state, result.state
        for action in result.to_send:
            assert action.action_id not in self.sent_ids, "an action id sent twice"
            self.sent_ids.add(action.action_id)
            if action.journey is not None:
                assert action.journey.run not in self.stopped_runs, "sent after its run exited"
                self.last_sent = action
        _check_one_run_each(before, result)
        for journey_id, run in before.journeys.items():
            if after.journeys.get(journey_id, {}).get("run") == run["run"]:
                continue
            # the first exit of the journey in this step is the end of the run before it
            reason = next(
                m.detail for m in result.journeys if m.journey == journey_id and m.what == "exited"
            )
            if reason not in NODE_EXITS:
                self.stopped_runs.add(run["run"])
        for journey_id, run in after.journeys.items():
            assert run["ends_ms"] == run["entered_at_ms"] + MAX_MS[journey_id]
            assert run["due_ms"] <= run["ends_ms"], "a wait past the max duration"
            assert run["ends_ms"] > self.now_ms, "a run outlived its max duration"
        self.state = after


def _check_one_run_each(before: CustomerState, result: StepResult) -> None:
    """Replaying the step's moves in order, a run is entered only where none is active."""
    assert set(result.state.journeys) <= set(MAX_MS)
    active = {journey_id: True for journey_id in before.journeys}
    for move in result.journeys:
        if move.what == "entered":
            assert not active.get(move.journey), f"two active runs of {move.journey}"
            active[move.journey] = True
        elif move.what == "exited":
            assert active.get(move.journey), f"{move.journey} exited without a run"
            active[move.journey] = False
    assert {j for j, on in active.items() if on} == set(result.state.journeys)


@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.sampled_from(KEYS), st.sampled_from(ZONES), st.lists(operations, min_size=8, max_size=40))
def test_journey_runs_keep_their_invariants_over_any_history(key, zone, history):
    customer = History(key, zone)
    for kind, detail, gap_ms in history:
        customer.apply(kind, detail, gap_ms)
    # a firing when the clock reaches the last run's end leaves no run
    last_end_ms = max((run["ends_ms"] for run in customer.state.journeys.values()), default=None)
    if last_end_ms is not None:
        customer.now_ms = last_end_ms
        customer.deliver(("firing", None))
        assert customer.state.journeys == {}
