"""The OpenAPI 3.1 document of the worker's API (served at ``/openapi.json``).

Checked by openapi-spec-validator and exercised by schemathesis against a real worker
in the test suite; the response schemas are what the views return.
"""

from __future__ import annotations

from typing import Any

from stream.core.performance import DAYS_KEPT, OUTCOMES
from stream.core.profile import CUSTOMER_ID

TIME = {"type": ["string", "null"], "format": "date-time"}
STAGE = {"enum": ["awareness", "acquisition", "onboarding", "engagement", "advocacy"]}
CURRENCY = {"type": "string", "pattern": "^[A-Z]{3}$", "description": "ISO 4217 code"}
COUNT = {"type": "integer", "minimum": 0}
RATE = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
AMOUNTS = {
    "type": "object",
    "description": "Amounts by currency (ISO 4217 code)",
    "additionalProperties": {"type": "number", "minimum": 0},
}


def _object(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": required if required is not None else list(properties),
    }


def _json(schema: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


ERRORS = {
    "401": _json("Error", "Missing or wrong bearer token (or the API is disabled)"),
    "503": _json("Error", "Partitions are being assigned or a worker did not answer; retry"),
}
CUSTOMER_ERRORS = {
    "308": _json("Error", "The profile was merged into another: follow Location"),
    "400": _json("Error", "Not a customer id"),
    "404": _json("Error", "No such customer"),
    **ERRORS,
}
CUSTOMER_PARAMETER = {
    "name": "customer_id",
    "in": "path",
    "required": True,
    "description": "Customer key: a customer id (C000123) or the token of the identifier a "
    "profile was created under (loyalty:L1, email:<sha256>, phone:<sha256>, anon:<cookie>)",
    "schema": {"type": "string", "pattern": CUSTOMER_ID.pattern},
}

ARM = _object(
    {
        "exposures": {**COUNT, "description": "Marketing decisions for the group's customers"},
        "conversions": {**COUNT, "description": "Exposures followed by a purchase in the window"},
        "conversion_rate": RATE,
        "revenue": {**AMOUNTS, "description": "The value of the purchases that converted"},
    }
)
PERFORMANCE_ROW: dict[str, Any] = {
    "sent": {**COUNT, "description": "Messages handed to the channel's sender"},
    **{
        outcome: {**COUNT, "description": f"Messages the sender reported {outcome}"}
        for outcome in OUTCOMES
    },
    "revenue": {**AMOUNTS, "description": "The treated group's revenue (treatment.revenue)"},
    "treatment": ARM,
    "control": ARM,
    "uplift": {
        "type": ["number", "null"],
        "description": "Treatment minus control conversion rate; null without both",
    },
}

SCHEMAS: dict[str, Any] = {
    "Error": _object(
        {
            "error": {"type": "string"},
            "detail": {"type": "string"},
            "customer_id": {"type": "string"},
        },
        ["error", "detail"],
    ),
    "Profile": _object(
        {
            "customer_id": {"type": "string"},
            "group": {"enum": ["treatment", "control"]},
            "identifiers": {"type": "object", "additionalProperties": {"type": "string"}},
            "linked_identifiers": {"type": "integer"},
            "stage": STAGE,
            "stage_since": TIME,
            "stage_history": {
                "type": "array",
                "items": _object(
                    {"from": STAGE, "to": STAGE, "at": TIME, "event_id": {"type": "string"}}
                ),
            },
            "first_seen": TIME,
            "last_seen": TIME,
            "event_count": {"type": "integer"},
            "engagement": {
                "type": "object",
                "additionalProperties": _object({"events": {"type": "integer"}, "last_seen": TIME}),
            },
            "channels": {
                "type": "object",
                "additionalProperties": _object(
                    {
                        "sent": {"type": "integer"},
                        "responses": {"type": "integer"},
                        "unanswered": {"type": "integer"},
                    }
                ),
            },
            "cart": _object(
                {
                    "items": {"type": "integer"},
                    "value": {"type": "number"},
                    "currency": CURRENCY,
                    "updated_at": TIME,
                }
            ),
            "orders": _object(
                {
                    "count": {"type": "integer"},
                    "revenue": {"type": "number"},
                    "currency": CURRENCY,
                    "returns": {"type": "integer"},
                    "last_category": {"type": ["string", "null"]},
                    "last_order_at": TIME,
                }
            ),
            "consent": {"type": "object", "additionalProperties": {"type": "boolean"}},
            "opt_outs": {"type": "object", "additionalProperties": {"type": "string"}},
            "app_installed": {"type": "boolean"},
            "open_cases": {
                "type": "array",
                "items": _object(
                    {
                        "case_id": {"type": "string"},
                        "reason": {"type": "string"},
                        "severity": {"type": "string"},
                        "opened_at": TIME,
                    }
                ),
            },
            "social": {
                "type": ["object", "null"],
                "description": "Social media posts (null before the first): per type, per "
                "sentiment, reviews and their average stars, the latest post's sentiment",
                "properties": {
                    "posts": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "sentiment": {"type": "object", "additionalProperties": {"type": "integer"}},
                    "reviews": {"type": "integer"},
                    "average_rating": {"type": ["number", "null"]},
                    "last": {
                        "type": ["object", "null"],
                        "properties": {
                            "type": {"type": "string"},
                            "platform": {"type": "string"},
                            "sentiment": {"enum": ["positive", "neutral", "negative", "unknown"]},
                            "score": {"type": ["number", "null"]},
                            "source": {"enum": ["provided", "computed", "rating", "none"]},
                            "at": TIME,
                        },
                    },
                },
            },
            "timers": {
                "type": "array",
                "items": _object({"name": {"type": "string"}, "due": TIME}),
            },
            "journeys": {
                "type": "array",
                "items": _object(
                    {
                        "journey": {"type": "string"},
                        "version": {"type": "string"},
                        "run": {"type": "string"},
                        "node": {"type": "string"},
                        "since": TIME,
                        "entered_at": TIME,
                        "next_step_at": TIME,
                        "ends_by": TIME,
                        "group": {"type": "string"},
                    }
                ),
            },
            "held_actions": {
                "type": "array",
                "items": _object(
                    {
                        "action": {"type": "string"},
                        "channel": {"type": "string"},
                        "send_after": TIME,
                    }
                ),
            },
            "recent_events": {
                "type": "array",
                "items": _object(
                    {
                        "event_id": {"type": "string"},
                        "type": {"type": "string"},
                        "channel": {"type": "string"},
                        "at": TIME,
                    }
                ),
            },
            "recent_actions": {
                "type": "array",
                "items": _object(
                    {
                        "action_id": {"type": "string"},
                        "action": {"type": "string"},
                        "channel": {"type": "string"},
                        "category": {"type": "string"},
                        "decided_at": TIME,
                        "trigger_event_id": {"type": ["string", "null"]},
                        "reason": {"type": "string"},
                        "outcomes": {"type": "array", "items": {"type": "string"}},
                        "group": {"enum": ["treatment", "control"]},
                        "withdrawn": {"type": "boolean"},
                    }
                ),
            },
        }
    ),
    "Decisions": _object(
        {
            "customer_id": {"type": "string"},
            "decisions": {
                "type": "array",
                "description": "Explain records, newest first (schemas/decision.schema.json)",
                "items": _object(
                    {
                        "decision_id": {"type": "string"},
                        "decided_at": {"type": "string", "format": "date-time"},
                        "trigger": {"type": "object"},
                        "candidates": {
                            "type": "array",
                            "items": _object(
                                {
                                    "reason": {
                                        "type": "string",
                                        "description": "The reason code (docs/explain.md)",
                                    },
                                    "reason_text": {
                                        "type": "string",
                                        "description": "The reason in plain words",
                                    },
                                }
                            ),
                        },
                        "chosen": {"type": "array", "items": {"type": "string"}},
                    }
                ),
            },
        }
    ),
    "Funnel": _object(
        {
            "stages": {
                "type": "array",
                "items": _object(
                    {
                        "stage": STAGE,
                        "customers": {"type": "integer"},
                        "entered": {"type": "integer"},
                        "moved_on": {"type": "integer"},
                        "not_moved_on": {
                            "type": ["number", "null"],
                            "description": "Of those who entered the stage, the share that "
                            "has not moved to another stage (still there, or erased or merged)",
                        },
                        "drop_off": {
                            "type": ["number", "null"],
                            "deprecated": True,
                            "description": "The old name of not_moved_on (same value)",
                        },
                        "avg_days_in_stage": {"type": ["number", "null"]},
                    }
                ),
            },
            "total": {"type": "integer"},
        }
    ),
    "Transitions": _object(
        {
            "transitions": {
                "type": "array",
                "items": _object(
                    {"from": STAGE, "to": STAGE, "count": {"type": "integer", "minimum": 0}}
                ),
            }
        }
    ),
    "Performance": _object(
        {
            "days": {"type": "integer", "minimum": 1, "maximum": DAYS_KEPT},
            "from": {"type": "string", "format": "date"},
            "to": {"type": "string", "format": "date"},
            "as_of": {"type": "string", "format": "date-time"},
            "actions": {"type": "array", "items": {"$ref": "#/components/schemas/ActionRow"}},
            "journeys": {"type": "array", "items": {"$ref": "#/components/schemas/JourneyRow"}},
        }
    ),
    "ActionRow": _object({"action": {"type": "string"}, **PERFORMANCE_ROW}),
    "JourneyRow": _object({"journey": {"type": "string"}, **PERFORMANCE_ROW}),
    "PerformanceShare": _object(
        {
            "partitions": {"type": "array", "items": {"type": "integer"}},
            "counts": {"type": "object", "additionalProperties": {"type": "integer"}},
        }
    ),
    "Alias": _object({"token": {"type": "string"}, "customer_key": {"type": "string"}}),
    "Census": _object(
        {
            "partitions": {"type": "array", "items": {"type": "integer"}},
            "census": {"type": "object", "additionalProperties": {"type": "integer"}},
        }
    ),
}


CUSTOMER_KEY_ERRORS = {k: v for k, v in CUSTOMER_ERRORS.items() if k != "308"}
INTEGER = {"type": "integer", "minimum": 0}
BY_REASON = {"type": "object", "additionalProperties": INTEGER}
JOURNEY_TOTALS = {
    "entered": INTEGER,
    "active": INTEGER,
    "converted": INTEGER,
    "exited": BY_REASON,
    "conversion": _object(
        {
            group: _object(
                {"entered": INTEGER, "converted": INTEGER, "rate": {"type": ["number", "null"]}}
            )
            for group in ("treatment", "control")
        }
    ),
}
JOURNEY_HEADING = {
    "id": {"type": "string"},
    "description": {"type": "string"},
    "in_policy": {"type": "boolean"},
    "current_version": {"type": ["string", "null"]},
}
JOURNEY_NODE = _object(
    {
        "name": {"type": "string"},
        "kind": {"enum": ["send", "decide", "wait", "wait_for", "branch", "split", "exit", None]},
        "start": {"type": "boolean"},
        "does": {"type": "string"},
        "description": {"type": "string"},
        "actions": {"type": "array", "items": {"type": "string"}},
        "wait": {"type": "object"},
        "awaits": {"type": "object"},
        "timeout": {"type": "string"},
        "cases": {"type": "array", "items": {"type": "object"}},
        "arms": {"type": "array", "items": {"type": "object"}},
        "reason": {"type": "string"},
        "runs_now": INTEGER,
        "entered": INTEGER,
        "suppressed": BY_REASON,
        "exited": BY_REASON,
        "converted": INTEGER,
    },
    ["name", "kind", "runs_now", "entered", "suppressed", "exited", "converted"],
)
JOURNEY_VERSION = _object(
    {
        "version": {"type": "string"},
        "current": {"type": "boolean"},
        "known": {"type": "boolean", "description": "false: only the counts are left"},
        "description": {"type": "string"},
        "entry": {"type": "object"},
        "goal": {"type": ["object", "null"]},
        "exits": {"type": "array", "items": {"type": "object"}},
        "max_duration": {"type": "string"},
        "start": {"type": ["string", "null"]},
        "nodes": {"type": "array", "items": JOURNEY_NODE},
        "edges": {
            "type": "array",
            "items": _object(
                {
                    "from": {"type": "string"},
                    "label": {"type": "string"},
                    "to": {"type": ["string", "null"]},
                    "count": INTEGER,
                }
            ),
        },
        **JOURNEY_TOTALS,
    },
    ["version", "current", "known", "start", "nodes", "edges", *JOURNEY_TOTALS],
)
SCHEMAS |= {
    "Journeys": _object(
        {
            "journeys": {
                "type": "array",
                "items": _object(
                    {
                        **JOURNEY_HEADING,
                        **JOURNEY_TOTALS,
                        "versions": {
                            "type": "array",
                            "items": _object(
                                {
                                    "version": {"type": "string"},
                                    "current": {"type": "boolean"},
                                    **JOURNEY_TOTALS,
                                }
                            ),
                        },
                    }
                ),
            }
        }
    ),
    "Journey": _object(
        {**JOURNEY_HEADING, "versions": {"type": "array", "items": JOURNEY_VERSION}}
    ),
}
JOURNEY_PARAMETER = {
    "name": "journey_id",
    "in": "path",
    "required": True,
    "description": "A journey id of the policy (or one whose runs are still counted)",
    "schema": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
}
DAYS_PARAMETER = {
    "name": "days",
    "in": "query",
    "required": False,
    "description": "The last N UTC days, today included (default 7)",
    "schema": {"type": "integer", "minimum": 1, "maximum": DAYS_KEPT, "default": 7},
}
DATE_PARAMETERS = [
    {
        "name": name,
        "in": "query",
        "required": True,
        "description": f"The {word} day of the range (UTC), at most {DAYS_KEPT} days in all",
        "schema": {"type": "string", "format": "date"},
    }
    for name, word in (("from", "first"), ("to", "last"))
]
RANGE_ERRORS = {"400": _json("Error", "Not a range of days this API keeps"), **ERRORS}


def _get(
    operation_id: str,
    summary: str,
    responses: dict[str, Any],
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """A path item with one GET operation (``parameters`` left out when there are none)."""
    operation: dict[str, Any] = {"operationId": operation_id, "summary": summary}
    if parameters is not None:
        operation["parameters"] = parameters
    operation["responses"] = responses
    return {"get": operation}


def _customer_paths() -> dict[str, Any]:
    """The routed views of one customer: profile and explain records."""
    return {
        "/customers/{customer_id}": _get(
            "getCustomer",
            "The unified profile of a customer",
            {"200": _json("Profile", "The profile"), **CUSTOMER_ERRORS},
            [CUSTOMER_PARAMETER],
        ),
        "/customers/{customer_id}/decisions": _get(
            "getDecisions",
            "Why the customer got, or did not get, each action",
            {"200": _json("Decisions", "The latest explain records"), **CUSTOMER_ERRORS},
            [CUSTOMER_PARAMETER],
        ),
    }


def _journey_paths() -> dict[str, Any]:
    """The analytics summed over every worker's census."""
    return {
        "/journey/funnel": _get(
            "getFunnel",
            "Customers per stage, entered, moved on, the share not moved on, time in stage",
            {"200": _json("Funnel", "The funnel"), **ERRORS},
        ),
        "/journey/performance": _get(
            "getPerformance",
            "Per action and journey over the last N days: sent, outcomes, conversions, "
            "revenue and uplift against the control group",
            {"200": _json("Performance", "The performance table"), **RANGE_ERRORS},
            [DAYS_PARAMETER],
        ),
        "/journey/transitions": _get(
            "getTransitions",
            "Stage transitions counted since the census began",
            {"200": _json("Transitions", "The transitions"), **ERRORS},
        ),
    }


def _journeys_paths() -> dict[str, Any]:
    """The journeys of the policy and their live counts, summed over every worker's census."""
    return {
        "/journeys": _get(
            "getJourneys",
            "Every journey: versions, entered, active now, converted, exited by reason, "
            "conversion treated vs control",
            {"200": _json("Journeys", "The journeys"), **ERRORS},
        ),
        "/journeys/{journey_id}": _get(
            "getJourney",
            "One journey per version: nodes and edges with their live counts",
            {
                "200": _json("Journey", "The journey"),
                "404": _json("Error", "No such journey in the policy or the counts"),
                **ERRORS,
            },
            [JOURNEY_PARAMETER],
        ),
    }


def _debug_paths() -> dict[str, Any]:
    """The operators' views of what this worker holds, without routing."""
    return {
        "/debug/state/{key}": _get(
            "getRawState",
            "For operators: the raw stored state (or merged stub) of a key "
            "this worker holds; no routing",
            {
                "200": {
                    "description": "The stored JSON",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
                **CUSTOMER_KEY_ERRORS,
            },
            [CUSTOMER_PARAMETER | {"name": "key"}],
        ),
        "/debug/aliases/{token}": _get(
            "getAlias",
            "For operators: the profile an identifier token resolves to, if "
            "this worker holds its alias",
            {"200": _json("Alias", "The alias"), **CUSTOMER_KEY_ERRORS},
            [CUSTOMER_PARAMETER | {"name": "token"}],
        ),
    }


def _census_paths() -> dict[str, Any]:
    """This worker's own share of the census."""
    return {
        "/journey/census": _get(
            "getCensus",
            "This worker's own census rows (the funnel sums every worker's)",
            {"200": _json("Census", "The census"), **ERRORS},
        ),
        "/journey/performance/share": _get(
            "getPerformanceShare",
            "This worker's own performance counts over a range of days "
            "(/journey/performance sums every worker's)",
            {"200": _json("PerformanceShare", "The counts"), **RANGE_ERRORS},
            DATE_PARAMETERS,
        ),
    }


def openapi_document(server_url: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document, with this worker as the server."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Journey Stream API",
            "version": "0.1.0",
            "description": "Customer 360 and journey analytics, served by every worker; a "
            "request for a customer another worker owns is forwarded to it.",
        },
        "servers": [{"url": server_url}],
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
        },
        "paths": {
            **_customer_paths(),
            **_journey_paths(),
            **_journeys_paths(),
            **_debug_paths(),
            **_census_paths(),
        },
    }
