"""The served OpenAPI document is a valid OpenAPI 3.1 document."""

from __future__ import annotations

from openapi_spec_validator import validate

from stream.shell.openapi import openapi_document


def test_the_document_is_valid_openapi_3_1_and_requires_the_token() -> None:
    document = openapi_document("http://127.0.0.1:6066")
    validate(document)
    assert document["openapi"] == "3.1.0"
    assert document["security"] == [{"bearer": []}]
    for path, item in document["paths"].items():
        responses = item["get"]["responses"]
        assert {"200", "401", "503"} <= set(responses), path
