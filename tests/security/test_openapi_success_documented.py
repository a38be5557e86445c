"""Every operation of /api/openapi.json documents its success: a 2xx response, and a content schema for every
2xx other than 204 (No Content). Without one, schemathesis (and any client generator) validates a 200/201 body
against the `default` error schema; see tests/security/test_schemathesis.py.
"""

from __future__ import annotations

METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def _operations(spec: dict):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield f"{method.upper()} {path}", op


def _success_problems(spec: dict) -> dict[str, str]:
    problems = {}
    for name, op in _operations(spec):
        responses = op.get("responses", {})
        success = sorted(code for code in responses if str(code).startswith("2"))
        if not success:
            problems[name] = f"no 2xx response (documented: {sorted(responses)})"
            continue
        for code in success:
            if code == "204":
                continue
            content = responses[code].get("content") or {}
            if not content or any(not media.get("schema") for media in content.values()):
                problems[name] = f"{code} without a content schema"
    return problems


def test_every_operation_documents_its_success_body(app):
    spec = app.test_client().get("/api/openapi.json").get_json()
    ops = dict(_operations(spec))
    assert len(ops) >= 70  # the whole document (77 operations when this was written), not a few paths
    assert _success_problems(spec) == {}


def test_the_check_finds_a_missing_success_and_a_missing_schema(app):
    """The check itself: an operation without a 2xx, one whose 200 has no schema; 204 needs none."""
    spec = {"paths": {
        "/a": {"get": {"responses": {"default": {"description": "error"}}}},
        "/b": {"post": {"responses": {"200": {"description": "ok"}}},
               "delete": {"responses": {"204": {"description": "gone"}}}},
        "/c": {"get": {"responses": {"201": {"content": {"application/json": {"schema": {"type": "object"}}}}}},
               "parameters": []},
    }}
    assert _success_problems(spec) == {"GET /a": "no 2xx response (documented: ['default'])",
                                       "POST /b": "200 without a content schema"}
