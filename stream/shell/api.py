"""The Customer 360 API and journey analytics, served by every worker.

- ``GET /customers/{id}``: the unified profile (``stream.core.profile``);
- ``GET /customers/{id}/decisions``: the latest explain records, newest first;
- ``GET /journey/funnel`` and ``GET /journey/transitions``: the funnel, summed over
  every worker's census (``/journey/census`` is each worker's own share);
- ``GET /journeys`` and ``GET /journeys/{id}``: the journeys and their live counts
  (``stream.shell.journeys_api``);
- ``GET /journey/performance?days=N``: per action and journey, messages sent and their
  outcomes, conversions, revenue and uplift over the last N days, summed over every
  worker's performance rows (``/journey/performance/share`` is each worker's own share);
- ``GET /openapi.json``: the OpenAPI 3.1 document of all of it;
- ``/ui/``: the web page (static files; its data calls carry the token).

Every call but ``/metrics``, ``/live``, ``/ready`` and the page's static files needs
``Authorization: Bearer <JOURNEY_API_TOKEN>``. A request for a customer another worker
owns is forwarded to it (the partition assignor knows every worker's URL), headers
included. faust-streaming's own ``table_route`` (0.15.3, ``Router._route_req``) passes
the request headers but no body, drops the owner's response headers (a merged profile's
``Location``) and would forward again during a rebalance; hence our own forwarding.
"""

from __future__ import annotations

import functools
import hmac
import logging
import mimetypes
import re
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from yarl import URL

from stream.config import Clock, Settings
from stream.core import census, performance
from stream.core.decide.reasons import with_reason_text
from stream.core.profile import profile_view, valid_customer_id
from stream.core.state import CustomerState
from stream.core.stored import Moved, load_profile, read_decisions
from stream.core.timestamps import format_ms
from stream.shell.faust import partition_items
from stream.shell.openapi import openapi_document
from stream.shell.policy_source import PolicySource

log = logging.getLogger(__name__)
HOP = "X-Journey-Forwarded"
STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
FORWARD_TIMEOUT_S = 10.0
# A view of the API: (context, web, request, **path parameters) -> response.
ApiView = Callable[..., Awaitable[Any]]
# A page of the web UI: (web, request, **path parameters) -> response.
Page = Callable[..., Awaitable[Any]]


DEFAULT_DAYS = 7  # the performance view's range when none is asked for
# A summed answer: (the partitions it covers, the counts added up over them).
Share = tuple[list[int], dict[str, int]]


def census_total(census_table: Any, partitions: set[int]) -> dict[str, int]:
    """The census rows of these partitions (as this worker holds them), added up."""
    rows = [
        Counter(orjson.loads(value))
        for partition in sorted(partitions)
        for key, value in partition_items(census_table, partition)
        if not performance.is_performance_key(key)
    ]
    return census.apply(None, rows)


def performance_total(
    census_table: Any, partitions: set[int], first: int, last: int
) -> dict[str, int]:
    """The performance rows of these partitions from day ``first`` to ``last``, added up."""
    rows = (
        (partition, key, value)
        for partition in sorted(partitions)
        for key, value in partition_items(census_table, partition)
    )
    return performance.in_range(rows, first, last)


class ApiError(Exception):
    """An error answered as JSON: ``{"error": code, "detail": ...}``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


class Forwarder:
    """The HTTP client that asks other workers (opened at the first forwarded request)."""

    def __init__(self) -> None:
        self._client: aiohttp.ClientSession | None = None

    async def get(self, url: URL, request: Any) -> tuple[int, bytes, str]:
        """Another worker's answer (status, body, ``Location``) to a GET with our caller's token."""
        if self._client is None:
            self._client = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
            )
        headers = {"Authorization": request.headers.get("Authorization", ""), HOP: "1"}
        try:
            async with self._client.get(url, headers=headers, allow_redirects=False) as r:
                return r.status, await r.read(), r.headers.get("Location", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(503, "unavailable", f"worker {url.origin()} did not answer") from exc


@dataclass(frozen=True)
class ApiContext:
    """What the API's views share: the worker's app and settings, tables, policy and clock."""

    app: Any  # the Faust app: its router knows which worker owns a key
    settings: Settings
    customers: Any  # faust Table[bytes, bytes]: customer key -> stored profile
    aliases: Any  # faust Table[bytes, bytes]: identifier token -> customer key
    decisions: Any  # faust Table[bytes, bytes]: each customer's ring of explain records
    census_table: Any  # faust Table[bytes, bytes]: one census row per partition
    policy: PolicySource
    clock: Clock
    owned: Callable[[], set[int] | None]  # the partitions this worker owns; None: assigning
    forwarder: Forwarder = field(default_factory=Forwarder)

    @property
    def own_origin(self) -> URL:
        """This worker's own web origin (scheme, host and port)."""
        return URL(self.settings.web_url).origin()


def add_api(
    app: Any,
    settings: Settings,
    customers: Any,
    aliases: Any,
    decisions: Any,
    census_table: Any,
    policy: PolicySource,
    clock: Clock,
    owned: Callable[[], set[int] | None],
) -> None:
    """Register the API's views on the worker's web server."""
    context = ApiContext(
        app, settings, customers, aliases, decisions, census_table, policy, clock, owned
    )
    register_api(context)


def register_api(context: ApiContext) -> None:
    """Register the API's views (token required) and the web page on ``context.app``."""
    from stream.shell.journeys_api import JOURNEY_VIEWS  # it imports this module

    for path, view in (*API_VIEWS, *JOURNEY_VIEWS):
        context.app.page(path)(_guarded(context, view))
    for path, page in UI_PAGES:
        context.app.page(path)(page)


def _guarded(context: ApiContext, view: ApiView) -> Page:
    """``view`` behind the token check; an ``ApiError`` becomes its JSON answer."""

    # A plain function, not a bound method: Faust makes it the ``get`` of a View class.
    @functools.wraps(view)
    async def guarded(web: Any, request: Any, **params: str) -> Any:
        try:
            authorize(context.settings, request)
            return await view(context, web, request, **params)
        except ApiError as exc:
            return _error_response(web, exc)

    return guarded


def authorize(settings: Settings, request: Any) -> None:
    """Return if the request carries the API token; raise a 401 ``ApiError`` otherwise."""
    if not settings.api_token:
        raise ApiError(401, "unauthorized", "the API is disabled: set JOURNEY_API_TOKEN")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {settings.api_token}".encode()):
        raise ApiError(401, "unauthorized", "missing or wrong bearer token")


def customer_key(customer_id: str) -> bytes:
    """The table key of a customer id; a 400 ``ApiError`` if it cannot be one."""
    if not valid_customer_id(customer_id):
        raise ApiError(400, "bad_request", f"not a customer id: {customer_id[:64]!r}")
    return customer_id.encode()


def _error_response(web: Any, exc: ApiError) -> Any:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    body = {"error": exc.code, "detail": exc.detail}
    return web.json(body, status=exc.status, headers=headers)


def _merged_response(web: Any, into: str, suffix: str) -> Any:
    body = {"error": "merged", "detail": f"merged into {into}", "customer_id": into}
    return web.json(body, status=308, headers={"Location": f"/customers/{into}{suffix}"})


def owner_url(context: ApiContext, key: bytes) -> URL:
    """The web URL of the worker that owns ``key``; a 503 ``ApiError`` mid-assignment."""
    try:
        return URL(str(context.app.router.key_store("customers", key)))
    except Exception as exc:  # no assignment yet, or a rebalance
        raise ApiError(503, "unavailable", "partitions are being assigned; retry") from exc


async def forwarded(context: ApiContext, web: Any, request: Any, key: bytes) -> Any | None:
    """The owner's answer when another worker owns ``key``; None when we do."""
    target = owner_url(context, key)
    if target.origin() == context.own_origin:
        return None
    if request.headers.get(HOP):
        raise ApiError(503, "unavailable", "ownership is moving (rebalance); retry")
    status, body, location = await context.forwarder.get(target.with_path(request.path), request)
    headers = {"Location": location} if location else None
    return web.bytes(body, status=status, content_type="application/json", headers=headers)


async def owned_profile(
    context: ApiContext, web: Any, request: Any, customer_id: str, suffix: str
) -> tuple[bytes, CustomerState | None] | Any:
    """(key, profile) when this worker owns the customer; else the answer to give instead:
    the owner's (forwarded), or a 308 to the profile a merged one went into."""
    key = customer_key(customer_id)
    answer = await forwarded(context, web, request, key)
    if answer is not None:
        return answer
    state = load_profile(context.customers.get(key))
    if isinstance(state, Moved):
        return _merged_response(web, state.into, suffix)
    return key, state


async def customer_view(context: ApiContext, web: Any, request: Any, customer_id: str) -> Any:
    """The unified profile of a customer (forwarded to the worker that owns it)."""
    owned = await owned_profile(context, web, request, customer_id, "")
    if not isinstance(owned, tuple):
        return owned
    _, state = owned
    if state is None:
        raise ApiError(404, "not_found", f"no customer {customer_id!r}")
    return web.json(profile_view(state, context.policy.current.holdout))


async def decisions_view(context: ApiContext, web: Any, request: Any, customer_id: str) -> Any:
    """The latest explain records of a customer, newest first (forwarded to its owner)."""
    owned = await owned_profile(context, web, request, customer_id, "/decisions")
    if not isinstance(owned, tuple):
        return owned
    key, state = owned
    records = read_decisions(context.decisions.get, key, context.settings.decisions_kept)
    if state is None and records is None:
        raise ApiError(404, "not_found", f"no customer {customer_id!r}")
    explained = [with_reason_text(record) for record in records or []]
    return web.json({"customer_id": customer_id, "decisions": explained})


def owned_partitions(context: ApiContext) -> set[int]:
    """The partitions this worker owns; a 503 ``ApiError`` mid-assignment."""
    partitions = context.owned()
    if partitions is None:
        raise ApiError(503, "unavailable", "partitions are being assigned; retry")
    return partitions


def local_census(context: ApiContext) -> Share:
    """This worker's partitions and their census; a 503 ``ApiError`` mid-assignment."""
    partitions = owned_partitions(context)
    return sorted(partitions), census_total(context.census_table, partitions)


async def census_view(context: ApiContext, web: Any, request: Any) -> Any:
    """This worker's own census rows."""
    partitions, total = local_census(context)
    return web.json({"partitions": partitions, "census": total})


async def census_of_every_worker(context: ApiContext, request: Any) -> dict[str, int]:
    """The census summed over every worker, checked to cover every partition."""
    return await sum_of_every_worker(
        context, request, URL("/journey/census"), "census", lambda: local_census(context)
    )


async def sum_of_every_worker(
    context: ApiContext, request: Any, share_url: URL, field: str, local: Callable[[], Share]
) -> dict[str, int]:
    """Counts summed over every worker: this one's ``local()``, the others' answers to
    ``share_url`` (their ``field``), checked to cover every partition."""
    try:
        hosts = dict(context.app.router.table_metadata("census"))
    except Exception as exc:
        raise ApiError(503, "unavailable", "partitions are being assigned; retry") from exc
    covered: set[int] = set()
    rows = []
    for host in hosts:
        url = URL(str(host))
        if url.origin() == context.own_origin:
            partitions, total = local()
        else:
            target = url.with_path(share_url.path).with_query(share_url.query)
            status, body, _ = await context.forwarder.get(target, request)
            if status != 200:
                raise ApiError(503, "unavailable", f"worker {url.origin()} answered {status}")
            answer = orjson.loads(body)
            partitions, total = answer["partitions"], answer[field]
        covered.update(partitions)
        rows.append(Counter(total))
    missing = set(range(context.settings.partitions)) - covered
    if missing:
        raise ApiError(503, "unavailable", f"no worker owns partition(s) {sorted(missing)}")
    return census.apply(None, rows)


async def funnel_view(context: ApiContext, web: Any, request: Any) -> Any:
    """The funnel over every worker's census, with the total number of customers."""
    stages = census.funnel(await census_of_every_worker(context, request), context.clock.now_ms())
    total = sum(stage["customers"] for stage in stages)
    return web.json({"stages": stages, "total": total})


async def transitions_view(context: ApiContext, web: Any, request: Any) -> Any:
    """The stage transitions over every worker's census."""
    transitions = census.transitions(await census_of_every_worker(context, request))
    return web.json({"transitions": transitions})


def _days_asked(request: Any) -> int:
    """The ``days`` query parameter: 1 to ``performance.DAYS_KEPT``; a 400 otherwise."""
    text = request.query.get("days", str(DEFAULT_DAYS))
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= performance.DAYS_KEPT:
        detail = f"days must be a whole number from 1 to {performance.DAYS_KEPT}"
        raise ApiError(400, "bad_request", detail)
    return int(text)


def _range_asked(request: Any) -> tuple[int, int]:
    """The ``from`` and ``to`` dates of a share request, as days; a 400 if they are not."""
    try:
        first = performance.parse_day(request.query.get("from", ""))
        last = performance.parse_day(request.query.get("to", ""))
    except ValueError as exc:
        raise ApiError(400, "bad_request", f"from and to: {exc}") from None
    if not 0 <= last - first < performance.DAYS_KEPT:
        detail = f"from must not be after to, nor more than {performance.DAYS_KEPT} days before"
        raise ApiError(400, "bad_request", detail)
    return first, last


async def performance_share_view(context: ApiContext, web: Any, request: Any) -> Any:
    """This worker's own performance counts from one date to another."""
    first, last = _range_asked(request)
    partitions = owned_partitions(context)
    counts = performance_total(context.census_table, partitions, first, last)
    return web.json({"partitions": sorted(partitions), "counts": counts})


async def performance_view(context: ApiContext, web: Any, request: Any) -> Any:
    """Per action and journey, the last N days' performance, summed over every worker."""
    days = _days_asked(request)
    now_ms = context.clock.now_ms()
    last = performance.day_of(now_ms)
    first = last - days + 1
    dates = {"from": performance.iso_day(first), "to": performance.iso_day(last)}

    def local() -> Share:
        partitions = owned_partitions(context)
        return sorted(partitions), performance_total(context.census_table, partitions, first, last)

    share = URL("/journey/performance/share").with_query(dates)
    total = await sum_of_every_worker(context, request, share, "counts", local)
    answer = {"days": days, **dates, "as_of": format_ms(now_ms), **performance.report(total)}
    return web.json(answer)


async def openapi_view(context: ApiContext, web: Any, request: Any) -> Any:
    """The OpenAPI document, with this worker as the server."""
    return web.json(openapi_document(context.settings.web_url))


async def debug_state(context: ApiContext, web: Any, request: Any, key: str) -> Any:
    """The raw stored state (or merged stub) of a key this worker holds: for operators."""
    stored = context.customers.get(customer_key(key))
    if stored is None:
        raise ApiError(404, "not_found", f"no state for {key!r} on this worker")
    return web.bytes(stored, content_type="application/json")


async def debug_alias(context: ApiContext, web: Any, request: Any, token: str) -> Any:
    """The profile an identifier token resolves to, if this worker holds its alias."""
    stored = context.aliases.get(customer_key(token))
    if stored is None:
        raise ApiError(404, "not_found", f"no alias for {token!r} on this worker")
    return web.json({"token": token, "customer_key": stored.decode()})


def _static_file(web: Any, path: Path) -> Any:
    if not path.is_file():
        return web.json({"error": "not_found", "detail": "no such file"}, status=404)
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return web.bytes(path.read_bytes(), content_type=content_type)


async def ui_redirect(web: Any, request: Any) -> Any:
    """``/ui`` to ``/ui/``."""
    return web.json({"location": "/ui/"}, status=308, headers={"Location": "/ui/"})


async def ui_index(web: Any, request: Any) -> Any:
    """The web page."""
    return _static_file(web, STATIC / "index.html")


async def ui_file(web: Any, request: Any, name: str) -> Any:
    """One of the web page's static files."""
    if not STATIC_NAME.match(name):
        return web.json({"error": "not_found", "detail": "no such file"}, status=404)
    return _static_file(web, STATIC / name)


async def ui_vendor(web: Any, request: Any, name: str) -> Any:
    """One of the web page's vendored libraries."""
    if not STATIC_NAME.match(name):
        return web.json({"error": "not_found", "detail": "no such file"}, status=404)
    return _static_file(web, STATIC / "vendor" / name)


API_VIEWS: tuple[tuple[str, ApiView], ...] = (
    ("/customers/{customer_id}", customer_view),
    ("/customers/{customer_id}/decisions", decisions_view),
    ("/journey/census", census_view),
    ("/journey/funnel", funnel_view),
    ("/journey/transitions", transitions_view),
    ("/journey/performance", performance_view),
    ("/journey/performance/share", performance_share_view),
    ("/openapi.json", openapi_view),
    ("/debug/state/{key}", debug_state),
    ("/debug/aliases/{token}", debug_alias),
)
UI_PAGES: tuple[tuple[str, Page], ...] = (  # static files: no token
    ("/ui", ui_redirect),
    ("/ui/", ui_index),
    ("/ui/{name}", ui_file),
    ("/ui/vendor/{name}", ui_vendor),
)
