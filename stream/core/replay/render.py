"""A policy-replay report rendered as a terminal table or as one self-contained HTML page.

A replay runs a candidate policy next to the policy in force over a recorded window of
customer events; the report (a JSON-ready dict built elsewhere) says what each would have
done. These functions only format that dict: pure, no I/O.

Why an HTML file and not the web UI: a marketer attaches the report to a change request and
reviews it there, without a running worker. So the page stands alone: inline CSS, bars drawn
as inline SVG, no script, and no font, image or stylesheet fetched; it opens offline from a
file and prints well. Every string from the report (customer ids, action, channel, journey
and policy names, reasons) is user data and goes through ``html.escape``.

Each section compares the two sides (``current | candidate | change``); its rows are sorted
by the larger of the two values, descending, then by name, except the fixed order of the
totals and of a journey's moves and the report's own order of the messages-per-customer
distribution (a histogram read in its key order: ``0, 1, 2, ..., 5+``).
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

SIDES = ("current", "candidate")
COLOURS = {"current": "#4e79a7", "candidate": "#f28e2b"}  # blue and orange: colour-blind safe
TEXT_EXAMPLES = 10  # examples of differences listed in the text rendering
MIN_WIDTH = 20  # a narrower text width is taken as this one
MIN_COLUMNS = (9, 9, 15)  # text widths of the current, candidate and change columns, at least
MIN_LABEL = 16  # text width of the label column, at least (when the line has room)
JOURNEY_MOVES = ("entered", "exited", "converted")
NONE_TEXT = "(none on either side)"
_WHOLE_MINUTE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d):00(?:\.0+)?(Z|[+-]\d\d:\d\d)$")

Row = tuple[str, int, int]  # label, current, candidate
Line = Row | str  # a plain string heads a group of rows (a journey)


@dataclass(frozen=True)
class Comparison:
    """One section of the report: counts of the two sides, row by row."""

    key: str  # the HTML id of the section
    title: str
    label: str  # the heading of the label column
    rows: tuple[Line, ...]
    bars: bool = False  # drawn as paired bars in HTML
    notes: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (side, customer ids) listed below


@dataclass(frozen=True)
class Layout:
    """How the text tables are laid out, the same for every section so the columns line up."""

    width: int  # of a line
    label: int  # of the label column
    columns: tuple[int, ...]  # of the current, candidate and change columns
    percent: bool  # whether a change shows its percent


# (side key, title, label column, bars in HTML), in the order of the report
_COUNTED = (
    ("actions", "Messages by action", "action", True),
    ("channels", "Messages by channel", "channel", True),
    ("stages", "Messages by stage", "stage", True),
    ("suppressions", "Suppressions by reason", "reason", True),
    ("cap_hits", "Cap hits", "cap", False),
    ("held", "Held by quiet hours, by channel", "channel", False),
)


# --- reading the report: tolerant of missing keys and of values of the wrong type


def _map(value: Any, key: str) -> Mapping[str, Any]:
    found = value.get(key) if isinstance(value, Mapping) else None
    return found if isinstance(found, Mapping) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _str(value: Any) -> str:
    return "" if value is None else str(value)


def _strings(value: Any) -> tuple[str, ...]:
    return tuple(_str(item) for item in value) if isinstance(value, list | tuple) else ()


def _counts(value: Mapping[str, Any]) -> dict[str, int]:
    return {_str(name): _int(count) for name, count in value.items()}


def _side(report: Mapping[str, Any], side: str) -> Mapping[str, Any]:
    return _map(_map(report, "sides"), side)


def _paired(report: Mapping[str, Any], key: str) -> tuple[dict[str, int], dict[str, int]]:
    current, candidate = (_counts(_map(_side(report, side), key)) for side in SIDES)
    return current, candidate


def _when(value: Any) -> str:
    """A timestamp without its seconds when they are zero: 2026-12-01T10:00Z."""
    return _WHOLE_MINUTE.sub(r"\1\2", _str(value))


def _sent(choice: str) -> str:
    """What a decision sent, in words: "cart_reminder@email" reads "email cart_reminder"."""
    if not choice:
        return "nothing"
    parts = (part.partition("@") for part in choice.split("+"))
    return " + ".join(f"{channel} {action}" if at else action for action, at, channel in parts)


def _change(current: int, candidate: int, percent: bool = True) -> str:
    """The candidate's change: +n / -n, with the percent when the current count is not 0."""
    diff = candidate - current
    if diff == 0 or not percent:
        return f"{diff:+d}" if diff else "0"
    if current > 0:
        return f"{diff:+d} ({100 * diff / current:+.1f}%)"
    return f"{diff:+d} (new)"


def _policy(policy: Mapping[str, Any]) -> str:
    name, version = _str(policy.get("name")), _str(policy.get("version"))
    return f"{name} ({version})" if version and version != name else name or version


def _title(report: Mapping[str, Any]) -> str:
    return _str(report.get("title")) or "Policy replay"


# --- the sections, shared by both renderings


def _ranked(current: Mapping[str, int], candidate: Mapping[str, int]) -> tuple[Row, ...]:
    names = sorted(
        current.keys() | candidate.keys(),
        key=lambda name: (-max(current.get(name, 0), candidate.get(name, 0)), name),
    )
    return tuple((name, current.get(name, 0), candidate.get(name, 0)) for name in names)


def _ordered(current: Mapping[str, int], candidate: Mapping[str, int]) -> tuple[Row, ...]:
    names = [*current, *(name for name in candidate if name not in current)]
    return tuple((name, current.get(name, 0), candidate.get(name, 0)) for name in names)


def _totals(report: Mapping[str, Any]) -> Comparison:
    current, candidate = _side(report, "current"), _side(report, "candidate")
    rows = tuple(
        (name, _int(current.get(name)), _int(candidate.get(name)))
        for name in ("decisions", "messages")
    )
    return Comparison("totals", "Decisions and messages", "", rows)


def _distribution(report: Mapping[str, Any]) -> Comparison:
    rows = _ordered(*_paired(report, "messages_per_customer"))
    return Comparison("per-customer", "Customers by messages received", "messages", rows, True)


def _over_threshold(report: Mapping[str, Any]) -> Comparison:
    found = {side: _map(_side(report, side), "over_threshold") for side in SIDES}
    title = "Customers over the threshold"
    if not any(found.values()):
        return Comparison("over-threshold", title, "customers with", ())
    limits = sorted({_int(over.get("threshold")) for over in found.values() if over})
    label = f"more than {' / '.join(map(str, limits))} messages"
    current, candidate = (_int(found[side].get("customers")) for side in SIDES)
    notes = tuple((side, ids) for side in SIDES if (ids := _strings(found[side].get("examples"))))
    return Comparison(
        "over-threshold", title, "customers with", ((label, current, candidate),), notes=notes
    )


def _journey_rows(
    name: str, current: Mapping[str, Any], candidate: Mapping[str, Any]
) -> list[Line]:
    before, after = _counts(_map(current, name)), _counts(_map(candidate, name))
    others = sorted((before.keys() | after.keys()) - set(JOURNEY_MOVES))
    moves = [*JOURNEY_MOVES, *others]
    return [name, *((move, before.get(move, 0), after.get(move, 0)) for move in moves)]


def _journeys(report: Mapping[str, Any]) -> Comparison:
    current = _map(_side(report, "current"), "journeys")
    candidate = _map(_side(report, "candidate"), "journeys")

    def entered(name: str) -> int:
        return max(_int(_map(side, name).get("entered")) for side in (current, candidate))

    names = sorted(current.keys() | candidate.keys(), key=lambda name: (-entered(name), name))
    rows = [row for name in names for row in _journey_rows(name, current, candidate)]
    return Comparison("journeys", "Journeys", "journey", tuple(rows))


def _comparisons(report: Mapping[str, Any]) -> list[Comparison]:
    """Every section before the differences, in the order of the report."""
    counted = [
        Comparison(key, title, label, _ranked(*_paired(report, key)), bars)
        for key, title, label, bars in _COUNTED
    ]
    return [
        _totals(report),
        *counted,
        _distribution(report),
        _over_threshold(report),
        _journeys(report),
    ]


def _outcomes(report: Mapping[str, Any]) -> Comparison:
    outcomes = _map(report, "outcomes")
    rows = _ranked(_counts(_map(outcomes, "current")), _counts(_map(outcomes, "candidate")))
    return Comparison("outcomes", "Outcomes kept and dropped", "outcomes", rows)


def _facts(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    window, policies = _map(report, "window"), _map(report, "policies")
    start = _when(window.get("from")) or "the first record"
    end = _when(window.get("to")) or "the last record"
    records, customers = _int(window.get("records")), _int(window.get("customers"))
    return [
        ("generated", _when(report.get("generated_at"))),
        ("source", _str(window.get("source"))),
        ("window", f"{start} to {end}"),
        ("records", f"{records} records, {customers} customers"),
        ("current", _policy(_map(policies, "current"))),
        ("candidate", _policy(_map(policies, "candidate"))),
    ]


def _difference_counts(report: Mapping[str, Any]) -> list[tuple[str, str]]:
    differences = _map(report, "differences")
    compared = _int(differences.get("decisions_compared"))
    differ = _int(differences.get("decisions_differ"))
    customers = _int(differences.get("customers_differ"))
    in_window = _int(_map(report, "window").get("customers"))
    share = f" ({100 * differ / compared:.1f}% of compared)" if compared else ""
    of_window = f" of {in_window}" if in_window else ""
    return [
        ("decisions compared", str(compared)),
        ("decisions that differ", f"{differ}{share}"),
        ("customers affected", f"{customers}{of_window}"),
    ]


def _examples(report: Mapping[str, Any]) -> list[tuple[str, ...]]:
    """Each example of a difference: customer, at, trigger, before, after, because."""
    found = _map(report, "differences").get("examples")
    examples = [ex for ex in found if isinstance(ex, Mapping)] if isinstance(found, list) else []
    return [
        (
            _str(ex.get("customer")),
            _when(ex.get("at")),
            _str(ex.get("trigger")),
            _sent(_str(ex.get("before"))),
            _sent(_str(ex.get("after"))),
            _str(ex.get("because")),
        )
        for ex in examples
    ]


# --- text


def _clip(text: str, width: int) -> str:
    """``text`` cut to ``width`` characters, an ellipsis marking the cut."""
    if len(text) <= width:
        return text
    return text[: width - 1] + "…" if width > 1 else text[:width]


def _wrap(text: str, width: int, first: str = "  ", rest: str = "    ") -> list[str]:
    wrapped = textwrap.wrap(
        text, width, initial_indent=first, subsequent_indent=rest, break_on_hyphens=False
    )
    return wrapped or [first]


def _heading(title: str, width: int, rule: str = "-") -> list[str]:
    title = _clip(title, width)
    return [title, rule * len(title)]


def _text_header(report: Mapping[str, Any], width: int) -> list[str]:
    facts = _facts(report)
    pad = max(len(name) for name, _ in facts) + 2
    lines = _heading(_title(report), width, "=")
    return [*lines, *(_clip(f"{name:<{pad}}{value}", width) for name, value in facts)]


def _text_limits(report: Mapping[str, Any], width: int) -> list[str]:
    limits = _strings(report.get("limits"))
    if not limits:
        return []
    lines = ["", *_heading("LIMITS: what this replay cannot tell", width, "=")]
    return lines + [line for text in limits for line in _wrap(text, width, "  - ")]


def _cells(row: Row, percent: bool = True) -> tuple[str, str, str]:
    return str(row[1]), str(row[2]), _change(row[1], row[2], percent)


def _columns(rows: Sequence[Row], least: Sequence[int], percent: bool) -> tuple[int, ...]:
    cells = [_cells(row, percent) for row in rows]
    return tuple(max([size, *(len(cell[n]) for cell in cells)]) for n, size in enumerate(least))


def _layout(sections: Sequence[Comparison], width: int) -> Layout:
    """One layout for every table, so that the columns of all sections line up; when the
    line is narrow the count columns shrink to their contents, then lose the percents."""
    rows = [row for section in sections for row in section.rows if not isinstance(row, str)]
    labels = [len(row[0]) + 2 for row in rows] + [len(section.label) for section in sections]
    wanted = max([MIN_LABEL, *labels])
    heads = [len(head) for head in (*SIDES, "change")]
    for percent, least in ((True, MIN_COLUMNS), (True, heads), (False, heads)):
        columns = _columns(rows, least, percent)
        room = width - sum(columns) - 2 * len(columns)
        if room >= MIN_LABEL:
            break
    return Layout(width, max(1, min(room, wanted)), columns, percent)


def _text_row(label: str, cells: Sequence[str], layout: Layout) -> str:
    numbers = "  ".join(f"{cell:>{size}}" for cell, size in zip(cells, layout.columns, strict=True))
    return f"{_clip(label, layout.label):<{layout.label}}  {numbers}"


def _text_table(label: str, rows: Sequence[Line], layout: Layout) -> list[str]:
    lines = [_text_row(label, (*SIDES, "change"), layout)]
    indent = ""
    for row in rows:
        if isinstance(row, str):
            lines.append(_clip(row, layout.width))
            indent = "  "
        else:
            lines.append(_text_row(indent + row[0], _cells(row, layout.percent), layout))
    return lines


def _text_section(section: Comparison, layout: Layout) -> list[str]:
    lines = ["", *_heading(section.title, layout.width)]
    if not section.rows:
        return [*lines, f"  {NONE_TEXT}"]
    lines += _text_table(section.label, section.rows, layout)
    for side, ids in section.notes:
        lines += _wrap(f"{side}: {', '.join(ids)}", layout.width)
    return lines


def _text_example(example: Sequence[str]) -> str:
    customer, at, trigger, before, after, because = example
    where = " ".join(part for part in (customer, at, trigger) if part)
    reason = f", because {because}" if because else ""
    return f"{where}: {before} -> {after}{reason}"


def _text_differences(report: Mapping[str, Any], width: int) -> list[str]:
    lines = ["", *_heading("Differences", width)]
    lines += [_clip(f"  {name}: {value}", width) for name, value in _difference_counts(report)]
    examples = _examples(report)
    if not examples:
        return [*lines, "  (no examples)"]
    shown = examples[:TEXT_EXAMPLES]
    lines.append(_clip(f"  examples ({len(shown)} of {len(examples)} listed):", width))
    return lines + [line for ex in shown for line in _wrap(_text_example(ex), width)]


def render_text(report: Mapping[str, Any], width: int = 100) -> str:
    """The report as a plain-text table for a terminal, every line within ``width``."""
    width = max(width, MIN_WIDTH)
    sections = [*_comparisons(report), _outcomes(report)]
    layout = _layout(sections, width)
    lines = [*_text_header(report, width), *_text_limits(report, width)]
    for section in sections[:-1]:
        lines += _text_section(section, layout)
    lines += _text_differences(report, width)
    lines += _text_section(sections[-1], layout)
    return "\n".join(_clip(line.rstrip(), width) for line in lines) + "\n"


# --- HTML

_CSS = """
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial,
  sans-serif; color: #1f2328; background: #fff; margin: 0 auto; max-width: 62rem;
  padding: 1.5rem; }
h1 { font-size: 1.5rem; margin: 0 0 .75rem; }
h2 { font-size: 1.1rem; margin: 0 0 .5rem; padding-bottom: .25rem;
  border-bottom: 1px solid #d0d7de; }
h3 { font-size: 1rem; margin: 1rem 0 .5rem; }
section { margin: 1.75rem 0; break-inside: avoid; page-break-inside: avoid; }
table { border-collapse: collapse; width: 100%; }
th, td { padding: .25rem .5rem; border-bottom: 1px solid #eaeef2; text-align: left;
  vertical-align: top; }
thead th { border-bottom: 1px solid #8c959f; font-weight: 600; }
.n { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.facts { width: auto; }
table.facts th { font-weight: 600; padding-right: 1.5rem; }
tr.group th { background: #f6f8fa; }
tr.group ~ tr th { padding-left: 1.5rem; font-weight: normal; }
tbody th { font-weight: normal; overflow-wrap: anywhere; }
.limits { border: 2px solid #bf8700; background: #fff8c5; border-radius: 6px;
  padding: .75rem 1rem; margin: 1.25rem 0; }
.limits h2 { border: 0; margin: 0 0 .25rem; }
.limits ul { margin: 0; padding-left: 1.25rem; }
.legend { display: flex; gap: 1.25rem; flex-wrap: wrap; margin: 0 0 .5rem; color: #57606a; }
.legend span { display: inline-flex; align-items: center; gap: .35rem; }
td.bars { width: 55%; }
.pair { display: flex; align-items: center; gap: .5rem; }
.pair svg { flex: 1; min-width: 0; height: .8rem; }
.pair .n { min-width: 3.5rem; }
.empty { color: #57606a; font-style: italic; }
.ids { color: #57606a; overflow-wrap: anywhere; }
@media print {
  body { max-width: none; padding: 0; font-size: 10pt; }
  .limits { background: none; }
  thead { display: table-header-group; }
  tr { break-inside: avoid; page-break-inside: avoid; }
}
@page { margin: 15mm; }
"""


def _e(text: str) -> str:
    return html.escape(text, quote=True)


def _swatch(side: str) -> str:
    return (
        '<svg width="12" height="12" viewBox="0 0 12 12" aria-hidden="true">'
        f'<rect width="12" height="12" fill="{COLOURS[side]}"/></svg>'
    )


def _html_legend(report: Mapping[str, Any]) -> str:
    policies = _map(report, "policies")
    items = "".join(
        f"<span>{_swatch(side)}{side}: {_e(_policy(_map(policies, side)))}</span>" for side in SIDES
    )
    return f'<p class="legend">{items}</p>'


def _html_facts(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(
        f'<tr><th scope="row">{_e(name)}</th><td>{_e(value)}</td></tr>' for name, value in rows
    )
    return f'<table class="facts"><tbody>{body}</tbody></table>'


def _html_limits(report: Mapping[str, Any]) -> str:
    limits = _strings(report.get("limits"))
    if not limits:
        return ""
    items = "".join(f"<li>{_e(text)}</li>" for text in limits)
    return (
        '<aside class="limits" role="note"><h2>Limits: what this replay cannot tell</h2>'
        f"<ul>{items}</ul></aside>"
    )


def _html_head(label: str, columns: Sequence[str]) -> str:
    cells = "".join(f'<th scope="col" class="n">{_e(column)}</th>' for column in columns)
    return f'<thead><tr><th scope="col">{_e(label)}</th>{cells}</tr></thead>'


def _html_bar(side: str, value: int, top: int) -> str:
    share = 100 * value / top if top else 0.0
    return (
        f'<div class="pair {side}" title="{side}: {value}">'
        '<svg class="bar" viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true">'
        '<rect width="100" height="10" fill="#eef0f3"/>'
        f'<rect class="bar {side}" width="{share:.2f}" height="10" fill="{COLOURS[side]}"/>'
        f'</svg><span class="n">{value}</span></div>'
    )


def _html_bar_row(row: Row, top: int) -> str:
    name, current, candidate = row
    bars = _html_bar("current", current, top) + _html_bar("candidate", candidate, top)
    return (
        f'<tr><th scope="row">{_e(name)}</th><td class="bars">{bars}</td>'
        f'<td class="n">{_e(_change(current, candidate))}</td></tr>'
    )


def _html_bars(section: Comparison, legend: str) -> str:
    rows = [row for row in section.rows if not isinstance(row, str)]
    top = max(max(current, candidate) for _, current, candidate in rows)
    body = "".join(_html_bar_row(row, top) for row in rows)
    head = (
        f'<thead><tr><th scope="col">{_e(section.label)}</th><th scope="col">current / candidate'
        '</th><th scope="col" class="n">change</th></tr></thead>'
    )
    return f'{legend}<table class="chart">{head}<tbody>{body}</tbody></table>'


def _html_row(row: Line) -> str:
    if isinstance(row, str):
        return f'<tr class="group"><th colspan="4">{_e(row)}</th></tr>'
    name, current, candidate = row
    return (
        f'<tr><th scope="row">{_e(name)}</th><td class="n">{current}</td>'
        f'<td class="n">{candidate}</td><td class="n">{_e(_change(current, candidate))}</td></tr>'
    )


def _html_table(section: Comparison) -> str:
    head = _html_head(section.label, (*SIDES, "change"))
    body = "".join(_html_row(row) for row in section.rows)
    return f'<table class="counts">{head}<tbody>{body}</tbody></table>'


def _html_section(section: Comparison, legend: str) -> str:
    if not section.rows:
        body = '<p class="empty">None on either side.</p>'
    else:
        body = _html_bars(section, legend) if section.bars else _html_table(section)
    notes = "".join(
        f'<p class="ids">{side}: {_e(", ".join(ids))}</p>' for side, ids in section.notes
    )
    return f'<section id="{section.key}"><h2>{_e(section.title)}</h2>{body}{notes}</section>\n'


_EXAMPLE_COLUMNS = ("customer", "at", "trigger", "current sends", "candidate sends", "because")


def _html_examples(examples: Sequence[Sequence[str]]) -> str:
    head = "".join(f'<th scope="col">{column}</th>' for column in _EXAMPLE_COLUMNS)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_e(cell)}</td>" for cell in example) + "</tr>"
        for example in examples
    )
    return f'<table class="examples"><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'


def _html_differences(report: Mapping[str, Any]) -> str:
    examples = _examples(report)
    listed = _html_examples(examples) if examples else '<p class="empty">No examples.</p>'
    return (
        f'<section id="differences"><h2>Differences</h2>{_html_facts(_difference_counts(report))}'
        f"<h3>Examples</h3>{listed}</section>\n"
    )


def render_html(report: Mapping[str, Any]) -> str:
    """The report as one self-contained HTML5 page: no script, nothing fetched."""
    title, legend = _e(_title(report)), _html_legend(report)
    sections = "".join(_html_section(section, legend) for section in _comparisons(report))
    outcomes = _html_section(_outcomes(report), legend)
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        f"<header><h1>{title}</h1>{_html_facts(_facts(report))}</header>\n"
        f"{_html_limits(report)}\n<main>\n{sections}{_html_differences(report)}{outcomes}"
        "</main>\n</body>\n</html>\n"
    )
