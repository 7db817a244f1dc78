"""The OpenAPI 3.1 document of the collector (served at ``/openapi.json``).

Checked by openapi-spec-validator and exercised by schemathesis against a real collector in
the test suite: every status a route can answer is listed, with the body it has.
"""

from __future__ import annotations

from typing import Any

from stream.core.events import DlqReason

ERROR = {"$ref": "#/components/schemas/Error"}
ANSWER = {"$ref": "#/components/schemas/Answer"}
RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before sending the request again",
        "schema": {"type": "string", "pattern": "^[0-9]+$"},
    }
}


def _json(schema: dict[str, Any], description: str, retry: bool = False) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": schema}},
    }
    if retry:
        response["headers"] = RETRY_AFTER
    return response


POST_RESPONSES = {
    "200": _json(ANSWER, "Every record accepted: the broker acknowledged all of them"),
    "207": _json(
        ANSWER,
        "Some records refused (see results; they went to the DLQ), the others accepted "
        "and acknowledged",
    ),
    "400": _json(
        {"oneOf": [ANSWER, ERROR]},
        "No record accepted: every one refused and written to the DLQ (Answer); or a body "
        "that holds no record (Error)",
    ),
    "401": _json(
        ERROR,
        "Missing or unknown key, a key sent in the URL that may not be, or a bad or stale "
        "HMAC signature",
    ),
    "403": _json(ERROR, "The key may not write a channel a record names (nothing written)"),
    "413": _json(
        ERROR,
        "Body over the key's limit, more records than allowed per request, or more than "
        "the key's burst",
    ),
    "415": _json(ERROR, "A Content-Type the collector does not read"),
    "429": _json(ERROR, "The key's rate limit, or the collector is full (backpressure)", True),
    "503": _json(
        ERROR,
        "The broker is unavailable or did not acknowledge in time: count nothing of the "
        "request as written, resend it",
        True,
    ),
}


def _post(summary: str, record: dict[str, Any], what: str) -> dict[str, Any]:
    return {
        "post": {
            "summary": summary,
            "description": f"One {what} (`application/json`), a JSON array of them, or NDJSON "
            "(`application/x-ndjson`, one per line). `text/plain` is read as JSON (what "
            "`navigator.sendBeacon` sends). Records are validated as the worker validates "
            "them; the answer comes once the broker acknowledged every record written.",
            "security": [{"bearer": []}, {"queryKey": []}],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"oneOf": [record, {"type": "array", "items": record}]}
                    },
                    "application/x-ndjson": {"schema": {"type": "string"}},
                    "text/plain": {"schema": {"type": "string"}},
                },
            },
            "responses": POST_RESPONSES,
        }
    }


WEBHOOK_ANSWER = {"$ref": "#/components/schemas/WebhookAnswer"}


def _webhook() -> dict[str, Any]:
    """POST /webhooks/{provider}: the one route of every email provider's calls."""
    responses = {
        "200": _json(
            WEBHOOK_ANSWER,
            "Every outcome of the call, and every malformed item of ours (on the DLQ), "
            "acknowledged by the broker; items with no outcome are listed as ignored",
        ),
        "400": _json(WEBHOOK_ANSWER, "A body the provider's adapter cannot read (on the DLQ)"),
        "401": _json(ERROR, "Missing or unknown key, or the provider's signature fails"),
        "403": _json(ERROR, "The key is not this provider's webhook key"),
        "404": _json(ERROR, "A provider the collector does not know"),
        **{code: POST_RESPONSES[code] for code in ("413", "429", "503")},
    }
    return {
        "post": {
            "summary": "An email provider's webhook call, mapped onto outcomes",
            "description": "SendGrid's Event Webhook, Mailgun's or Postmark's webhooks, "
            "verified with the provider's own signature or credentials (docs/webhooks.md).",
            "security": [{"queryKey": []}],
            "parameters": [
                {
                    "name": "provider",
                    "in": "path",
                    "required": True,
                    "schema": {"enum": ["sendgrid", "mailgun", "postmark"]},
                }
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {}}},
            },
            "responses": responses,
        }
    }


def _get(summary: str, responses: dict[str, Any]) -> dict[str, Any]:
    return {"get": {"summary": summary, "security": [], "responses": responses}}


RESULT = {
    "type": "object",
    "required": ["index", "status"],
    "properties": {
        "index": {"type": "integer", "minimum": 0, "description": "position in the body"},
        "line": {"type": "integer", "minimum": 1, "description": "line of an NDJSON body"},
        "status": {"enum": ["accepted", "rejected"]},
        "id": {"type": "string", "description": "the record's event_id or outcome_id"},
        "channel": {"type": "string", "description": "where an accepted record went"},
        "reason": {"enum": [reason.value for reason in DlqReason]},
        "detail": {"type": "string"},
    },
}
SCHEMAS = {
    "Answer": {
        "type": "object",
        "required": ["accepted", "rejected", "results"],
        "properties": {
            "accepted": {"type": "integer", "minimum": 0},
            "rejected": {"type": "integer", "minimum": 0},
            "results": {"type": "array", "items": RESULT},
        },
    },
    "WebhookAnswer": {
        "type": "object",
        "required": ["provider", "accepted", "rejected", "results", "ignored"],
        "properties": {
            "provider": {"type": "string"},
            "accepted": {"type": "integer", "minimum": 0},
            "rejected": {"type": "integer", "minimum": 0},
            "results": {"type": "array", "items": RESULT},
            "ignored": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["index", "reason", "detail"],
                    "properties": {
                        "index": {"type": "integer", "minimum": 0},
                        "reason": {"type": "string"},
                        "detail": {"type": "string"},
                    },
                },
            },
        },
    },
    "Error": {
        "type": "object",
        "required": ["error", "detail"],
        "properties": {
            "error": {"type": "string"},
            "detail": {"type": "string"},
            "channels": {"type": "array", "items": {"type": "string"}},
        },
    },
    "Event": {
        "type": "object",
        "description": "An ingress event: schemas/envelope.schema.json and the channel's "
        "schema in schemas/events/",
        "required": ["event_id", "type", "channel", "occurred_at", "customer"],
        "properties": {
            "event_id": {"type": "string"},
            "type": {"type": "string"},
            "channel": {"type": "string"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "customer": {"type": "object"},
            "properties": {"type": "object"},
            "context": {"type": "object"},
        },
    },
    "Outcome": {
        "type": "object",
        "description": "An outcome of an action: schemas/outcome.schema.json",
        "required": ["outcome_id", "action_id", "customer_id", "channel", "outcome", "occurred_at"],
        "properties": {
            "outcome_id": {"type": "string"},
            "action_id": {"type": "string"},
            "customer_id": {"type": "string"},
            "channel": {"type": "string"},
            "outcome": {"type": "string"},
            "occurred_at": {"type": "string", "format": "date-time"},
            "detail": {"type": "object"},
        },
    },
}


def collector_openapi(server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the collector served at ``server_url``."""
    text = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Journey Stream collector",
            "version": "1",
            "description": "The HTTP front door to the ingress and outcomes topics "
            "(docs/collector.md).",
        },
        "servers": [{"url": server_url}],
        "paths": {
            "/events": _post(
                "Write events to their channels' ingress topics",
                {"$ref": "#/components/schemas/Event"},
                "event",
            ),
            "/outcomes": _post(
                "Write outcomes to the outcomes topic",
                {"$ref": "#/components/schemas/Outcome"},
                "outcome",
            ),
            "/webhooks/{provider}": _webhook(),
            "/live": _get("The process answers", {"200": _json({"type": "object"}, "Live")}),
            "/ready": _get(
                "The producer reaches the broker and the topics exist",
                {
                    "200": _json({"type": "object"}, "Ready: requests are accepted"),
                    "503": _json(ERROR, "Not ready: requests are answered 503", True),
                },
            ),
            "/metrics": _get(
                "Prometheus metrics",
                {"200": {"description": "Prometheus text format", "content": text}},
            ),
            "/openapi.json": _get(
                "This document", {"200": _json({"type": "object"}, "OpenAPI 3.1")}
            ),
        },
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "queryKey": {
                    "type": "apiKey",
                    "in": "query",
                    "name": "key",
                    "description": "only for keys with `query_token: true` (sendBeacon) and "
                    "webhook keys",
                },
            },
        },
    }
