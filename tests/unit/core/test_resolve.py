"""Identity resolution rules and the merge of two profiles of one person."""

from __future__ import annotations

from stream.core.identity import hash_identifier, is_known, normalise_email, strength, tokens
from stream.core.merge import merge_states
from stream.core.resolve import IdentityRules, LinkOutcome, bounded_links, decide_link
from stream.core.state import Limits, new_state, reduce
from tests.unit.core.conftest import T0, build_event

RULES = IdentityRules()


def test_tokens_are_strongest_first_and_name_their_kind() -> None:
    ids = {"anonymous_id": "a1", "customer_id": "C1", "phone_sha256": "p"}
    assert tokens(ids) == ["C1", "phone:p", "anon:a1"]
    assert is_known("C1") and not is_known("anon:a1")
    assert strength("C1") < strength("loyalty:L") < strength("email:e") < strength("anon:a")


def test_hashing_is_salted_and_normalised() -> None:
    a = hash_identifier(normalise_email("  Ann@Example.COM "), "s1")
    assert a == hash_identifier("ann@example.com", "s1") != hash_identifier("ann@example.com", "s2")


def test_an_anonymous_cookie_links_to_the_known_customer_and_its_profile_merges() -> None:
    link = decide_link("anon:a1", "C1", None, RULES)
    assert link.outcome is LinkOutcome.LINKED
    assert (link.alias, link.merge_from, link.follow) == ("C1", "anon:a1", None)
    assert decide_link("anon:a1", "C1", "C1", RULES).outcome is LinkOutcome.SAME


def test_a_token_of_another_known_customer_is_a_conflict_not_a_merge() -> None:
    link = decide_link("email:e", "C2", "C1", RULES)
    assert link.outcome is LinkOutcome.CONFLICT and link.alias is None and link.merge_from is None


def test_the_stronger_profile_wins_between_two_unknown_ones() -> None:
    # the cookie belonged to a loyalty-card profile; now a known customer shows it
    relinked = decide_link("anon:a1", "C1", "loyalty:L1", RULES)
    assert relinked.outcome is LinkOutcome.RELINKED
    assert relinked.alias == "C1" and relinked.follow == ("loyalty:L1", "C1")
    # the cookie belongs to a known customer; an email-only profile shows it: it joins C1
    redirected = decide_link("anon:a1", "email:e", "C1", RULES)
    assert redirected.outcome is LinkOutcome.REDIRECTED
    assert redirected.alias is None and redirected.follow == ("email:e", "C1")


def test_shared_identifiers_never_link() -> None:
    rules = IdentityRules(non_merging_kinds=frozenset({"phone_sha256"}))
    assert decide_link("phone:p", "C1", None, rules).outcome is LinkOutcome.NON_MERGING
    one = IdentityRules(non_merging_tokens=frozenset({"email:shared"}))
    assert decide_link("email:shared", "C1", None, one).outcome is LinkOutcome.NON_MERGING
    assert decide_link("email:other", "C1", None, one).outcome is LinkOutcome.LINKED


def test_a_profile_keeps_at_most_n_identifiers_evicting_the_oldest() -> None:
    linked, added, evicted = bounded_links(["anon:1", "anon:2"], ["anon:2", "anon:3"], 2)
    assert (linked, added, evicted) == (["anon:2", "anon:3"], ["anon:3"], ["anon:1"])


def _apply(state, *events):
    for event in events:
        state = reduce(state, event, Limits()).state
    return state


def test_merge_adds_counts_unites_carts_and_keeps_the_earliest_and_furthest() -> None:
    cart = {"product_id": "p1", "price": 10.0, "quantity": 1}
    anon = _apply(
        new_state("anon:a1"),
        build_event("page_view", customer_key="anon:a1", at_ms=T0, event_id="x1"),
        build_event("add_to_cart", properties=cart, customer_key="anon:a1", at_ms=T0 + 1),
    )
    known = _apply(
        new_state("C1"),
        build_event(
            "add_to_cart",
            properties={"product_id": "p2", "price": 5.0, "quantity": 2},
            at_ms=T0 + 10,
        ),
        build_event(
            "order_completed",
            properties={"order_id": "o1", "value": 20.0},
            at_ms=T0 + 20,
        ),
        build_event("page_view", at_ms=T0 + 30, event_id="x1"),  # seen by both: counted once
    )
    merged = merge_states(known, anon, Limits())
    assert merged.customer_key == "C1"
    assert merged.created_at_ms == T0  # the anonymous visit came first
    assert merged.event_count == 4  # 2 + 3 - 1 shared
    assert merged.stage == "onboarding"  # the furthest
    assert set(merged.cart["items"]) == {"p1"}  # the order emptied C1's cart; p1 came on top
    assert merged.orders["count"] == 1
    assert "anon:a1" in merged.linked
    assert known.cart["items"] == {} and anon.event_count == 2  # inputs untouched


def test_merge_keeps_every_opt_out_and_unites_timers_and_cases() -> None:
    a = new_state("C1")
    a.opt_outs = {"email": "unsubscribed"}
    a.consent = {"email": False}
    a.timers = {"inactivity": {"id": "t1", "due_ms": 5, "armed_at_ms": 1, "armed_by": "x"}}
    b = new_state("anon:a1")
    b.updated_at_ms = 99
    b.consent = {"email": True, "push": True}
    b.open_cases = {"K1": {"reason": "late", "severity": "high", "opened_at_ms": 1}}
    b.timers = {
        "cart_abandonment": {"id": "t2", "due_ms": 9, "armed_at_ms": 2, "armed_by": "add_to_cart"}
    }
    merged = merge_states(a, b, Limits())
    assert merged.consent == {"email": False, "push": True}
    assert set(merged.open_cases) == {"K1"}
    assert set(merged.timers) == {"inactivity", "cart_abandonment"}
    assert merged.next_due_ms() == 5


def test_merging_huge_amounts_saturates_instead_of_overflowing() -> None:
    from stream.core.state import MAX_AMOUNT

    a, b = new_state("C1"), new_state("C2")
    a.orders["revenue"] = b.orders["revenue"] = MAX_AMOUNT
    item = {"quantity": 2, "price": MAX_AMOUNT}
    a.cart["items"] = {"p1": dict(item)}
    b.cart["items"] = {"p2": dict(item)}
    merged = merge_states(a, b, Limits())
    assert merged.orders["revenue"] == MAX_AMOUNT and merged.cart["value"] == MAX_AMOUNT
    assert merged.to_json()  # finite: stored and read back


def test_a_merged_profile_keeps_the_currency_of_the_latest_order() -> None:
    def buyer(key: str, at_ms: int, currency: str | None):
        props = {
            "order_id": f"o-{key}",
            "value": 5.0,
            **({"currency": currency} if currency else {}),
        }
        return _apply(
            new_state(key),
            build_event("order_completed", properties=props, at_ms=at_ms, customer_key=key),
        )

    assert (
        merge_states(buyer("C1", T0, "GBP"), buyer("anon:a1", T0 + 1, "USD"), Limits()).orders[
            "currency"
        ]
        == "USD"
    )
    assert (
        merge_states(buyer("C1", T0 + 1, None), buyer("anon:a1", T0, "GBP"), Limits()).orders[
            "currency"
        ]
        == "GBP"
    )
