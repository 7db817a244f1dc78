"""The collector's HTTP server (aiohttp.web): routes, authentication, limits, answers.

A POST goes through, in this order (the first check that fails answers):

1. the key (``Authorization: Bearer``, or ``?key=`` for keys that allow it): 401;
   may it write outcomes (``/outcomes``): 403;
2. the Content-Type (415) and the declared size against the key's limit (413);
3. the broker: 503 at once while the producer cannot reach it (``Retry-After``);
4. what the collector holds at once (requests, bytes): 429 (``Retry-After: 1``);
5. the body, read up to the key's limit (413), its HMAC signature if the key has a
   secret (401), split into records (400 if none, 413 if more than the maximum);
6. the key's rate limit (429 with ``Retry-After``), then the channels the records name
   (403 if the key may not write one of them: nothing is written);
7. each record judged as the worker would, the valid ones produced to their topic and
   the refused ones to the DLQ, all acknowledged by the broker (503 if not in time);
   then the per-record answer: 200 all accepted, 207 some refused, 400 none accepted.

``collect_outcomes`` is step 7 for outcome records built anywhere, and ``receive`` is
steps 2-5: ``webhooks.py`` composes them into ``POST /webhooks/{provider}``, where an
email provider's adapter parses the body and its signature stands in for ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from stream.config import CHANNELS_IN, Clock, Settings, SettingsError
from stream.core.collect import (
    MEDIA_TYPES,
    OUTCOMES,
    Accepted,
    Answer,
    Item,
    Verdict,
    body_format,
    forbidden_channels,
    judge_events,
    judge_outcomes,
    split_body,
)
from stream.core.dlq import CollectorSource, dlq_record
from stream.core.events import DecodeOptions
from stream.core.schemas import SchemaCatalog, load_catalog
from stream.shell.clock import wall_ms
from stream.shell.collector.broker import BrokerLink, BrokerUnavailable, Record
from stream.shell.collector.keys import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    ApiKey,
    KeyRing,
    KeysError,
    load_keys,
    signature_problem,
)
from stream.shell.collector.limits import InFlight, RateLimiter, retry_after
from stream.shell.collector.metrics import CollectorMetrics
from stream.shell.collector.openapi import collector_openapi

log = logging.getLogger(__name__)

EVENTS_ROUTE = "/events"
OUTCOMES_ROUTE = "/outcomes"
UNAVAILABLE_RETRY_S = 5  # Retry-After of a 503: about two probes of the broker
BUSY_RETRY_S = 1  # Retry-After of a 429 for a full collector
KEYS_POLL_S = 5.0  # how often the keys file is checked for a change
CORS_HEADERS = f"Authorization, Content-Type, {SIGNATURE_HEADER}, {TIMESTAMP_HEADER}"
CORS_MAX_AGE_S = 600


class HttpError(Exception):
    """An answer other than the per-record one: ``{"error": code, "detail": ...}``."""

    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: object,
    ) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail
        self.headers = headers or {}
        self.extra = extra


@dataclass(frozen=True, slots=True)
class Origin:
    """Who sent a request and where: what a dead letter of it records."""

    route: str
    key_name: str
    request_id: str


@dataclass
class Collector:
    """What the routes share: settings, decoder, keys, limits, the broker link, metrics."""

    settings: Settings
    catalog: SchemaCatalog
    options: DecodeOptions
    clock: Clock
    keys: KeyRing
    link: BrokerLink
    metrics: CollectorMetrics
    inflight: InFlight
    limiter: RateLimiter = field(default_factory=RateLimiter)
    channels: tuple[str, ...] = CHANNELS_IN

    def topic_of(self, channel: str | None) -> str:
        """The topic a record of ``channel`` goes to ("collector" for none of ours)."""
        topics = self.settings.topics
        if channel == OUTCOMES:
            return topics.outcomes
        return topics.events(channel) if channel in self.channels else "collector"


COLLECTOR = web.AppKey("collector", Collector)
REQUEST_ID = web.RequestKey("request_id", str)
KEY_NAME = web.RequestKey("key_name", str)  # for the log line: the key's name, never the key


def new_collector(settings: Settings, keys: KeyRing) -> Collector:
    """The collector of these settings and keys (the producer is started by the app)."""
    catalog = load_catalog()
    metrics = CollectorMetrics(CHANNELS_IN)
    topics = settings.topics
    link = BrokerLink(settings, [*topics.all_events, topics.outcomes, topics.dlq], metrics)
    inflight = InFlight(
        settings.collector_max_inflight_requests, settings.collector_max_inflight_bytes
    )
    return Collector(
        settings,
        catalog,
        settings.decode_options(catalog),
        settings.clock(),
        keys,
        link,
        metrics,
        inflight,
    )


def read_keys(settings: Settings) -> KeyRing:
    """The keys of JOURNEY_COLLECTOR_KEYS_FILE; a ``SettingsError`` naming it if unusable."""
    path = settings.collector_keys_file
    if path is None:
        raise SettingsError(
            "JOURNEY_COLLECTOR_KEYS_FILE is not set: the collector accepts nothing without "
            "keys (see docs/collector.md)"
        )
    try:
        return load_keys(path, CHANNELS_IN, settings.collector_max_body_bytes)
    except KeysError as exc:
        raise SettingsError(f"JOURNEY_COLLECTOR_KEYS_FILE: {exc}") from None


# --- producing and answering ---------------------------------------------------------------


async def produce_verdicts(c: Collector, verdicts: Sequence[Verdict], origin: Origin) -> Answer:
    """Accepted records to their topic, refused ones to the DLQ, every one acknowledged;
    the per-record answer. ``BrokerUnavailable`` if the broker did not acknowledge."""
    received_ms = wall_ms()
    records: list[Record] = []
    for verdict in verdicts:
        if isinstance(verdict, Accepted):
            records.append((c.topic_of(verdict.channel), verdict.key, verdict.value))
            continue
        source = CollectorSource(
            c.topic_of(verdict.channel),
            origin.route,
            origin.key_name,
            origin.request_id,
            verdict.index,
            verdict.line,
        )
        record = dlq_record(verdict.rejection, verdict.raw, source, received_ms)
        records.append((c.settings.topics.dlq, None, orjson.dumps(record)))
    elapsed_s = await c.link.produce(records, c.settings.collector_ack_timeout_s)
    c.metrics.ack_seconds.observe(elapsed_s)
    answer = Answer(tuple(verdicts))
    for verdict in verdicts:
        if isinstance(verdict, Accepted):
            c.metrics.accepted.labels(verdict.channel).inc()
        else:
            c.metrics.rejected.labels(verdict.rejection.reason.value).inc()
    return answer


async def collect_outcomes(c: Collector, items: Sequence[Item], origin: Origin) -> Answer:
    """Validate outcome records (``decode_outcome``), produce the valid ones to the outcomes
    topic keyed by customer id and the rest to the DLQ; the per-record answer once the
    broker acknowledged all of them. The path of ``/outcomes`` and of webhook adapters."""
    verdicts = judge_outcomes(items, c.catalog, c.settings.max_event_bytes)
    return await produce_verdicts(c, verdicts, origin)


async def collect_events(
    c: Collector, items: Sequence[Item], key: ApiKey, origin: Origin
) -> Answer:
    """Validate events as the ingest step would, refuse the request (403) if one names a
    channel the key may not write, else produce as ``produce_verdicts`` does."""
    verdicts = judge_events(items, c.options, c.channels, c.clock.now_ms())
    forbidden = forbidden_channels(verdicts, key.channels)
    if forbidden:
        raise HttpError(
            403,
            "forbidden",
            f"key {key.name!r} may not write channel(s) {', '.join(forbidden)}; it may write "
            f"{', '.join(sorted(key.channels))}. Nothing was written",
            channels=forbidden,
        )
    return await produce_verdicts(c, verdicts, origin)


def answer_response(answer: Answer) -> web.Response:
    """The per-record answer as an HTTP response."""
    return _json(answer.to_json(), answer.status)


def _json(body: object, status: int, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(body), status=status, content_type="application/json", headers=headers
    )


# --- receiving -------------------------------------------------------------------------------


def authenticate(c: Collector, request: web.Request) -> ApiKey:
    """The key of the request (bearer token, or ``?key=`` where the key allows it); 401."""
    header = request.headers.get("Authorization")
    if header is not None:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise unauthorized("expected Authorization: Bearer <key>")
        key = c.keys.authenticate(token.strip())
    else:
        token = request.query.get("key", "")
        if not token:
            raise unauthorized("no key: send Authorization: Bearer <key>")
        key = c.keys.authenticate(token)
        if key is not None and not key.query_token:
            raise unauthorized(f"key {key.name!r} may not be sent in the URL: use Authorization")
    if key is None:
        raise unauthorized("unknown key")
    request[KEY_NAME] = key.name
    return key


def unauthorized(detail: str) -> HttpError:
    """A 401 asking for a bearer key."""
    return HttpError(401, "unauthorized", detail, {"WWW-Authenticate": "Bearer"})


@contextlib.asynccontextmanager
async def receive(c: Collector, request: web.Request, key: ApiKey) -> AsyncIterator[bytes]:
    """The request's body, read within the key's limits and the collector's in-flight
    bounds (held until the block ends: answer inside it), its signature verified."""
    limit = key.max_body_bytes
    declared = request.content_length
    if declared is not None and declared > limit:
        raise _too_large(f"body of {declared} bytes; key {key.name!r} allows {limit}")
    if not c.link.up:
        raise _unavailable(c.link.reason)
    size = declared if declared is not None else limit
    if not c.inflight.try_enter(size):
        raise HttpError(
            429,
            "busy",
            "the collector holds as much as it may (the broker is slow): retry",
            {"Retry-After": str(BUSY_RETRY_S)},
        )
    c.metrics.inflight_requests.set(c.inflight.requests)
    c.metrics.inflight_bytes.set(c.inflight.bytes)
    try:
        body = await _read_body(request, limit, key.name)
        if key.hmac_secret is not None:
            problem = signature_problem(
                key.hmac_secret,
                body,
                request.headers.get(SIGNATURE_HEADER),
                request.headers.get(TIMESTAMP_HEADER),
                time.time(),
                c.settings.collector_signature_tolerance_s,
            )
            if problem is not None:
                raise HttpError(401, "bad_signature", problem)
        yield body
    finally:
        c.inflight.leave(size)
        c.metrics.inflight_requests.set(c.inflight.requests)
        c.metrics.inflight_bytes.set(c.inflight.bytes)


async def _read_body(request: web.Request, limit: int, key_name: str) -> bytes:
    """The body, or 413 as soon as it passes ``limit`` bytes."""
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise _too_large(f"body over {limit} bytes, the limit of key {key_name!r}")
    return bytes(body)


def _too_large(detail: str) -> HttpError:
    return HttpError(413, "too_large", detail)


def _unavailable(detail: str) -> HttpError:
    return HttpError(
        503,
        "unavailable",
        f"{detail}; nothing of this request was accepted, retry",
        {"Retry-After": str(UNAVAILABLE_RETRY_S)},
    )


def items_of(c: Collector, request: web.Request, body: bytes) -> list[Item]:
    """The records of a body as its Content-Type says (415, 400 none, 413 too many)."""
    fmt = body_format(request.headers.get("Content-Type", ""))
    if fmt is None:
        raise HttpError(415, "unsupported_media_type", f"send one of {', '.join(MEDIA_TYPES)}")
    items = split_body(body, fmt)
    if not items:
        raise HttpError(400, "empty", "the body holds no record")
    if len(items) > c.settings.collector_max_records:
        raise _too_large(
            f"{len(items)} records; at most {c.settings.collector_max_records} per request"
        )
    return items


def check_rate(c: Collector, key: ApiKey, records: int) -> None:
    """Return if the key's bucket lets ``records`` through now; else 429 (413 if never)."""
    wait_s = c.limiter.take(key, records, time.monotonic())
    if wait_s == 0.0:
        return
    if wait_s == float("inf"):
        raise _too_large(f"{records} records; key {key.name!r} allows {key.burst:g} at once")
    c.metrics.rate_limited.labels(key.name).inc()
    unit = "events" if key.per_event else "requests"
    raise HttpError(
        429,
        "rate_limited",
        f"key {key.name!r} is limited to {key.rate:g} {unit}/s (burst {key.burst:g})",
        {"Retry-After": str(retry_after(wait_s))},
    )


# --- routes -----------------------------------------------------------------------------------


def _origin(request: web.Request, key: ApiKey) -> Origin:
    return Origin(request.path, key.name, request[REQUEST_ID])


async def post_events(request: web.Request) -> web.Response:
    """POST /events: ingress events, each to its channel's topic."""
    c = request.app[COLLECTOR]
    key = authenticate(c, request)
    if not key.channels.intersection(c.channels):
        raise HttpError(403, "forbidden", f"key {key.name!r} may not write events")
    body_format_or_415(request)
    async with receive(c, request, key) as body:
        items = items_of(c, request, body)
        check_rate(c, key, len(items))
        answer = await unless_unavailable(collect_events(c, items, key, _origin(request, key)))
    return answer_response(answer)


async def post_outcomes(request: web.Request) -> web.Response:
    """POST /outcomes: outcomes reported by senders, to the outcomes topic."""
    c = request.app[COLLECTOR]
    key = authenticate(c, request)
    if not key.may_write(OUTCOMES):
        raise HttpError(403, "forbidden", f"key {key.name!r} may not write outcomes")
    body_format_or_415(request)
    async with receive(c, request, key) as body:
        items = items_of(c, request, body)
        check_rate(c, key, len(items))
        answer = await unless_unavailable(collect_outcomes(c, items, _origin(request, key)))
    return answer_response(answer)


def body_format_or_415(request: web.Request) -> None:
    """Refuse (415) a Content-Type the collector does not read, before the body is read."""
    if body_format(request.headers.get("Content-Type", "")) is None:
        raise HttpError(415, "unsupported_media_type", f"send one of {', '.join(MEDIA_TYPES)}")


async def unless_unavailable(answer: Awaitable[Answer]) -> Answer:
    """The answer, or 503 if the broker did not acknowledge it."""
    try:
        return await answer
    except BrokerUnavailable as exc:
        raise _unavailable(exc.detail) from None


async def live(request: web.Request) -> web.Response:
    """GET /live: the event loop answers."""
    return _json({"status": "live"}, 200)


async def ready(request: web.Request) -> web.Response:
    """GET /ready: 200 while the producer reaches the broker and the topics exist."""
    link = request.app[COLLECTOR].link
    if link.up:
        return _json({"status": "ready"}, 200)
    raise HttpError(503, "unavailable", link.reason, {"Retry-After": str(UNAVAILABLE_RETRY_S)})


async def metrics(request: web.Request) -> web.Response:
    """GET /metrics: the collector's registry in Prometheus' text format."""
    registry = request.app[COLLECTOR].metrics.registry
    return web.Response(
        body=generate_latest(registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


async def openapi(request: web.Request) -> web.Response:
    """GET /openapi.json: the OpenAPI 3.1 document of this API."""
    return _json(collector_openapi(str(request.url.origin())), 200)


# --- the frame around every request: ids, CORS, errors, metrics ------------------------------


def _route(request: web.Request) -> str:
    """The route's template (a bounded label), "unmatched" for any other path."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def _allowed_origin(c: Collector, origin: str | None) -> str | None:
    if origin is None:
        return None
    allowed = c.settings.collector_cors_origins
    return origin if "*" in allowed or origin.rstrip("/") in allowed else None


def _preflight(c: Collector, request: web.Request) -> web.Response:
    """The answer to a CORS preflight: 204 for an allowed origin, 403 otherwise."""
    origin = _allowed_origin(c, request.headers.get("Origin"))
    if origin is None:
        raise HttpError(403, "cors_forbidden", "this origin may not post to the collector")
    return web.Response(
        status=204,
        headers={
            "Access-Control-Allow-Methods": "POST, OPTIONS",
            "Access-Control-Allow-Headers": CORS_HEADERS,
            "Access-Control-Max-Age": str(CORS_MAX_AGE_S),
        },
    )


def _error_response(exc: HttpError) -> web.Response:
    body: dict[str, object] = {"error": exc.code, "detail": exc.detail, **exc.extra}
    return _json(body, exc.status, exc.headers)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def frame(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every request: an id, CORS, errors as JSON, and its count and time."""
    started = time.monotonic()
    c = request.app[COLLECTOR]
    request[REQUEST_ID] = uuid.uuid4().hex
    response: web.StreamResponse
    try:
        is_preflight = (
            request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        )
        response = _preflight(c, request) if is_preflight else await handler(request)
    except HttpError as exc:
        response = _error_response(exc)
    except web.HTTPException as exc:  # the router's 404 and 405
        error = HttpError(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        response = _error_response(error)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
    except Exception:
        log.exception("collector: %s %s failed", request.method, request.path)
        response = _error_response(HttpError(500, "internal", "the collector failed; retry"))
    origin = _allowed_origin(c, request.headers.get("Origin"))
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = "Retry-After, X-Request-Id"
        response.headers["Vary"] = "Origin"
    response.headers["X-Request-Id"] = request[REQUEST_ID]
    route = _route(request)
    elapsed_s = time.monotonic() - started
    c.metrics.requests.labels(route, str(response.status)).inc()
    c.metrics.request_seconds.labels(route).observe(elapsed_s)
    if log.isEnabledFor(logging.DEBUG):
        key_name = request.get(KEY_NAME, "-")
        log.debug(
            "%s %s %d key=%s %.1f ms",
            request.method,
            route,
            response.status,
            key_name,
            elapsed_s * 1000,
        )
    return response


# --- the application ------------------------------------------------------------------------


def build_app(c: Collector) -> web.Application:
    """The aiohttp application of a collector; the producer starts and stops with it."""
    app = web.Application(middlewares=[frame])
    app[COLLECTOR] = c
    app.router.add_post(EVENTS_ROUTE, post_events)
    app.router.add_post(OUTCOMES_ROUTE, post_outcomes)
    # The webhook route composes this module's pieces, so it is imported here, not above.
    from stream.shell.collector.webhooks import WEBHOOKS_ROUTE, post_webhook

    app.router.add_post(WEBHOOKS_ROUTE, post_webhook)
    app.router.add_get("/live", live)
    app.router.add_get("/ready", ready)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi)
    app.cleanup_ctx.append(_broker_link)
    app.cleanup_ctx.append(_keys_watch)
    return app


async def _broker_link(app: web.Application) -> AsyncIterator[None]:
    link = app[COLLECTOR].link
    await link.start()
    yield
    await link.stop()


async def _keys_watch(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(_watch_keys(app[COLLECTOR]), name="collector-keys-watch")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _stamp(path: Path) -> tuple[int, int, int] | None:
    """What changes when the file does (a Kubernetes secret is swapped by a symlink)."""
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_mtime_ns, stat.st_size, stat.st_ino


async def _watch_keys(c: Collector) -> None:
    """Re-read the keys file when it changes; a bad file keeps the keys in force."""
    path = c.settings.collector_keys_file
    if path is None:
        return
    seen = _stamp(path)
    while True:
        await asyncio.sleep(KEYS_POLL_S)
        stamp = _stamp(path)
        if stamp == seen or stamp is None:
            continue
        seen = stamp
        try:
            c.keys = load_keys(path, c.channels, c.settings.collector_max_body_bytes)
        except KeysError as exc:
            c.metrics.keys_reloads.labels("failed").inc()
            log.error("collector: keys file not reloaded, the keys in force stay: %s", exc)
            continue
        c.metrics.keys_reloads.labels("ok").inc()
        log.info("collector: keys reloaded: %s", ", ".join(k.name for k in c.keys.keys))


def run_collector(settings: Settings, keys: KeyRing) -> None:
    """Serve the collector until SIGTERM or SIGINT (in-flight requests are answered first)."""
    collector = new_collector(settings, keys)
    log.info(
        "collector: keys %s; listening on %s:%d",
        ", ".join(k.name for k in collector.keys.keys),
        settings.collector_host,
        settings.collector_port,
    )
    web.run_app(
        build_app(collector),
        host=settings.collector_host,
        port=settings.collector_port,
        access_log=None,  # its lines would carry ?key= query tokens
        shutdown_timeout=settings.collector_ack_timeout_s + 2,
        print=None,
    )
