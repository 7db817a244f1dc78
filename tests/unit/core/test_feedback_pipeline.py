"""What one step teaches the model: trials, successes, exposures and conversions.

``step``, ``fire`` and ``observe`` return ``StepResult.learning``: a trial per action sent
now, a success per rewarded outcome, an exposure per decided marketing action (treated
or held out) and a conversion when an exposed customer buys within the window. The
control group's contacts count for caps and cooldowns, never as messages on a channel.
"""

from __future__ import annotations

from stream.core.decide import Reason
from stream.core.decide.holdout import group_of
from stream.core.merge import merge_states
from stream.core.outcomes import Outcome, OutcomeStatus
from stream.core.pipeline import StepResult, fire, observe, step
from stream.core.propensity import LearningUpdate, UpdateKind
from stream.core.state import CustomerState, new_state
from tests.unit.core.conftest import build_event
from tests.unit.core.decide.helpers import LIMITS, NOON_MS, policy_from

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
LATE_MS = NOON_MS + 11 * HOUR_MS  # 22:00 in Paris: email is held until 08:00

TRIAL, SUCCESS = UpdateKind.TRIAL, UpdateKind.SUCCESS
EXPOSURE, CONVERSION = UpdateKind.EXPOSURE, UpdateKind.CONVERSION

POLICY_TEXT = """
    format: 1
    name: feedback
    contact_policy:
      default_timezone: Europe/Paris
      quiet_hours: {start: "21:00", end: "08:00", channels: [email]}
      caps: [{name: email_daily, channels: [email], max: 1, window: 24h}]
    learning: {strategy: fixed}
    holdout: {control_share: 0.5, salt: feedback-test, conversion_window: 2d}
    actions:
      - id: promo
        category: marketing
        channels: [email]
        validity: 1d
        cooldown: 1h
        triggers: [{event: add_to_cart}]
      - id: receipt
        category: transactional
        channels: [email]
        triggers: [{event: store_purchase}]
"""
POLICY = policy_from(POLICY_TEXT)


def key_in(group: str, policy=POLICY) -> str:
    """The first customer key of the holdout group (assignment is a hash: look it up)."""
    return next(
        key
        for key in (f"C{n:06d}" for n in range(1, 100))
        if group_of(key, policy.holdout) == group
    )


TREATED, CONTROL = key_in("treatment"), key_in("control")


def cart(key: str, at_ms: int = NOON_MS):
    return build_event(
        "add_to_cart", properties={"product_id": "p1", "price": 20.0}, customer_key=key, at_ms=at_ms
    )


def purchase(key: str, at_ms: int, type_: str = "order_completed"):
    properties = {"order_id": f"o-{at_ms}", "value": 20.0}
    if type_ == "store_purchase":
        return build_event(
            type_, "store", {**properties, "store_id": "s1"}, customer_key=key, at_ms=at_ms
        )
    return build_event(type_, properties=properties, customer_key=key, at_ms=at_ms)


def at(state: CustomerState | None, event, policy=POLICY) -> StepResult:
    """One step at the event's own time."""
    return step(state, event, event.occurred_at_ms, LIMITS, policy)


def kinds(result: StepResult) -> list[tuple[str, str, str]]:
    return [(u.kind.value, u.action, u.group) for u in result.learning]


def test_a_sent_marketing_action_is_a_trial_of_its_cell_and_an_exposure() -> None:
    result = at(None, cart(TREATED))
    [action] = result.to_send
    assert result.learning == (
        LearningUpdate("promo", TRIAL, result.state.stage, "email"),
        LearningUpdate("promo", EXPOSURE, group="treatment"),
    )
    assert action.stage == result.state.stage == "acquisition"


def test_a_transactional_action_is_a_trial_but_not_an_exposure() -> None:
    result = at(None, purchase(TREATED, NOON_MS, "store_purchase"))
    assert [a.action for a in result.to_send] == ["receipt"]
    assert kinds(result) == [("trial", "receipt", "")]


def test_a_duplicate_event_teaches_nothing() -> None:
    event = cart(TREATED)
    first = at(None, event)
    again = at(first.state, event)
    assert again.duplicate
    assert again.learning == ()


def test_a_held_message_is_exposed_when_decided_and_tried_when_released() -> None:
    decided = at(None, cart(TREATED, LATE_MS))
    assert [a.action for a in decided.held] == ["promo"] and decided.to_send == ()
    assert kinds(decided) == [("exposure", "promo", "treatment")]
    released = fire(decided.state, decided.state.next_due_ms(), POLICY)
    assert [a.action for a in released.to_send] == ["promo"]
    assert [d.trigger.type for d in released.decisions] == ["quiet_hours_release"]
    # the release record is not a new decision: no second exposure
    assert released.learning == (LearningUpdate("promo", TRIAL, "acquisition", "email"),)


def test_a_timer_decision_counts_like_an_event_decision() -> None:
    policy = policy_from(
        """
        format: 1
        name: timer
        learning: {strategy: fixed}
        timers:
          - {name: nudge, delay: 30m, start: [{event: add_to_cart}]}
        actions:
          - {id: reminder, category: marketing, channels: [web], triggers: [{timer: nudge}]}
        """
    )
    started = at(None, cart(TREATED), policy)
    assert started.learning == ()
    fired = fire(started.state, started.state.next_due_ms(), policy)
    assert [a.action for a in fired.to_send] == ["reminder"]
    assert kinds(fired) == [("trial", "reminder", ""), ("exposure", "reminder", "treatment")]


def test_a_control_customer_is_exposed_but_sent_nothing() -> None:
    result = at(None, cart(CONTROL))
    decision = result.decision
    assert (decision.group, decision.actions, result.to_send, result.held) == (
        "control",
        (),
        (),
        (),
    )
    [held_out] = decision.held_out
    assert (held_out.action, held_out.group) == ("promo", "control")
    assert result.learning == (LearningUpdate("promo", EXPOSURE, group="control"),)


def test_a_control_contact_counts_for_cooldown_and_caps_but_not_as_a_message() -> None:
    state = at(None, cart(CONTROL)).state
    [contact] = state.contacts
    assert (contact["action"], contact["group"]) == ("promo", "control")
    assert state.sent_counts == {"promo": 1}
    assert (state.sent_by_channel, state.unanswered) == ({}, {})
    assert state.last_sent_ms("email") is None
    soon = at(state, cart(CONTROL, NOON_MS + HOUR_MS // 2))
    assert soon.decision.candidates[0].reason is Reason.COOLDOWN
    later = at(soon.state, cart(CONTROL, NOON_MS + 2 * HOUR_MS))
    assert later.decision.candidates[0].reason is Reason.CONTACT_CAP
    assert later.learning == ()


def test_a_purchase_within_the_window_converts_each_exposure_once() -> None:
    for key, group in ((TREATED, "treatment"), (CONTROL, "control")):
        state = at(None, cart(key)).state
        bought = at(state, purchase(key, NOON_MS + DAY_MS))
        assert bought.learning == (
            LearningUpdate("promo", CONVERSION, group=group, value=20.0, currency="EUR"),
        )
        again = at(bought.state, purchase(key, NOON_MS + DAY_MS + HOUR_MS))
        assert again.learning == ()


def test_every_exposure_in_the_window_converts() -> None:
    first = at(None, cart(TREATED))
    second = at(first.state, cart(TREATED, NOON_MS + 2 * HOUR_MS))  # capped: not exposed
    third = at(second.state, cart(TREATED, NOON_MS + DAY_MS))
    assert kinds(third) == [("trial", "promo", ""), ("exposure", "promo", "treatment")]
    bought = at(third.state, purchase(TREATED, NOON_MS + DAY_MS + HOUR_MS))
    assert kinds(bought) == [("conversion", "promo", "treatment")] * 2


def test_a_purchase_outside_the_window_does_not_convert() -> None:
    state = at(None, cart(TREATED)).state
    assert at(state, purchase(TREATED, NOON_MS + 2 * DAY_MS + 1)).learning == ()
    # an order that happened before the decision (arriving late) was not caused by it
    assert at(state, purchase(TREATED, NOON_MS - HOUR_MS)).learning == ()
    edge = at(state, purchase(TREATED, NOON_MS + 2 * DAY_MS))
    assert kinds(edge) == [("conversion", "promo", "treatment")]


def test_only_the_policys_conversion_events_convert() -> None:
    policy = policy_from(
        POLICY_TEXT.replace(
            "conversion_window: 2d}", "conversion_window: 2d, conversion_events: [store_purchase]}"
        )
    )
    state = at(None, cart(TREATED), policy).state
    assert at(state, purchase(TREATED, NOON_MS + HOUR_MS), policy).learning == ()
    in_store = at(state, purchase(TREATED, NOON_MS + HOUR_MS, "store_purchase"), policy)
    assert ("conversion", "promo", "treatment") in kinds(in_store)


def test_an_experiment_variant_travels_with_exposure_and_conversion() -> None:
    policy = policy_from(
        POLICY_TEXT
        + """
    experiments:
      - name: channel_test
        action: promo
        variants:
          - {name: a, share: 0.5, channels: [email]}
          - {name: b, share: 0.5, channels: [email]}
    """
    )
    decided = at(None, cart(TREATED), policy)
    [exposure] = [u for u in decided.learning if u.kind is EXPOSURE]
    assert exposure.variant in {"channel_test=a", "channel_test=b"}
    bought = at(decided.state, purchase(TREATED, NOON_MS + HOUR_MS), policy)
    assert bought.learning == (
        LearningUpdate(
            "promo",
            CONVERSION,
            group="treatment",
            variant=exposure.variant,
            value=20.0,
            currency="EUR",
        ),
    )


def test_observe_teaches_a_success_for_a_reward() -> None:
    sent = at(None, cart(TREATED))
    [action] = sent.to_send

    def outcome(kind: str, action_id: str = action.action_id) -> Outcome:
        return Outcome(f"o-{kind}", action_id, TREATED, "email", kind, NOON_MS + HOUR_MS, {})

    clicked = observe(sent.state, outcome("clicked"), POLICY)
    assert clicked.outcome is OutcomeStatus.APPLIED
    assert clicked.learning == (LearningUpdate("promo", SUCCESS, "acquisition", "email"),)
    assert clicked.state.responses == {"email": 1}
    assert observe(clicked.state, outcome("clicked"), POLICY).outcome is OutcomeStatus.DUPLICATE
    unknown = observe(sent.state, outcome("clicked", "nope"), POLICY)
    assert (unknown.outcome, unknown.learning) == (OutcomeStatus.UNKNOWN_ACTION, ())


def test_a_message_withdrawn_at_release_frees_what_it_counted() -> None:
    decided = at(None, cart(TREATED, LATE_MS))
    assert decided.state.unanswered == {"email": 1}
    complaint = build_event(
        "complaint_opened",
        "call_center",
        {"case_id": "K1", "reason": "late"},
        customer_key=TREATED,
        at_ms=LATE_MS + HOUR_MS,
    )
    state = at(decided.state, complaint).state
    released = fire(state, state.next_due_ms(), POLICY)
    assert released.to_send == ()
    assert released.decisions[0].candidates[0].reason is Reason.OPEN_SERVICE_CASE
    assert released.learning == ()
    after = released.state
    assert (after.counted_contacts(), after.sent_counts) == ([], {"promo": 0})
    assert [c.get("withdrawn") for c in after.contacts] == [True]  # kept for uplift
    assert (after.sent_by_channel, after.unanswered) == ({"email": 0}, {"email": 0})


def test_treated_and_control_exposures_convert_by_the_same_rule() -> None:
    """Uplift compares the groups: an exposure that was counted must be able to convert.

    A treated customer's message held overnight and withdrawn at release (an open case)
    was exposed when decided; the same decision for a control customer is never
    withdrawn, so its purchase converts. Both purchases must count alike, or uplift
    is biased against the treated.
    """
    conversions: dict[str, list[tuple[str, str]]] = {}
    for key in (TREATED, CONTROL):
        decided = at(None, cart(key, LATE_MS))
        assert [u.kind for u in decided.learning] == [EXPOSURE]
        complaint = build_event(
            "complaint_opened",
            "call_center",
            {"case_id": "K1", "reason": "late"},
            customer_key=key,
            at_ms=LATE_MS + HOUR_MS,
        )
        state = at(decided.state, complaint).state
        due = state.next_due_ms()
        if due is not None:
            state = fire(state, due, POLICY).state
        bought = at(state, purchase(key, LATE_MS + DAY_MS))
        conversions[group_of(key, POLICY.holdout)] = [(kind, a) for kind, a, _ in kinds(bought)]
    assert conversions["treatment"] == conversions["control"]


def test_merging_profiles_keeps_the_longer_unanswered_streak_per_channel() -> None:
    known, anonymous = new_state("C1"), new_state("A1")
    known.unanswered = {"email": 3, "push": 0}
    anonymous.unanswered = {"email": 1, "push": 2, "sms": 1}
    merged = merge_states(known, anonymous, LIMITS)
    assert merged.unanswered == {"email": 3, "push": 2, "sms": 1}
    assert merge_states(anonymous, known, LIMITS).unanswered == merged.unanswered
    assert known.unanswered == {"email": 3, "push": 0}  # inputs unchanged
