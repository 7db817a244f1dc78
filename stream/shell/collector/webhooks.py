"""``POST /webhooks/{provider}``: an email provider's calls become outcomes.

The provider's adapter (``stream.core.webhooks``) verifies the call and maps its body;
this route does the HTTP around it, in the collector's usual order:

1. the provider is one we know (404), the key comes as ``?key=`` (providers cannot send
   our bearer header) and is that provider's webhook key (401, 403);
2. the body is read within the key's limits and the collector's bounds (413, 429, 503);
3. the provider's signature or credentials (401: nothing produced);
4. the key's rate limit (429), then every outcome to the outcomes topic and every
   malformed item of ours to the DLQ, all acknowledged by the broker (503 if not).

The answer is 200 once everything is acknowledged, rejected items included (they are on
the DLQ: a provider's retry would only dead-letter them again), and 400 for a body the
adapter cannot read at all. Items that are not ours, or events with no outcome, are
counted by reason and listed in the answer.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson
from aiohttp import web

from stream.core.collect import Item
from stream.core.events import Rejection
from stream.core.webhooks import PROVIDERS, WebhookBatch, WebhookProvider
from stream.shell.clock import wall_ms
from stream.shell.collector.keys import ApiKey
from stream.shell.collector.server import (
    COLLECTOR,
    REQUEST_ID,
    Collector,
    HttpError,
    Origin,
    check_rate,
    collect_outcomes,
    receive,
    unauthorized,
    unless_unavailable,
)

WEBHOOKS_ROUTE = "/webhooks/{provider}"


def webhook_key(c: Collector, request: web.Request, provider: WebhookProvider) -> ApiKey:
    """The ``?key=`` of the request if it is ``provider``'s webhook key; 401 or 403."""
    token = request.query.get("key", "")
    if not token:
        raise unauthorized(f"no key: end the webhook URL with ?key=<the {provider.name} key>")
    key = c.keys.authenticate(token)
    if key is None:
        raise unauthorized("unknown key")
    if key.webhook != provider.name:
        raise HttpError(403, "forbidden", f"key {key.name!r} is not a {provider.name} webhook key")
    return key


def batch_items(body: bytes, batch: WebhookBatch | Rejection) -> list[Item]:
    """The outcomes and refused items of a call in body order (a refused one carries the
    whole body: the DLQ record's position says which item it was)."""
    if isinstance(batch, Rejection):
        return [Item(0, body, rejection=batch)]
    items = [Item(index, orjson.dumps(record)) for index, record in batch.outcomes]
    items += [Item(index, body, rejection=rejection) for index, rejection in batch.rejected]
    return sorted(items, key=lambda item: item.index)


def _ignored(batch: WebhookBatch | Rejection) -> list[dict[str, object]]:
    if isinstance(batch, Rejection):
        return []
    return [
        {"index": index, "reason": ignored.reason.value, "detail": ignored.detail}
        for index, ignored in batch.ignored
    ]


async def post_webhook(request: web.Request) -> web.Response:
    """POST /webhooks/{provider}: a provider's call, verified, as outcomes."""
    c = request.app[COLLECTOR]
    name = request.match_info["provider"]
    provider = PROVIDERS.get(name)
    if provider is None:
        raise HttpError(404, "unknown_provider", f"providers: {', '.join(PROVIDERS)}")
    key = webhook_key(c, request, provider)
    assert key.webhook_secret is not None  # a webhook key always has one (keys.py)
    async with receive(c, request, key) as body:
        headers: Mapping[str, str] = {k.lower(): v for k, v in request.headers.items()}
        problem = provider.verify(body, headers, key.webhook_secret, wall_ms())
        if problem is not None:
            raise HttpError(401, "bad_signature", f"{provider.name}: {problem}")
        batch = provider.outcomes(body, headers)
        items = batch_items(body, batch)
        check_rate(c, key, max(len(items), 1))
        origin = Origin(request.path, key.name, request[REQUEST_ID])
        answer = await unless_unavailable(collect_outcomes(c, items, origin))
    ignored = _ignored(batch)
    for entry in ignored:
        c.metrics.webhook_ignored.labels(provider.name, str(entry["reason"])).inc()
    document = {"provider": provider.name, **answer.to_json(), "ignored": ignored}
    status = 400 if isinstance(batch, Rejection) else 200
    return web.Response(body=orjson.dumps(document), status=status, content_type="application/json")
