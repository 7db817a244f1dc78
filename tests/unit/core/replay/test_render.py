"""The replay report rendered as text and as a self-contained HTML page."""

from __future__ import annotations

import copy
from html.parser import HTMLParser
from typing import Any

import pytest

from stream.core.replay.render import render_html, render_text

HOSTILE = "<img src=x onerror=alert(1)>"
LIMIT = "Outcomes after a changed decision are unknown: they are dropped, not guessed."
VOID = {"meta", "br", "hr", "img", "input", "link", "wbr", "col", "source"}


def side(**changes: Any) -> dict[str, Any]:
    """One side of a sample report, with some fields replaced."""
    base: dict[str, Any] = {
        "decisions": 900,
        "messages": 610,
        "actions": {"cart_reminder": 300, "welcome": 200, "winback": 110},
        "channels": {"email": 200, "push": 100, "sms": 310},
        "stages": {"acquisition": 120, "retention": 490},
        "suppressions": {"contact_cap": 40, "cooldown": 10},
        "cap_hits": {"weekly_marketing": 40},
        "held": {"email": 12},
        "messages_per_customer": {"0": 50, "1": 120, "2": 80, "3": 40, "4": 20, "5+": 0},
        "over_threshold": {"threshold": 3, "customers": 20, "examples": ["C000001", "C000017"]},
        "journeys": {"onboarding": {"entered": 40, "exited": 10, "converted": 5}},
    }
    return base | changes


@pytest.fixture
def report() -> dict[str, Any]:
    """A sample report: the candidate sends 12 more pushes and drops the contact-cap hits."""
    return {
        "title": "What if: push-first instead of default",
        "generated_at": "2026-12-04T15:00:00Z",
        "window": {
            "source": "kafka cjo.internal.customer-events",
            "records": 1234,
            "from": "2026-12-01T00:00:00Z",
            "to": None,
            "customers": 310,
        },
        "policies": {
            "current": {"name": "default", "version": "default@ab12"},
            "candidate": {"name": "push-first", "version": "push-first@cd34"},
        },
        "limits": [LIMIT, "Timers are replayed from the log, not re-planned."],
        "sides": {
            "current": side(),
            "candidate": side(
                decisions=912,
                messages=622,
                channels={"email": 188, "push": 124, "sms": 310},
                suppressions={"cooldown": 10},
                cap_hits={},
                over_threshold={"threshold": 3, "customers": 25, "examples": ["C000002"]},
                journeys={
                    "onboarding": {"entered": 40, "exited": 8, "converted": 7},
                    "winback": {"entered": 12, "exited": 0, "converted": 1},
                },
            ),
        },
        "differences": {
            "decisions_compared": 900,
            "decisions_differ": 42,
            "customers_differ": 30,
            "examples": [
                {
                    "customer": "C000123",
                    "at": "2026-12-01T10:00:00.000Z",
                    "trigger": "add_to_cart (web)",
                    "before": "cart_reminder@email",
                    "after": "cart_reminder@push",
                    "because": "email: contact_cap (cap weekly_marketing: 3 per 168 h)",
                },
                {
                    "customer": "C000124",
                    "at": "2026-12-01T11:30:15Z",
                    "trigger": "page_view (web)",
                    "before": "",
                    "after": "welcome@sms",
                    "because": "",
                },
            ],
        },
        "outcomes": {
            "current": {"kept": 500, "dropped": 0},
            "candidate": {"kept": 470, "dropped": 30},
        },
    }


class TagChecker(HTMLParser):
    """Fails on an end tag that does not close the innermost open element."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.seen: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)
        if tag not in VOID:
            self.open.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.seen.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, f"</{tag}> closes {self.open[-1:]}"
        self.open.pop()


def checked(page: str) -> TagChecker:
    checker = TagChecker()
    checker.feed(page)
    checker.close()
    assert checker.open == []
    return checker


def line_of(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(start))


def test_text_header_and_limits(report: dict[str, Any]) -> None:
    text = render_text(report)
    assert text.startswith("What if: push-first instead of default\n")
    assert "2026-12-01T00:00Z to the last record" in text
    assert "1234 records, 310 customers" in text
    assert "default (default@ab12)" in text and "push-first (push-first@cd34)" in text
    assert LIMIT in text
    assert text.index(LIMIT) < text.index("Decisions and messages")


def test_text_counts_and_changes(report: dict[str, Any]) -> None:
    text = render_text(report)
    assert line_of(text, "decisions").split() == ["decisions", "900", "912", "+12", "(+1.3%)"]
    assert line_of(text, "push").split() == ["push", "100", "124", "+24", "(+24.0%)"]
    assert line_of(text, "email ").split() == ["email", "200", "188", "-12", "(-6.0%)"]
    assert line_of(text, "contact_cap").split() == ["contact_cap", "40", "0", "-40", "(-100.0%)"]
    assert line_of(text, "weekly_marketing").split()[1:4] == ["40", "0", "-40"]
    assert line_of(text, "more than 3 messages").split()[-4:] == ["20", "25", "+5", "(+25.0%)"]
    assert "current: C000001, C000017" in text and "candidate: C000002" in text
    assert line_of(text, "dropped").split() == ["dropped", "0", "30", "+30", "(new)"]
    assert line_of(text, "kept").split() == ["kept", "500", "470", "-30", "(-6.0%)"]
    assert line_of(text, "  converted").split() == ["converted", "5", "7", "+2", "(+40.0%)"]


def test_text_rows_sorted_by_larger_side_then_name(report: dict[str, Any]) -> None:
    lines = render_text(report).splitlines()
    start = lines.index("Messages by channel")
    assert [line.split()[0] for line in lines[start + 3 : start + 6]] == ["sms", "email", "push"]
    start = lines.index("Journeys")
    assert [line.split()[0] for line in lines[start + 3 : start + 11 : 4]] == [
        "onboarding",
        "winback",
    ]


def test_text_distribution_keeps_the_report_order(report: dict[str, Any]) -> None:
    lines = render_text(report).splitlines()
    start = lines.index("Customers by messages received")
    labels = [line.split()[0] for line in lines[start + 3 : start + 9]]
    assert labels == ["0", "1", "2", "3", "4", "5+"]


def test_text_differences(report: dict[str, Any]) -> None:
    text = render_text(report, width=200)
    assert "decisions that differ: 42 (4.7% of compared)" in text
    assert "customers affected: 30 of 310" in text
    assert (
        "C000123 2026-12-01T10:00Z add_to_cart (web): email cart_reminder -> push cart_reminder,"
        " because email: contact_cap" in text
    )
    assert "C000124 2026-12-01T11:30:15Z page_view (web): nothing -> sms welcome\n" in text


def test_text_wraps_long_examples(report: dict[str, Any]) -> None:
    lines = render_text(report, width=60).splitlines()
    start = lines.index("  C000123 2026-12-01T10:00Z add_to_cart (web): email")
    assert lines[start + 1] == "    cart_reminder -> push cart_reminder, because email:"


def test_text_lists_ten_examples_at_most(report: dict[str, Any]) -> None:
    example = report["differences"]["examples"][0]
    report["differences"]["examples"] = [example | {"customer": f"X{n:03}"} for n in range(15)]
    text = render_text(report)
    assert "X009 " in text and "X010 " not in text
    assert "examples (10 of 15 listed)" in text


@pytest.mark.parametrize("width", [20, 40, 60, 100])
def test_text_width_respected(report: dict[str, Any], width: int) -> None:
    report["sides"]["current"]["actions"]["a_very_long_action_name_" * 4] = 7
    text = render_text(report, width=width)
    assert all(len(line) <= width for line in text.splitlines())
    assert "…" in text


def test_combined_choices_read_as_words(report: dict[str, Any]) -> None:
    report["differences"]["examples"][0]["after"] = "cart_reminder@push+welcome@sms"
    assert "-> push cart_reminder + sms welcome, because" in render_text(report, width=200)


def test_html_is_balanced_and_self_contained(report: dict[str, Any]) -> None:
    page = render_html(report)
    assert page.startswith("<!doctype html>")
    assert '<meta charset="utf-8">' in page
    assert "<title>What if: push-first instead of default</title>" in page
    seen = checked(page).seen
    for tag in ("html", "head", "body", "main", "section", "table", "svg", "aside"):
        assert tag in seen
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "<link" not in page and "url(" not in page


def test_html_limits_in_a_callout_before_the_numbers(report: dict[str, Any]) -> None:
    page = render_html(report)
    assert '<aside class="limits"' in page
    assert page.index(LIMIT) < page.index('<section id="totals">')


def test_html_bars_for_both_sides(report: dict[str, Any]) -> None:
    page = render_html(report)
    for key in ("actions", "channels", "stages", "suppressions", "per-customer"):
        section = page.split(f'<section id="{key}">')[1].split("</section>")[0]
        assert 'class="legend"' in section
        assert 'class="bar current"' in section and 'class="bar candidate"' in section
    channels = page.split('<section id="channels">')[1].split("</section>")[0]
    assert 'width="100.00"' in channels  # sms, the section's largest
    assert '<span class="n">124</span>' in channels and "+24 (+24.0%)" in channels


def test_html_tables_and_examples(report: dict[str, Any]) -> None:
    page = render_html(report)
    for key in ("totals", "cap_hits", "held", "over-threshold", "journeys", "outcomes"):
        assert f'<section id="{key}"><h2>' in page
    assert "<td>email cart_reminder</td><td>push cart_reminder</td>" in page
    assert "<td>nothing</td><td>sms welcome</td>" in page
    assert '<td class="n">-40 (-100.0%)</td>' in page


def test_html_escapes_report_strings(report: dict[str, Any]) -> None:
    report["title"] = f"What if: {HOSTILE}"
    report["policies"]["candidate"]["name"] = HOSTILE
    report["limits"].append(HOSTILE)
    report["differences"]["examples"][0]["customer"] = HOSTILE
    report["sides"]["candidate"]["actions"][HOSTILE] = 3
    report["sides"]["candidate"]["journeys"][HOSTILE] = {"entered": 1}
    report["sides"]["candidate"]["over_threshold"]["examples"] = [HOSTILE]
    page = render_html(report)
    assert "<img" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    checked(page)


def test_empty_report_renders() -> None:
    text = render_text({})
    assert "(none on either side)" in text and "(no examples)" in text
    page = render_html({})
    checked(page)
    assert "None on either side." in page and "<title>Policy replay</title>" in page


def test_empty_sections_render(report: dict[str, Any]) -> None:
    empty = copy.deepcopy(report)
    for name in ("current", "candidate"):
        for key in (
            "actions",
            "channels",
            "stages",
            "suppressions",
            "cap_hits",
            "held",
            "journeys",
        ):
            empty["sides"][name][key] = {}
        empty["sides"][name]["messages_per_customer"] = {}
        empty["sides"][name]["over_threshold"] = {}
    empty["differences"] = {}
    empty["outcomes"] = {}
    empty["limits"] = []
    text = render_text(empty)
    assert text.count("(none on either side)") == 10
    assert "LIMITS" not in text
    page = render_html(empty)
    checked(page)
    assert page.count("None on either side.") == 10
    assert 'class="bar ' not in page


def test_zero_counts_draw_empty_bars(report: dict[str, Any]) -> None:
    for name in ("current", "candidate"):
        report["sides"][name]["stages"] = {"acquisition": 0}
    page = render_html(report)
    stages = page.split('<section id="stages">')[1].split("</section>")[0]
    assert stages.count('width="0.00"') == 2
