"""`journey collector`: the HTTP front door to the ingress and outcomes topics.

- ``server``: the aiohttp application (routes, the order of checks, CORS, answers);
- ``keys``: the keys file, constant-time authentication, HMAC signatures;
- ``limits``: per-key token buckets and the bound on what is held at once;
- ``broker``: the idempotent producer, acknowledgement deadlines, the broker's state;
- ``metrics``: the collector's Prometheus registry; ``openapi``: its OpenAPI document.

The rules (splitting a body, judging each record, the answer) are pure, in
``stream/core/collect.py``.
"""
