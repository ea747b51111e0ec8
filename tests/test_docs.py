"""The documents say what the product does: docs/api.md covers every operation of the API."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_docs_api_names_every_operation_of_the_openapi_document(client):
    document = client.get("/api/v1/openapi.json").get_json()
    text = (DOCS / "api.md").read_text()
    # Headings and mentions such as `GET /partner/reports/{month}` (the base path left out).
    named = {
        (m.group(1), m.group(2).split("?")[0])
        for m in re.finditer(r"\b(GET|POST|PUT|PATCH|DELETE) (/partner/\S*?)[`\s]", text)
    }
    operations = {
        (method.upper(), path.removeprefix("/api/v1"))
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations, "the OpenAPI document lists no operation"
    missing = sorted(operations - named)
    assert missing == [], f"docs/api.md does not describe {missing}"
