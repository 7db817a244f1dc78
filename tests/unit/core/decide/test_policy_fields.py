"""`policy check` knows what each CEL variable holds: misspelled fields are refused at load.

Before, ``customer.stag`` or ``customer.event_cnt`` loaded fine and then suppressed every
decision of the action as ``condition_error``. Each problem names file:line and path.
"""

from __future__ import annotations

import pytest

from stream.core.decide import PolicyError, cel_check
from stream.core.decide.cel_parse import CelSyntaxError
from tests.unit.core.decide.helpers import DEFAULT_POLICY, SHIPPED_RULES, policy_from

HEAD = """\
format: 1
name: fields
constants: {threshold: 2, tiers: {gold: 500.0}}
actions:
  - id: promo
    category: marketing
    channels: [email]
    triggers: [{event: order_completed}]
"""
LINE = 9  # the line of a key added under the action


def refused(extra: str, head: str = HEAD) -> str:
    """The check's report on the policy with ``extra`` lines added."""
    with pytest.raises(PolicyError) as error:
        policy_from(head + extra)
    return str(error.value)


def loads(extra: str, head: str = HEAD) -> None:
    policy_from(head + extra)


def test_a_misspelled_customer_field_in_a_list_test_is_refused_with_a_suggestion() -> None:
    report = refused("    eligibility: customer.stag in ['awareness', 'acquisition']\n")
    assert report == (
        f"test.yaml:{LINE}: actions/0/eligibility: customer.stag: unknown field; "
        "did you mean customer.stage?"
    )


def test_a_misspelled_count_is_refused_with_a_suggestion() -> None:
    report = refused("    applicability: customer.event_cnt > 3\n")
    assert f"test.yaml:{LINE}: actions/0/applicability: customer.event_cnt: unknown field" in report
    assert "did you mean customer.event_count?" in report


def test_an_unknown_event_property_names_the_event_type_and_the_closest_property() -> None:
    report = refused("    suitability: event.properties.vlaue > 100.0\n")
    assert f"test.yaml:{LINE}: actions/0/suitability: event.properties.vlaue: " in report
    assert "unknown property of order_completed; did you mean event.properties.value?" in report


def test_nested_fields_map_access_and_constants_are_checked() -> None:
    cases = {
        "customer.orders.revnue > 1.0": "customer.orders.revnue: unknown field; did you mean "
        "customer.orders.revenue?",
        "customer['stag'] == 'x'": "customer['stag']: unknown field; did you mean customer.stage?",
        "event.properties['vlaue'] > 1.0": "did you mean event.properties.value?",
        "customer.orders.count >= constants.treshold": "constants.treshold: unknown constant; "
        "did you mean constants.threshold?",
        "customer.orders.revenue > constants.tiers.gld": "did you mean constants.tiers.gold?",
        "customer.channels.wbe > 0": "'wbe' is not an event channel; one of: app, call_center, "
        "email, social, store, web; did you mean 'web'?",
        "customer.consent.fax": "customer.consent.fax: unknown field; customer.consent has: "
        "email, push, sms",
        "customer.sent.promoo > 0": "'promoo' is not an action id; one of: promo",
        "now_ms.days > 1": "now_ms.days: now_ms is an int, without fields",
        "shopper.vip": "unknown variable(s) shopper; known: constants, customer, event",
    }
    for expression, message in cases.items():
        assert message in refused(f'    eligibility: "{expression}"\n'), expression


def test_every_problem_of_every_kind_is_reported_at_once() -> None:
    text = HEAD.replace("channels: [email]", "channels: [emial]") + (
        "    eligibility: customer.stag == 'awareness'\n"
        "    applicability: customer.event_cnt > 3 && event.properties.vlaue > 1.0\n"
        "timers:\n"
        "  - name: nudge\n"
        "    delay: 2x\n"
        "    start: [{event: add_to_cart, when: 'event.properties.pirce > 1.0'}]\n"
    )
    with pytest.raises(PolicyError) as error:
        policy_from(text)
    problems = error.value.problems
    assert [(p.line, p.path) for p in problems] == [
        (7, "actions/0/channels/0"),
        (9, "actions/0/eligibility"),
        (10, "actions/0/applicability"),
        (10, "actions/0/applicability"),
        (12, "timers/0/name"),  # a timer no action names
        (13, "timers/0/delay"),
        (14, "timers/0/start/0/when"),
    ]
    report = str(error.value)
    for fragment in ("customer.stage", "customer.event_count", "event.properties.value"):
        assert f"did you mean {fragment}?" in report
    assert "did you mean event.properties.price?" in report


def test_a_bad_duration_is_explained_in_words() -> None:
    report = refused(
        "timers: [{name: t, delay: 2x, start: [{event: login}]}]\n"
        "  # the action's trigger names the timer below\n",
        HEAD.replace("{event: order_completed}", "{timer: t}"),
    )
    assert "timers/0/delay: 2x: not a duration; use a number with s, m, h or d, like 90s or 2d" in (
        report
    )
    cooldown = refused("    cooldown: 3 days\n")
    assert f":{LINE}: actions/0/cooldown: 3 days: not a duration; use a number" in cooldown


def test_a_value_an_enum_like_field_never_has_names_the_allowed_ones() -> None:
    cases = {
        "customer.stage == 'awarness'": "customer.stage is never 'awarness': a stage is one of "
        "acquisition, advocacy, awareness, engagement, onboarding; did you mean 'awareness'?",
        "customer.stage in ['awareness', 'acquistion']": "customer.stage is never 'acquistion'",
        "'adviocacy' != customer.stage": "did you mean 'advocacy'?",
        "event.channel == 'store'": "event.channel is never 'store': a channel is one of app, web",
        "event.type == 'order_complete'": "an event type is one of order_completed",
        "'loyalty' in customer.identifiers": "an identifier kind is one of anonymous_id, "
        "customer_id, email_sha256, loyalty_id, phone_sha256, social_sha256; did you mean "
        "'loyalty_id'?",
        "customer.identifiers.exists(k, k == 'email')": "k is never 'email'",
    }
    for expression, message in cases.items():
        assert message in refused(f'    eligibility: "{expression}"\n'), expression
    call = HEAD.replace("order_completed", "call_completed")
    report = refused("    eligibility: \"event.properties.sentiment == 'negativ'\"\n", call)
    assert "a sentiment is one of negative, neutral, positive; did you mean 'negative'?" in report
    channel = refused("", HEAD.replace("[email]", "[emial]"))
    assert (
        "actions/0/channels/0: 'emial' is not a channel; one of: email, sms, push, web, "
        "call_center, store, social; did you mean 'email'?"
    ) in channel


def test_valid_expressions_of_every_form_load() -> None:
    for expression in (
        "customer.stage in ['awareness', 'acquisition'] && customer.event_count > 3",
        "customer.identifiers.exists(k, k == 'loyalty_id')",
        "customer.identifiers.all(k, k != 'anonymous_id') || customer.known",
        "customer.channels['web'] > 0 && 'app' in customer.channels",
        "has(event.properties.category) && event.properties.category == 'shoes'",
        "event.properties.items.exists(i, i.product_id == 'p1' && i.price > 1.0)",
        "customer.orders.last_category != 'customer.stag'",  # a string, not a field
        "{'shoes': 'accessories'}[customer.orders.last_category] == 'accessories'",
        "customer.cart.value + 1.0 > double(customer.cart.items)",
        "event.properties.value * 2 > 10.0",  # a JSON number: an int or a double
        "local_hour >= 8 && now_ms - customer.stage_since_ms > 86400000",
        "customer.orders.revenue >= constants.tiers.gold",
        "customer.sent.promo < 2 && customer.consent.email",
        "size(customer.identifiers) > 1 && customer.timezone.startsWith('Europe/')",
    ):
        loads(f'    eligibility: "{expression}"\n')


def test_ints_and_doubles_do_not_mix_in_arithmetic_and_strings_are_not_numbers() -> None:
    report = refused('    context_weight: "customer.cart.value + 1"\n')
    assert "customer.cart.value + 1: CEL does not mix double and int in arithmetic" in report
    assert "compares a string with an int" in refused('    eligibility: "customer.stage == 3"\n')


def test_event_fields_follow_the_trigger() -> None:
    both = HEAD.replace(
        "[{event: order_completed}]", "[{event: order_completed}, {event: store_purchase}]"
    )
    loads("    eligibility: event.properties.store_id != ''\n", both)  # a store purchase's
    timer = HEAD.replace("{event: order_completed}", "{timer: t}")
    timers = "timers: [{name: t, delay: 1h, start: [{event: add_to_cart}, {event: login}]}]\n"
    fired = (
        "    eligibility: \"event.properties.armed_by == 'login' && event.channel == 'timer'\"\n"
    )
    loads(fired + timers, timer)
    wrong = fired.replace("'login'", "'search'").replace("channel", "chanel")
    report = refused(wrong + timers, timer)
    assert (
        "event.properties.armed_by is never 'search': an event type is one of add_to_cart, login"
    ) in report
    assert "event.chanel: unknown field; did you mean event.channel?" in report
    wildcard = "timers: [{name: t, delay: 1h, start: [{event: '*', except: [login], when: %s}]}]\n"
    loads(wildcard % "'event.properties.query != \"\"'", timer)  # search has a query
    report = refused(wildcard % "'event.properties.qeury != \"\"'", timer)
    assert "did you mean event.properties.query?" in report


def test_the_shipped_policy_and_the_test_policies_pass() -> None:
    assert len(DEFAULT_POLICY.actions) >= 11 and len(SHIPPED_RULES.actions) >= 11


def test_syntax_the_field_check_cannot_read_falls_back_to_the_variable_check(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unreadable(text: str, variables: object) -> list[str]:
        raise CelSyntaxError("new syntax")

    monkeypatch.setattr("stream.core.decide.policy.check_expression", unreadable)
    loads("    eligibility: customer.stag == 'x'\n")  # not seen: no false refusal either
    assert "unknown variable(s) shopper" in refused("    eligibility: shopper.vip\n")
    assert cel_check.check_expression("customer", {"customer": cel_check.ANY}) == []
