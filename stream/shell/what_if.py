"""``journey simulate-policy`` and ``journey evaluate-policy``: read a window, replay it
through two policies (or estimate the candidate from the logged decisions), write the
report. The work is ``stream.core.replay``."""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from stream.config import Settings
from stream.core.decide import Policy, PolicyError, load_policy_file
from stream.core.propensity import EMPTY_MODEL, PropensityModel
from stream.core.replay.compare import Differences
from stream.core.replay.evaluate import (
    Collected,
    Logged,
    collect,
    decode_logged,
    encode_logged,
    estimates,
    logged_from_record,
    logged_key,
    support,
)
from stream.core.replay.log import LogRecord
from stream.core.replay.render import render_html
from stream.core.replay.side import new_context
from stream.core.replay.simulate import Window, new_side, report, simulate
from stream.core.schemas import load_catalog
from stream.core.state import Limits
from stream.core.timestamps import format_ms
from stream.shell.replay_source import (
    Bounds,
    DiskStores,
    export_window,
    merged,
    read_log,
    stamp,
    write_log,
)

Say = Callable[[str], None]


class WhatIfError(Exception):
    """What stops a replay, on one line (a bad policy, an unreadable log)."""


@dataclass(frozen=True, slots=True)
class Request:
    """What ``journey simulate-policy`` was asked."""

    candidate: Path
    current: Path
    log: Path | None = None  # an exported window instead of the topic
    bounds: Bounds = field(default_factory=Bounds)
    save: Path | None = None  # also export the window read from the topic
    report_dir: Path = field(default_factory=lambda: Path("policy-replay"))
    threshold: int = 3
    examples: int = 10
    model: str = "latest"  # latest (the model topic) | priors


def load_policies(request: Request) -> tuple[Policy, Policy]:
    """The policy in force and the candidate, both checked as ``journey policy check`` does."""
    catalog = load_catalog()
    policies = []
    for role, path in (("policy in force", request.current), ("candidate", request.candidate)):
        try:
            policies.append(load_policy_file(path, catalog))
        except PolicyError as exc:
            raise WhatIfError(f"the {role} does not pass `journey policy check`:\n{exc}") from None
        except OSError as exc:
            raise WhatIfError(f"cannot read the {role} {path}: {exc.strerror}") from None
    return policies[0], policies[1]


def simulate_policy(
    settings: Settings, request: Request, policies: tuple[Policy, Policy], say: Say
) -> dict[str, Any]:
    """Replay the window through both policies (``load_policies``); write the report."""
    current, candidate = policies
    model, model_text = _model(settings, request, say)
    context = new_context(
        Limits(settings.dedupe_window, settings.recent_events), model, settings.decisions_kept
    )
    stores = DiskStores()
    try:
        with tempfile.TemporaryDirectory(prefix="journey-window-") as folder:
            records, source = _records(settings, request, Path(folder), say)
            before = new_side("current", current, context, stores)
            after = new_side("candidate", candidate, context, stores)
            differences = Differences(stores("differences"), wanted=request.examples)
            clock = settings.clock()
            count, first, last = simulate(
                records,
                before,
                after,
                differences,
                lambda ms: int(clock.to_clock_ms(ms)),
                _progress(say),
            )
            window = Window(source, count, first, last)
            result = report(window, before, after, differences, request.threshold, model_text)
    finally:
        stores.close()
    result["generated_at"] = stamp()
    _write(result, request.report_dir, say)
    return result


def _model(settings: Settings, request: Request, say: Say) -> tuple[PropensityModel, str]:
    if request.model == "priors":
        return EMPTY_MODEL, "the policies' priors only, nothing learnt"
    from stream.shell.report import read_model

    rows = asyncio.run(read_model(settings))
    say(f"model: {len(rows)} learned actions from {settings.topics.model}")
    newest = max((int(row.get("updated_at_ms", 0)) for row in rows), default=0)
    text = f"the model topic as read now, {len(rows)} actions"
    if newest:
        text += f", last updated {format_ms(newest)}"
    return PropensityModel({str(row["action"]): row for row in rows}, newest), text


def _records(
    settings: Settings, request: Request, folder: Path, say: Say
) -> tuple[Iterator[LogRecord], str]:
    if request.log is not None:
        return _file(request.log), f"file {request.log}"
    topic = settings.topics.customer_events
    records = merged(_export(settings, request.bounds, folder, say, topic))
    if request.save is not None:
        records = write_log(records, request.save)
    return records, f"kafka {topic}"


def _file(path: Path) -> Iterator[LogRecord]:
    if not path.is_file():
        raise WhatIfError(f"no log file {path}")
    return read_log(path)


def _export(settings: Settings, bounds: Bounds, folder: Path, say: Say, topic: str) -> list[Path]:
    say(f"reading the window of {topic} ...")
    try:
        return asyncio.run(export_window(settings, bounds, folder, say, topic))
    except TimeoutError as exc:
        raise WhatIfError(f"{topic}: {exc}") from None


def _progress(say: Say) -> Callable[[int, int], None]:
    started = time.monotonic()
    last = [started]

    def progress(done: int, at_ms: int) -> None:
        now = time.monotonic()
        if now - last[0] >= 1.0:
            last[0] = now
            rate = done / max(now - started, 1e-9)
            say(f"replayed {done} records ({rate:.0f}/s), up to {format_ms(at_ms)}")

    return progress


def _write(result: dict[str, Any], folder: Path, say: Say) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.json").write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
    (folder / "report.html").write_text(render_html(result), encoding="utf-8")
    say(f"wrote {folder / 'report.json'} and {folder / 'report.html'}")


@dataclass(frozen=True, slots=True)
class Evaluation:
    """What ``journey evaluate-policy`` was asked, beyond the window."""

    decisions_log: Path | None = None  # exported explain records instead of the topic
    save_decisions: Path | None = None  # also export the explain records read from the topic
    confidence: float = 0.95
    out: Path | None = None  # the JSON report


def evaluate_policy(
    settings: Settings,
    request: Request,
    asked: Evaluation,
    policies: tuple[Policy, Policy],
    say: Say,
) -> dict[str, Any]:
    """Estimate the candidate's value (``load_policies``) from the window's decisions."""
    current, candidate = policies
    if current.holdout != candidate.holdout:
        raise WhatIfError(
            "the candidate changes the control group or the experiments: evaluate-policy "
            "compares selections under the same assignment (keep holdout and experiments)"
        )
    model, model_text = _model(settings, request, say)
    collected = _collect(settings, request, asked, (current, candidate), model, say)
    result = evaluation_report(current, candidate, collected, asked.confidence, model_text)
    if asked.out is not None:
        asked.out.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2))
        say(f"wrote {asked.out}")
    return result


def _collect(
    settings: Settings,
    request: Request,
    asked: Evaluation,
    policies: tuple[Policy, Policy],
    model: PropensityModel,
    say: Say,
) -> Collected:
    """The rounds of the window: the logged decisions, the candidate's answers, rewards."""
    limits = Limits(settings.dedupe_window, settings.recent_events)
    context = new_context(limits, model, settings.decisions_kept)
    clock = settings.clock()
    stores = DiskStores()
    try:
        with tempfile.TemporaryDirectory(prefix="journey-window-") as folder:
            logged = _logged(settings, request, asked, Path(folder), stores, say)
            records, source = _records(settings, request, Path(folder), say)
            side = new_side("current", policies[0], context, stores)
            return collect(
                _counted(records, say),
                side,
                policies[1],
                logged,
                context,
                lambda ms: int(clock.to_clock_ms(ms)),
                source,
            )
    finally:
        stores.close()


def _logged(
    settings: Settings,
    request: Request,
    asked: Evaluation,
    folder: Path,
    stores: DiskStores,
    say: Say,
) -> Callable[[str], Logged | None]:
    """The logged decisions of the window, by decision id, in a store."""
    if asked.decisions_log is not None:
        lines: Iterator[LogRecord] = _file(asked.decisions_log)
    else:
        topic = settings.topics.decisions  # by time only: offsets are the events topic's
        window = Bounds(request.bounds.since_ms, request.bounds.until_ms)
        lines = merged(_export(settings, window, folder, say, topic))
        if asked.save_decisions is not None:
            lines = write_log(lines, asked.save_decisions)
    store = stores("logged")
    kept = 0
    for line in lines:
        record = orjson.loads(line.value)
        found = logged_from_record(record)
        if found is not None:
            store[logged_key(record)] = encode_logged(found)
            kept += 1
    say(f"{kept} logged decisions with a probability")

    def lookup(decision_id: str) -> Logged | None:
        raw = store.get(decision_id.encode())
        return decode_logged(raw) if raw is not None else None

    return lookup


def _counted(records: Iterator[LogRecord], say: Say) -> Iterator[LogRecord]:
    progress = _progress(say)
    for count, record in enumerate(records, start=1):
        if count % 1_000 == 0:
            progress(count, record.timestamp_ms)
        yield record


def evaluation_report(
    current: Policy,
    candidate: Policy,
    collected: Collected,
    confidence: float,
    model: str,
) -> dict[str, Any]:
    """The evaluation as JSON-ready data (``render_evaluation`` prints it)."""
    return {
        "title": f"Off-policy estimate: {candidate.name} against {current.name}",
        "generated_at": stamp(),
        "window": {"source": collected.source, "records": collected.records},
        "policies": {
            "current": {"name": current.name, "version": current.version},
            "candidate": {"name": candidate.name, "version": candidate.version},
        },
        "confidence": confidence,
        "estimates": estimates(collected, confidence),
        "support": support(collected),
        "limits": [line.format(model=model) for line in EVALUATION_LIMITS],
    }


EVALUATION_LIMITS = (
    "A round is a decision the policy in force logged; its reward is what the log says "
    "its actions earned (outcomes after the window's end are not counted).",
    "The candidate decides on the state the policy in force left: later decisions do not "
    "see what the candidate would have sent before (caps, fatigue, journeys).",
    "The candidate scores with the model {model}.",
    "Choices the policy in force never tried in the same state count as earning 0 "
    "(see Support); the intervals are normal approximations.",
)
