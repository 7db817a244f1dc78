"""The ``journey`` command: worker | collector | simulate | sender | topics | watch |
policy check | simulate-policy | evaluate-policy | forget | report | customer."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any, TypeAlias

from stream.config import Settings, SettingsError, environment_with_file, load_settings

DEMO_HINT = "the demo writes its settings to .run/demo/journey.env"


class CommandFailed(Exception):
    """What went wrong, said on one line; the command exits with 1."""


def _settings() -> Settings:
    """The command's settings: the environment over its settings file (JOURNEY_ENV_FILE),
    naming the file on stderr when one was read."""
    environ, path = environment_with_file(os.environ)
    if path is not None:
        print(f"journey: settings from {path} (JOURNEY_* variables set win)", file=sys.stderr)
    return load_settings(environ)


def _require_topics(settings: Settings, names: list[str]) -> None:
    """Refuse to go on unless every topic in ``names`` exists: a command creates none."""
    from stream.shell.topics import MissingTopicsError, require_topics

    try:
        asyncio.run(require_topics(settings, names))
    except MissingTopicsError as exc:
        prefix = settings.topics.prefix
        raise CommandFailed(
            f"{exc} (is JOURNEY_TOPIC_PREFIX={prefix} right? {DEMO_HINT})"
        ) from None


def _worker(args: argparse.Namespace) -> int:
    settings = _settings()  # a bad setting ends the command before Faust is even imported

    import faust

    from stream.app import create_app
    from stream.core.decide import PolicyError
    from stream.shell.topics import ensure_topics

    logging.basicConfig(level=settings.log_level.upper())
    try:
        journey = create_app(settings)
    except PolicyError as exc:
        print(f"journey worker: refusing to start, the policy is invalid:\n{exc}", file=sys.stderr)
        return 2
    asyncio.run(ensure_topics(settings))
    asyncio.set_event_loop(asyncio.new_event_loop())
    worker = faust.Worker(journey.app, loglevel=settings.log_level.upper(), quiet=True)
    worker.execute_from_commandline()
    return 0


def _collector(args: argparse.Namespace) -> int:
    settings = _settings()  # the keys file too: a bad one ends the command here, named

    from stream.shell.collector.server import read_keys, run_collector

    keys = read_keys(settings)
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_collector(settings, keys)
    return 0


def _simulate(args: argparse.Namespace) -> int:
    from stream.shell.kafka_security import client_kwargs
    from stream.simulate.producer import run_simulation

    settings = _settings()
    _require_topics(settings, settings.topics.all_events)
    clock = settings.clock()

    def progress(sent: int, elapsed_s: float) -> None:
        print(f"simulate: {sent} events sent in {elapsed_s:.0f} s", flush=True)

    stats = asyncio.run(
        run_simulation(
            settings.broker,
            settings.topics.prefix,
            customers=args.customers,
            rate=args.rate,
            seed=args.seed,
            max_events=args.events,
            duration_s=args.duration,
            on_progress=progress,
            start_ms=clock.now_ms(),
            time_scale=clock.speed,
            clock_now_ms=clock.now_ms if clock.speed != 1 or clock.start_ms else None,
            step_ms=args.step_ms,
            lapse_share=args.lapse_share,
            security=client_kwargs(settings),
            compression_type=settings.compression_type,
        )
    )
    print(
        f"simulate: sent {stats.events_sent} events in {stats.elapsed_s:.1f} s "
        f"({stats.events_per_s:.0f}/s): {dict(sorted(stats.by_channel.items()))}"
    )
    return 0


def _sender(args: argparse.Namespace) -> int:
    from stream.shell.kafka_security import client_kwargs
    from stream.simulate.preferences import preferences_for
    from stream.simulate.sender import SenderStats, run_sender

    settings = _settings()
    topics = settings.topics
    _require_topics(settings, [*topics.all_actions, topics.outcomes, *topics.all_events])
    clock = settings.clock()

    def progress(stats: SenderStats) -> None:
        print(
            f"sender: {stats.actions_received} actions, outcomes {dict(stats.outcomes_sent)}, "
            f"{stats.conversions_sent} orders",
            flush=True,
        )

    try:
        preferences = preferences_for(args.preferences, args.seed)
    except ValueError as exc:
        print(f"sender: {exc}", file=sys.stderr)
        return 2
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_sender(
                settings.broker,
                settings.topics.prefix,
                preferences,
                seed=args.seed,
                duration_s=args.duration,
                clock_now_ms=clock.now_ms,
                on_progress=progress if not args.quiet else None,
                security=client_kwargs(settings),
                compression_type=settings.compression_type,
            )
        )
    return 0


def _report(args: argparse.Namespace) -> int:
    import json

    from stream.core.uplift import uplift_report
    from stream.shell.report import format_model, format_uplift, read_model

    settings = _settings()
    _require_topics(settings, [settings.topics.model])
    try:
        rows = asyncio.run(read_model(settings))
    except TimeoutError as exc:
        print(f"report: {exc} (has a worker run with this JOURNEY_TOPIC_PREFIX?)", file=sys.stderr)
        return 1
    if args.report == "uplift":
        report = uplift_report(rows)
        print(json.dumps([u.to_dict() for u in report]) if args.json else format_uplift(report))
    else:
        print(json.dumps(rows) if args.json else format_model(rows))
    return 0


def _customer(args: argparse.Namespace) -> int:
    import json
    import urllib.error
    import urllib.parse
    import urllib.request

    settings = _settings()
    if not settings.api_token:
        raise SettingsError(
            "JOURNEY_API_TOKEN is not set "
            "(the demo writes its settings, token included, to .run/demo/journey.env)"
        )
    base = args.url or f"http://127.0.0.1:{settings.web_port}"
    path = f"/customers/{urllib.parse.quote(args.customer_id, safe='')}"
    request = urllib.request.Request(
        base.rstrip("/") + path + ("/decisions" if args.decisions else "")
    )
    request.add_header("Authorization", f"Bearer {settings.api_token}")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # follows merges (308)
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        detail = json.loads(exc.read() or b"{}").get("detail", exc.reason)
        print(f"customer: {exc.code}: {detail}", file=sys.stderr)
        return 1
    except urllib.error.URLError as exc:
        print(
            f"customer: cannot reach {base}: {exc.reason} (is a worker running?)", file=sys.stderr
        )
        return 1
    print(json.dumps(body, indent=2, ensure_ascii=False))
    return 0


def _policy_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stream.core.decide import PolicyError, load_policy_file
    from stream.core.schemas import load_catalog

    catalog = load_catalog()
    failed = 0
    for name in args.files:
        try:
            policy = load_policy_file(Path(name), catalog)
        except PolicyError as exc:
            failed += 1
            print(exc, file=sys.stderr)
            continue
        journeys = ", ".join(journey.version for journey in policy.journeys)
        print(
            f"{name}: OK, {policy.version}, {len(policy.actions)} actions, "
            f"{len(policy.journeys)} journeys{f' ({journeys})' if journeys else ''}"
        )
    return 1 if failed else 0


def _simulate_policy(args: argparse.Namespace) -> int:
    from stream.core.replay.render import render_text
    from stream.shell.what_if import WhatIfError, load_policies, simulate_policy

    settings = _settings()
    request = _what_if_request(args, settings)
    try:
        policies = load_policies(request)  # a bad candidate is refused before anything is read
        _require_topics(settings, _what_if_topics(settings, request, decisions=False))
        result = simulate_policy(settings, request, policies, _say("simulate-policy"))
    except WhatIfError as exc:
        raise CommandFailed(str(exc)) from None
    print(render_text(result))
    return 0


def _evaluate_policy(args: argparse.Namespace) -> int:
    from pathlib import Path

    from stream.core.replay.evaluation_text import render_evaluation
    from stream.shell.what_if import Evaluation, WhatIfError, evaluate_policy, load_policies

    settings = _settings()
    request = _what_if_request(args, settings)
    asked = Evaluation(
        decisions_log=Path(args.decisions_log) if args.decisions_log else None,
        save_decisions=Path(args.save_decisions) if args.save_decisions else None,
        confidence=args.confidence,
        out=Path(args.json) if args.json else None,
    )
    try:
        policies = load_policies(request)
        needed = _what_if_topics(settings, request, decisions=asked.decisions_log is None)
        _require_topics(settings, needed)
        result = evaluate_policy(settings, request, asked, policies, _say("evaluate-policy"))
    except WhatIfError as exc:
        raise CommandFailed(str(exc)) from None
    print(render_evaluation(result))
    return 0


def _what_if_request(args: argparse.Namespace, settings: Settings) -> Any:
    """The window, the two policies and the model of a what-if command."""
    from pathlib import Path

    from stream.shell.what_if import Request

    return Request(
        candidate=Path(args.candidate),
        current=Path(args.current) if args.current else settings.policy_file,
        log=Path(args.log) if args.log else None,
        bounds=_bounds(args),
        save=Path(args.save) if args.save else None,
        report_dir=Path(getattr(args, "report_dir", "policy-replay")),
        threshold=getattr(args, "threshold", 3),
        examples=getattr(args, "examples", 10),
        model="priors" if args.log and args.model is None else args.model or "latest",
    )


def _what_if_topics(settings: Settings, request: Any, decisions: bool) -> list[str]:
    """The topics a what-if command reads: the window's, the decisions', the model's."""
    topics = settings.topics
    needed = [] if request.log else [topics.customer_events]
    needed += [topics.decisions] if decisions else []
    return needed + ([topics.model] if request.model == "latest" else [])


def _say(command: str) -> Any:
    def say(line: str) -> None:
        print(f"{command}: {line}", file=sys.stderr, flush=True)

    return say


def _bounds(args: argparse.Namespace) -> Any:
    """The window's bounds from ``--since``, ``--until`` and ``--offsets``."""
    from stream.shell.replay_source import Bounds

    offsets = None
    if args.offsets:
        offsets = {}
        for item in args.offsets:
            try:
                partition, span = item.split(":", 1)
                start, end = span.split("-", 1)
                offsets[int(partition)] = (int(start), int(end))
            except ValueError:
                raise CommandFailed(
                    f"--offsets {item!r}: expected PARTITION:START-END, e.g. 0:100-500"
                ) from None
    return Bounds(_moment(args.since, "--since"), _moment(args.until, "--until"), offsets)


def _moment(text: str | None, flag: str) -> int | None:
    """An RFC 3339 time, or a duration ago ("2d": two days before now), in epoch ms."""
    import time

    from stream.core.decide.durations import parse_duration_ms
    from stream.core.timestamps import parse_timestamp_ms

    if text is None:
        return None
    try:
        return int(time.time() * 1000) - parse_duration_ms(text)
    except ValueError:
        pass
    try:
        return parse_timestamp_ms(text)
    except ValueError as exc:
        raise CommandFailed(f"{flag} {text!r}: neither a time nor a duration ago ({exc})") from None


def _topics(args: argparse.Namespace) -> int:
    from stream.shell.topics import ensure_topics

    settings = _settings()
    created = asyncio.run(ensure_topics(settings))
    print(f"created {len(created)} topics" + (f": {', '.join(created)}" if created else ""))
    return 0


def _watch(args: argparse.Namespace) -> int:
    from stream.shell.watch import watch_actions

    settings = _settings()
    _require_topics(settings, settings.topics.all_actions)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(watch_actions(settings, args.metrics_url, args.duration, args.quiet))
    return 0


def _forget(args: argparse.Namespace) -> int:
    from stream.shell.forget import forget

    settings = _settings()
    _require_topics(settings, [settings.topics.erasures, settings.topics.customer_events])
    try:
        audit = asyncio.run(forget(settings, args.customer, args.timeout))
    except TimeoutError as exc:
        print(f"forget: {exc} (is a worker running?)", file=sys.stderr)
        return 1
    if not audit["found"]:
        print(f"forget: no profile {args.customer!r}; nothing to erase")
        return 0
    print(
        f"forget: erased {audit['customer_id']} and {audit['identifiers_removed']} "
        "identifier(s), their aliases, timers and held actions"
        + (f" (asked for {args.customer})" if audit["customer_id"] != args.customer else "")
    )
    return 0


# The group of subcommands (argparse has no public name for its type).
Commands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


def build_parser() -> argparse.ArgumentParser:
    """The CLI's argument parser (every setting else comes from JOURNEY_* variables)."""
    parser = argparse.ArgumentParser(
        prog="journey", description="Journey Stream: real-time customer journeys on Kafka."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="run a worker (ingest + per-customer state + decisions)")
    commands.add_parser(
        "collector", help="run the HTTP collector: events and outcomes over HTTP to Kafka"
    )
    _add_simulate(commands)
    _add_sender(commands)
    _add_report(commands)
    _add_customer(commands)
    commands.add_parser("topics", help="create the contract topics (idempotent)")
    _add_policy(commands)
    _add_simulate_policy(commands)
    _add_evaluate_policy(commands)
    _add_forget(commands)
    _add_watch(commands)
    return parser


def _add_simulate(commands: Commands) -> None:
    simulate = commands.add_parser("simulate", help="produce simulated multi-channel traffic")
    simulate.add_argument("--customers", type=int, default=1000)
    simulate.add_argument(
        "--rate", type=float, default=100.0, help="events/s (0: as fast as possible)"
    )
    simulate.add_argument("--seed", type=int, default=42)
    simulate.add_argument("--events", type=int, default=None, help="stop after this many events")
    simulate.add_argument("--duration", type=float, default=None, help="stop after seconds")
    simulate.add_argument(
        "--step-ms",
        type=int,
        default=None,
        help="mean wait between the events of one journey, in clock ms (default: scales with "
        "the traffic)",
    )
    simulate.add_argument(
        "--lapse-share",
        type=float,
        default=0.0,
        help="chance that a buyer goes quiet for 31-60 days after a journey (win-back demo)",
    )


def _add_sender(commands: Commands) -> None:
    sender = commands.add_parser(
        "sender", help="loopback channel sender: answer actions as simulated customers would"
    )
    sender.add_argument(
        "--preferences",
        default="default",
        help="ground truth of the simulated customers: default (segments) or push-only",
    )
    sender.add_argument("--seed", type=int, default=7)
    sender.add_argument("--duration", type=float, default=None, help="stop after seconds")
    sender.add_argument("--quiet", action="store_true", help="no progress lines")


def _add_report(commands: Commands) -> None:
    report = commands.add_parser("report", help="what the engine learnt (from the model topic)")
    report.add_argument(
        "report",
        choices=["uplift", "model"],
        help="uplift: conversion of treated vs control per action; model: learned response rates",
    )
    report.add_argument("--json", action="store_true", help="machine-readable output")


def _add_customer(commands: Commands) -> None:
    customer = commands.add_parser(
        "customer", help="print a customer's unified profile (from a worker's API)"
    )
    customer.add_argument("customer_id", help="customer id or the key a profile was created under")
    customer.add_argument(
        "--url",
        default=None,
        help="a worker's web URL (default: this JOURNEY_WEB_PORT on 127.0.0.1)",
    )
    customer.add_argument("--decisions", action="store_true", help="the latest explain records")


def _add_policy(commands: Commands) -> None:
    policy = commands.add_parser("policy", help="work with decision policies")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True)
    check = policy_commands.add_parser("check", help="validate policy files (exit 1 if any is bad)")
    check.add_argument("files", nargs="+", metavar="FILE")


def _add_what_if(commands: Commands, name: str, help_text: str) -> argparse.ArgumentParser:
    """A what-if command: the candidate, and the options that choose the recorded window."""
    command = commands.add_parser(name, help=help_text)
    command.add_argument("candidate", help="the candidate policy file")
    command.add_argument("--log", help="an exported window (see --save) instead of the topic")
    command.add_argument("--since", help="records from this time (RFC 3339, or a duration ago: 2d)")
    command.add_argument("--until", help="records before this time (RFC 3339, or a duration ago)")
    command.add_argument(
        "--offsets",
        action="append",
        metavar="PARTITION:START-END",
        help="records of a partition between two offsets (repeat per partition)",
    )
    command.add_argument("--save", help="also write the window read from the topic to this file")
    command.add_argument(
        "--model",
        choices=["latest", "priors"],
        default=None,
        help="the learned model both policies decide with: the model topic now (default when "
        "reading the topic) or priors only (default with --log)",
    )
    command.add_argument(
        "--current", help="the policy in force (default: JOURNEY_POLICY_FILE)", default=None
    )
    return command


def _add_simulate_policy(commands: Commands) -> None:
    replay = _add_what_if(
        commands,
        "simulate-policy",
        "replay recorded history through a candidate policy, beside the one in force",
    )
    replay.add_argument(
        "--report-dir", default="policy-replay", help="where report.json and report.html go"
    )
    replay.add_argument(
        "--threshold", type=int, default=3, help="name the customers with more messages than this"
    )
    replay.add_argument("--examples", type=int, default=10, help="explained differences shown")


def _add_evaluate_policy(commands: Commands) -> None:
    evaluate = _add_what_if(
        commands,
        "evaluate-policy",
        "estimate a candidate policy's clicks, conversions and value from logged decisions",
    )
    evaluate.add_argument(
        "--decisions-log",
        help="exported explain records (see --save-decisions) instead of the topic",
    )
    evaluate.add_argument(
        "--save-decisions", help="also write the explain records read from the topic to this file"
    )
    evaluate.add_argument("--confidence", type=float, default=0.95, help="interval coverage")
    evaluate.add_argument("--json", help="also write the estimates to this JSON file")


def _add_forget(commands: Commands) -> None:
    forget_parser = commands.add_parser(
        "forget", help="erase a customer: profile, aliases, timers (right to erasure)"
    )
    forget_parser.add_argument("--customer", required=True, help="customer id (or any key)")
    forget_parser.add_argument("--timeout", type=float, default=60.0)


def _add_watch(commands: Commands) -> None:
    watch = commands.add_parser("watch", help="print actions as they flow, with rates")
    watch.add_argument("--metrics-url", default=None, help="worker /metrics to read events/s from")
    watch.add_argument("--duration", type=float, default=None)
    watch.add_argument("--quiet", action="store_true", help="only the periodic summary")


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of the ``journey`` console script."""
    args = build_parser().parse_args(argv)
    handlers = {
        "worker": _worker,
        "collector": _collector,
        "simulate": _simulate,
        "forget": _forget,
        "topics": _topics,
        "watch": _watch,
        "policy": _policy_check,
        "simulate-policy": _simulate_policy,
        "evaluate-policy": _evaluate_policy,
        "sender": _sender,
        "report": _report,
        "customer": _customer,
    }
    try:
        code = handlers[args.command](args)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's last flush
    except BrokenPipeError:  # the reader left (`journey ... | head`): stop quietly
        from stream.shell.pipes import EXIT_CLOSED_PIPE, discard_stdout

        discard_stdout()
        code = EXIT_CLOSED_PIPE
    except SettingsError as exc:  # a bad JOURNEY_* setting: its name and the fix, no traceback
        print(f"journey {args.command}: {exc}", file=sys.stderr)
        code = 2
    except CommandFailed as exc:
        print(f"journey {args.command}: {exc}", file=sys.stderr)
        code = 1
    sys.exit(code)
