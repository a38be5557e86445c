"""The OpenAPI document of the part-B resident routes: every operation has its summary, every field of every
request and response schema its example (a mini-program developer reads the document, not the code)."""

from __future__ import annotations

from tests.api_r_b.test_schemathesis import PATHS


def _resolve(spec, node):
    if "anyOf" in node:  # a nullable nested schema: [{$ref}, {type: object, nullable: true}]
        node = next(n for n in node["anyOf"] if "$ref" in n)
    while "$ref" in node:
        node = spec["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    if "allOf" in node:
        merged = {"properties": {}}
        for part in node["allOf"]:
            merged["properties"].update(_resolve(spec, part).get("properties", {}))
        return merged
    return node


def _missing_examples(spec, node, where, seen) -> list[str]:
    node = _resolve(spec, node)
    if node.get("type") == "array" and "items" in node:
        return _missing_examples(spec, node["items"], where + "[]", seen)
    if "properties" not in node:
        return [] if "example" in node or node.get("format") == "binary" else [where]
    if id(node) in seen:
        return []
    seen.add(id(node))
    out = []
    for name, prop in node["properties"].items():
        if "example" in prop:
            continue
        out += _missing_examples(spec, prop, f"{where}.{name}", seen)
    return out


def test_every_operation_has_a_summary_and_every_field_an_example(client):
    spec = client.get("/api/openapi.json").get_json()
    missing = []
    operations = 0
    for path in sorted(PATHS):
        for method, op in spec["paths"][path].items():
            if method not in ("get", "post"):
                continue
            operations += 1
            assert op.get("summary"), (method, path)
            for status, resp in op["responses"].items():
                if not status.startswith("2"):
                    continue
                for content_type, body in resp.get("content", {}).items():
                    if content_type == "application/json":
                        missing += _missing_examples(spec, body["schema"], f"{method} {path} {status}", set())
            for body in op.get("requestBody", {}).get("content", {}).values():
                missing += _missing_examples(spec, body["schema"], f"{method} {path} body", set())
    assert operations == 14
    assert missing == []
