"""``journey evaluate-policy``'s report for the terminal: the estimates per metric, the
log's support for the candidate, and the limits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

ESTIMATORS = (
    ("logged", "policy in force (logged)"),
    ("ips", "candidate, IPS"),
    ("snips", "candidate, self-normalised IPS"),
    ("dr", "candidate, doubly robust"),
)


def render_evaluation(report: Mapping[str, Any]) -> str:
    """The evaluation report as text."""
    lines = [str(report["title"]), "=" * len(str(report["title"]))]
    window = report["window"]
    lines.append(f"window     {window['records']} records from {window['source']}")
    for role, policy in report["policies"].items():
        lines.append(f"{role:<10} {policy['version']}")
    confidence = round(100 * float(report["confidence"]))
    for metric, evaluation in report["estimates"].items():
        lines += ["", f"{metric} per decision ({confidence} % interval)", "-" * 60]
        lines += [_estimate_line(label, evaluation[key]) for key, label in ESTIMATORS]
        ess, weight = evaluation["effective_sample_size"], evaluation["max_weight"]
        lines.append(
            f"  {evaluation['rounds']} logged decisions, effective sample size "
            f"{_number(ess, '.0f')}, largest weight {_number(weight, '.1f')}"
        )
    lines += ["", *_support_lines(report["support"]), "", "Limits:"]
    lines += [f"  - {line}" for line in report["limits"]]
    return "\n".join(lines)


def _estimate_line(label: str, estimate: Mapping[str, Any]) -> str:
    value, low, high = (_number(estimate[key], ".4f") for key in ("value", "low", "high"))
    return f"  {label:<32} {value:>8}   [{low}, {high}]"


def _number(value: Any, spec: str) -> str:
    return "n/a" if value is None else format(float(value), spec)


def _support_lines(support: Mapping[str, Any]) -> list[str]:
    share = 100 * float(support["unsupported_share"])
    lines = [
        f"Support: {share:.1f} % of the candidate's choices were never tried by the policy in "
        "force in the same state (IPS counts them as 0: the estimate is too low by up to that)."
    ]
    for choice, count in support["unsupported_choices"].items():
        lines.append(f"  never tried: {choice} ({count} decisions)")
    if support.get("failed_records"):
        lines.append(
            f"  {support['failed_records']} records could not be folded (the worker "
            "dead-letters them too): skipped"
        )
    if support["logged_missing"]:
        lines.append(
            f"  {support['logged_missing']} replayed decisions had no logged record with a "
            "probability (written before records carried one, or not in the window): left out"
        )
    return lines
