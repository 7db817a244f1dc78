"""The Customer 360 API and journey analytics, served by every worker.

- ``GET /customers/{id}``: the unified profile (``stream.core.profile``);
- ``GET /customers/{id}/decisions``: the latest explain records, newest first;
- ``GET /journey/funnel`` and ``GET /journey/transitions``: the funnel, summed over
  every worker's census (``/journey/census`` is each worker's own share);
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
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from yarl import URL

from stream.config import Settings
from stream.core import census
from stream.core.profile import profile_view, valid_customer_id
from stream.shell.clock import Clock
from stream.shell.faust_compat import partition_items
from stream.shell.identity_stage import Moved, load_profile
from stream.shell.openapi import openapi_document
from stream.shell.policy_source import PolicySource

log = logging.getLogger(__name__)
HOP = "X-Journey-Forwarded"
STATIC = Path(__file__).resolve().parent.parent / "web" / "static"
STATIC_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
FORWARD_TIMEOUT_S = 10.0


def census_total(census_table: Any, partitions: set[int]) -> dict[str, int]:
    """The census rows of these partitions (as this worker holds them), added up."""
    rows = [
        Counter(orjson.loads(value))
        for partition in sorted(partitions)
        for _, value in partition_items(census_table, partition)
    ]
    return census.apply(None, rows)


class ApiError(Exception):
    """An error answered as JSON: ``{"error": code, "detail": ...}``."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.code, self.detail = status, code, detail


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
    own_url = URL(settings.web_url)
    session: dict[str, aiohttp.ClientSession] = {}

    def error(web: Any, exc: ApiError) -> Any:
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        body = {"error": exc.code, "detail": exc.detail}
        return web.json(body, status=exc.status, headers=headers)

    def authorize(request: Any) -> None:
        if not settings.api_token:
            raise ApiError(401, "unauthorized", "the API is disabled: set JOURNEY_API_TOKEN")
        given = request.headers.get("Authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {settings.api_token}".encode()):
            raise ApiError(401, "unauthorized", "missing or wrong bearer token")

    async def fetch(url: URL, request: Any) -> tuple[int, bytes, str]:
        if "client" not in session:
            session["client"] = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=FORWARD_TIMEOUT_S)
            )
        headers = {"Authorization": request.headers.get("Authorization", ""), HOP: "1"}
        try:
            async with session["client"].get(url, headers=headers, allow_redirects=False) as r:
                return r.status, await r.read(), r.headers.get("Location", "")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ApiError(503, "unavailable", f"worker {url.origin()} did not answer") from exc

    def owner(key: bytes) -> URL:
        try:
            return URL(str(app.router.key_store("customers", key)))
        except Exception as exc:  # no assignment yet, or a rebalance
            raise ApiError(503, "unavailable", "partitions are being assigned; retry") from exc

    async def routed(web: Any, request: Any, key: bytes) -> Any | None:
        """The owner's answer when another worker owns ``key``; None when we do."""
        target = owner(key)
        if target.origin() == own_url.origin():
            return None
        if request.headers.get(HOP):
            raise ApiError(503, "unavailable", "ownership is moving (rebalance); retry")
        status, body, location = await fetch(target.with_path(request.path), request)
        headers = {"Location": location} if location else None
        return web.bytes(body, status=status, content_type="application/json", headers=headers)

    def customer_key(customer_id: str) -> bytes:
        if not valid_customer_id(customer_id):
            raise ApiError(400, "bad_request", f"not a customer id: {customer_id[:64]!r}")
        return customer_id.encode()

    def merged(web: Any, into: str, suffix: str) -> Any:
        body = {"error": "merged", "detail": f"merged into {into}", "customer_id": into}
        return web.json(body, status=308, headers={"Location": f"/customers/{into}{suffix}"})

    def api(path: str) -> Callable[[Callable[..., Awaitable[Any]]], Any]:
        """Register a view that needs the token; an ``ApiError`` becomes its JSON answer."""

        def register(view: Callable[..., Awaitable[Any]]) -> Any:
            @app.page(path)
            @functools.wraps(view)
            async def guarded(web: Any, request: Any, **params: str) -> Any:
                try:
                    authorize(request)
                    return await view(web, request, **params)
                except ApiError as exc:
                    return error(web, exc)

            return guarded

        return register

    @api("/customers/{customer_id}")
    async def customer_view(web: Any, request: Any, customer_id: str) -> Any:
        key = customer_key(customer_id)
        forwarded = await routed(web, request, key)
        if forwarded is not None:
            return forwarded
        state = load_profile(customers.get(key))
        if isinstance(state, Moved):
            return merged(web, state.into, "")
        if state is None:
            raise ApiError(404, "not_found", f"no customer {customer_id!r}")
        return web.json(profile_view(state, policy.current.holdout))

    @api("/customers/{customer_id}/decisions")
    async def decisions_view(web: Any, request: Any, customer_id: str) -> Any:
        key = customer_key(customer_id)
        forwarded = await routed(web, request, key)
        if forwarded is not None:
            return forwarded
        state = load_profile(customers.get(key))
        if isinstance(state, Moved):
            return merged(web, state.into, "/decisions")
        stored = decisions.get(key)
        if state is None and stored is None:
            raise ApiError(404, "not_found", f"no customer {customer_id!r}")
        records = orjson.loads(stored) if stored is not None else []
        return web.json({"customer_id": customer_id, "decisions": records})

    def local_census() -> tuple[list[int], dict[str, int]]:
        partitions = owned()
        if partitions is None:
            raise ApiError(503, "unavailable", "partitions are being assigned; retry")
        return sorted(partitions), census_total(census_table, partitions)

    @api("/journey/census")
    async def census_view(web: Any, request: Any) -> Any:
        partitions, total = local_census()
        return web.json({"partitions": partitions, "census": total})

    async def everyone(request: Any) -> dict[str, int]:
        """The census summed over every worker, checked to cover every partition."""
        try:
            hosts = dict(app.router.table_metadata("census"))
        except Exception as exc:
            raise ApiError(503, "unavailable", "partitions are being assigned; retry") from exc
        covered: set[int] = set()
        rows = []
        for host in hosts:
            url = URL(str(host))
            if url.origin() == own_url.origin():
                partitions, total = local_census()
            else:
                status, body, _ = await fetch(url.with_path("/journey/census"), request)
                if status != 200:
                    raise ApiError(503, "unavailable", f"worker {url.origin()} answered {status}")
                answer = orjson.loads(body)
                partitions, total = answer["partitions"], answer["census"]
            covered.update(partitions)
            rows.append(Counter(total))
        missing = set(range(settings.partitions)) - covered
        if missing:
            raise ApiError(503, "unavailable", f"no worker owns partition(s) {sorted(missing)}")
        return census.apply(None, rows)

    @api("/journey/funnel")
    async def funnel_view(web: Any, request: Any) -> Any:
        stages = census.funnel(await everyone(request), clock.now_ms())
        total = sum(stage["customers"] for stage in stages)
        return web.json({"stages": stages, "total": total})

    @api("/journey/transitions")
    async def transitions_view(web: Any, request: Any) -> Any:
        return web.json({"transitions": census.transitions(await everyone(request))})

    @api("/openapi.json")
    async def openapi_view(web: Any, request: Any) -> Any:
        return web.json(openapi_document(settings.web_url))

    @api("/debug/state/{key}")
    async def debug_state(web: Any, request: Any, key: str) -> Any:
        """The raw stored state (or merged stub) of a key this worker holds: for operators."""
        stored = customers.get(customer_key(key))
        if stored is None:
            raise ApiError(404, "not_found", f"no state for {key!r} on this worker")
        return web.bytes(stored, content_type="application/json")

    @api("/debug/aliases/{token}")
    async def debug_alias(web: Any, request: Any, token: str) -> Any:
        """The profile an identifier token resolves to, if this worker holds its alias."""
        stored = aliases.get(customer_key(token))
        if stored is None:
            raise ApiError(404, "not_found", f"no alias for {token!r} on this worker")
        return web.json({"token": token, "customer_key": stored.decode()})

    def static_file(web: Any, path: Path) -> Any:
        if not path.is_file():
            return web.json({"error": "not_found", "detail": "no such file"}, status=404)
        content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return web.bytes(path.read_bytes(), content_type=content_type)

    @app.page("/ui")
    async def ui_redirect(web: Any, request: Any) -> Any:
        return web.json({"location": "/ui/"}, status=308, headers={"Location": "/ui/"})

    @app.page("/ui/")
    async def ui_index(web: Any, request: Any) -> Any:
        return static_file(web, STATIC / "index.html")

    @app.page("/ui/{name}")
    async def ui_file(web: Any, request: Any, name: str) -> Any:
        if not STATIC_NAME.match(name):
            return web.json({"error": "not_found", "detail": "no such file"}, status=404)
        return static_file(web, STATIC / name)

    @app.page("/ui/vendor/{name}")
    async def ui_vendor(web: Any, request: Any, name: str) -> Any:
        if not STATIC_NAME.match(name):
            return web.json({"error": "not_found", "detail": "no such file"}, status=404)
        return static_file(web, STATIC / "vendor" / name)
