"""Every route, called as every outsider, with the ids of estate B's objects: always refused.

Outsiders: anonymous; a resident signed in for a unit of estate A; the committee of estate A; the
street office of estate A's district (estate B lies in another district). The route list comes from
app.url_map, so routes added later are covered without editing this file; ids come from one row
of every table seeded for estate B (tests/security/conftest.py).

A route without ids is "self-scoped" (a dashboard, the resident's own page): it may answer, but
its body must not contain anything of estate B. Routes public by design are listed with a reason.
"""

from __future__ import annotations

import io
import itertools
import re
from urllib.parse import urlsplit

import pytest
from werkzeug.routing import Rule

from .conftest import World, sign_in_resident

# endpoint -> why it is public (no login, no token)
PUBLIC = {
    "static": "CSS, JS and fonts; no data",
    "auth.index": "landing page",
    "auth.login": "the login form itself",
    "auth.logout": "logging out needs no rights",
    "auth_api.api_login": "the login API itself",
    "auth_api.api_logout": "logging out needs no rights",
    "auth.resident_expired": "the page a resident lands on when the link session is gone",
    "api-docs.openapi_json": "the API description; contains no data",
    "ops.healthz": "liveness probe for the process manager; no data",
    "ops.readyz": "readiness probe for the load balancer; no data",
    "publicity.board": "public notice board 公示栏 (DOMAIN: published in a prominent place, QR on the wall)",
    "publicity.board_qr": "QR code of the public notice board",
    "publicity.public_document": "documents posted on the public notice board (unit numbers only, no names)",
    "rounds.receipt_check": "anyone holding a receipt code checks it; shows no names or unit numbers",
    "rounds_api.chain_receipt": "the same receipt check as JSON",
    "rounds_api.receipt_check": "the same receipt check, from the voting API",
}

# (endpoint, method, role) -> the status this known gap returns today. Kept strict: when the gap
# is fixed the test fails and asks for the entry to be removed.
KNOWN_GAPS: dict[tuple[str, str, str], tuple[int, str]] = {}

ROLES = ("anonymous", "resident_of_other_unit", "committee_of_other_estate", "street_of_other_district")
REFUSED = {401, 403, 404}
LOGIN_PATHS = ("/login", "/r/expired")
MAX_COMBINATIONS = 4
UNSEEDED_ID = 987654


def _rules(app) -> list[Rule]:
    return sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint))


def _fk_targets(param: str) -> set[str]:
    from residents_app.extensions import db

    return {next(iter(c.foreign_keys)).column.table.name
            for t in db.metadata.sorted_tables for c in t.columns
            if c.name == param and c.foreign_keys}


def candidate_ids(param: str, world: World) -> list:
    """B's ids a route parameter may stand for, most specific tables first."""
    if param == "estate_code":
        return [world.estate_b.code]
    if param == "token":
        return ["AAAAAAAAAAAAAAAAAAAAAAAAAAA"]  # a guessed token
    if param == "code":
        return ["R-GUESSED-0000"]
    if param == "filename":
        return ["css/app.css"]
    if param == "number":  # a complaint's number (TS<year>-<n>), per estate: guessed
        return ["TS2026-0001"]
    stem = param[:-3] if param.endswith("_id") else param
    ids = world.ids
    for tables in ([stem] if stem in ids else [],
                   sorted(_fk_targets(param)),
                   [t for t in ids if t.endswith("_" + stem)],
                   [t for t in ids if t.startswith(stem + "_")],
                   [t for t in ids if stem in t]):
        found = sorted({i for t in tables for i in ids.get(t, [])})
        if found:
            return found
    return [UNSEEDED_ID]


def urls_for(rule: Rule, world: World) -> list[str]:
    params = sorted(rule.arguments - set(rule.defaults or {}))
    options = [candidate_ids(p, world) for p in params]
    urls = []
    for combo in itertools.islice(itertools.product(*options), MAX_COMBINATIONS):
        path = rule.rule
        for param, value in zip(params, combo, strict=True):
            path = re.sub(r"<(?:[^:<>]+:)?" + re.escape(param) + r">", str(value), path)
        urls.append(path)
    return urls


def _client(app, n: int):
    c = app.test_client()
    c.environ_base["REMOTE_ADDR"] = f"10.250.0.{n}"
    return c


@pytest.fixture
def clients(app, world, login_as):
    from residents_app.extensions import limiter

    limiter.reset()
    anonymous = _client(app, 1)
    resident = _client(app, 2)
    sign_in_resident(resident, world)
    committee = _client(app, 3)
    login_as(committee, world.committee_a)
    street = _client(app, 4)
    login_as(street, world.street_a)
    return dict(zip(ROLES, (anonymous, resident, committee, street), strict=True))


def _is_refusal(resp) -> bool:
    if resp.status_code in REFUSED:
        return True
    if resp.status_code in (301, 302, 303, 307, 308):
        return urlsplit(resp.headers.get("Location", "")).path in LOGIN_PATHS
    return False


def _resolve(spec: dict, schema: dict) -> dict:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def minimal_instance(spec: dict, schema: dict, world: World, name: str = ""):
    """A small value valid for a JSON schema, with B's ids for *_id fields, so the request passes
    input validation and reaches the authorisation check."""
    schema = _resolve(spec, schema)
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {k: minimal_instance(spec, props.get(k, {}), world, k) for k in schema.get("required", [])}
    if kind == "array":
        return [minimal_instance(spec, schema.get("items", {}), world, name)
                for _ in range(schema.get("minItems", 0))]
    if kind == "integer":
        if name.endswith("_id"):
            return candidate_ids(name, world)[0]
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return max(schema.get("minimum", 1), 1)
    if kind == "boolean":
        return True
    fmt = schema.get("format")
    if fmt == "binary":
        return "binary"
    if fmt in ("date", "date-time", "email"):
        return {"date": "2026-09-01", "date-time": "2026-09-01T10:00:00+08:00", "email": "a@example.com"}[fmt]
    if "pattern" in schema:
        for guess in ("1111", "1", "11111111111", "a", "A1", "1幢"):
            if re.search(schema["pattern"], guess):
                return guess
    return "1" * max(1, schema.get("minLength", 1))


def _api_operation(spec: dict, rule: Rule, method: str) -> dict | None:
    path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
    return spec.get("paths", {}).get(path, {}).get(method.lower())


def _call(client, method: str, url: str, rule: Rule, spec: dict, world: World):
    if method == "GET":
        return client.open(url, method=method)
    if not url.startswith("/api/"):
        return client.open(url, method=method, data={})
    op = _api_operation(spec, rule, method) or {}
    content = op.get("requestBody", {}).get("content", {})
    if "application/json" in content:
        return client.open(url, method=method, json=minimal_instance(spec, content["application/json"]["schema"],
                                                                     world))
    if "multipart/form-data" in content:
        fields = minimal_instance(spec, content["multipart/form-data"]["schema"], world)
        data = {k: (io.BytesIO("楼栋,房号,面积\n1幢,101,88.50\n".encode()), "a.csv") if v == "binary" else v
                for k, v in fields.items()}
        return client.open(url, method=method, data=data, content_type="multipart/form-data")
    return client.open(url, method=method, json={})


def test_every_route_refuses_outsiders(app, world, clients, login_as):
    spec = app.test_client().get("/api/openapi.json").get_json()
    problems: list[str] = []
    seen_gaps: set[tuple[str, str, str]] = set()
    checked = 0
    leak_checked = 0
    for rule in _rules(app):
        if rule.endpoint in PUBLIC:
            continue
        params = rule.arguments - set(rule.defaults or {})
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for url in urls_for(rule, world):
                for role, client in clients.items():
                    resp = _call(client, method, url, rule, spec, world)
                    body = resp.get_data(as_text=True) if resp.mimetype.startswith(("text/", "application/json")) \
                        else ""
                    leaked = [m for m in world.markers if m in body]
                    key = (rule.endpoint, method, role)
                    if not params:
                        leak_checked += 1
                        if leaked:
                            problems.append(f"{method} {url} as {role}: {resp.status_code} shows estate B: {leaked}")
                        continue
                    checked += 1
                    if resp.status_code >= 500:
                        problems.append(f"{method} {url} as {role}: server error {resp.status_code}")
                    elif key in KNOWN_GAPS:
                        seen_gaps.add(key)
                        if resp.status_code != KNOWN_GAPS[key][0]:
                            problems.append(f"{key} listed in KNOWN_GAPS with {KNOWN_GAPS[key][0]} "
                                            f"now answers {resp.status_code}: remove or update the entry")
                    elif not _is_refusal(resp) or leaked:
                        problems.append(f"{method} {url} as {role}: not refused ({resp.status_code}"
                                        f"{' -> ' + resp.headers['Location'] if 'Location' in resp.headers else ''})"
                                        f"{' and shows estate B: ' + str(leaked) if leaked else ''}")
    # Control: the same data is still there and answers its own committee (the refusals were real).
    insider = _client(app, 9)
    login_as(insider, world.committee_b)
    control = insider.get(f"/estates/{world.estate_b.id}/units")
    assert control.status_code == 200 and "9901" in control.get_data(as_text=True)
    stale = set(KNOWN_GAPS) - seen_gaps
    problems += [f"KNOWN_GAPS entry {k} no longer exists: remove it" for k in sorted(stale)]
    assert checked > 100 and leak_checked > 10
    assert problems == [], "\n".join(problems)


def test_public_list_names_only_existing_routes(app):
    endpoints = {r.endpoint for r in app.url_map.iter_rules()}
    assert sorted(set(PUBLIC) - endpoints) == []


def test_every_table_owned_by_an_estate_is_seeded_for_estate_b(world):
    """If this fails, the generic seeder could not build a row: the matrix would use a dead id."""
    owned = {t: why for t, why in world.unseeded.items() if not why.startswith("no foreign key")}
    assert owned == {}, owned


def test_candidate_ids_resolve_for_every_route_parameter(app, world):
    unresolved = sorted({(r.rule, p) for r in _rules(app) for p in r.arguments - set(r.defaults or {})
                         if candidate_ids(p, world) == [UNSEEDED_ID]})
    assert unresolved == []


def test_refusal_is_real_for_the_insider(app, world, login_as, factory):
    """The same URLs answer B's own committee: the refusals above are about who asks, not dead ids."""
    insider = _client(app, 9)
    login_as(insider, factory.user("committee", estate=world.estate_b))
    resp = insider.get(f"/estates/{world.estate_b.id}/units")
    assert resp.status_code == 200
    assert "9901" in resp.get_data(as_text=True)
    outsider = _client(app, 10)
    login_as(outsider, world.committee_a)
    assert outsider.get(f"/estates/{world.estate_b.id}/units").status_code == 404
