"""Schemathesis against the resident API (/api/r/...), as a resident: an owner of estate A who confirmed their
identity through the unit's link, on the database of tests/security/conftest.py (estate B holds one row of every
table) plus, in estate A, an open round, a closed one, a publicity with an objection and a published plan.

Every documented operation whose path starts with /api/r/ (those added later included) gets a bounded number of
generated requests: no response may be a 5xx, and every documented response must match its schema.
Deterministic (derandomize) and bounded (MAX_EXAMPLES per operation).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.security.test_schemathesis import _operations

MAX_EXAMPLES = 15
# The resident routes this module must reach (part of what the document lists under /api/r/).
EXPECTED = {"GET /api/r/me", "GET /api/r/home", "GET /api/r/rounds", "GET /api/r/rounds/{round_id}",
            "POST /api/r/rounds/{round_id}/cast", "GET /api/r/receipts/{code}", "GET /api/r/board",
            "GET /api/r/board/{publicity_id}", "POST /api/r/publicities/{publicity_id}/objections",
            "GET /api/r/objections", "POST /api/r/objections/{objection_id}/withdraw", "GET /api/r/plans",
            "GET /api/r/plans/{version_id}", "GET /api/r/plans/{version_id}/diff"}


@pytest.fixture
def resident_cookie(app, world, factory):
    """The session cookie's value of estate A's resident after the identity check, with things of A to see."""
    from residents_app.db import utcnow
    from residents_app.extensions import db, limiter
    from residents_app.plans import services as plan_svc
    from residents_app.publicity import services as pub_svc
    from residents_app.rounds import ballots
    from residents_app.rounds import links as links_svc
    from residents_app.rounds import services as round_svc

    limiter.reset()
    now = utcnow()
    committee = world.committee_a
    closed = round_svc.create_round(world.estate_a.id, round_svc.RoundInput(
        kind="willingness", title="已结束的表决", opens_at=now - timedelta(days=3), closes_at=now - timedelta(days=1)),
        now - timedelta(days=3), committee)
    round_svc.open_round(closed.id, now - timedelta(days=3), committee)
    ballots.cast_ballot(closed.id, world.resident_unit.id, world.resident_owner.id, "agree", now - timedelta(days=2))
    round_svc.close_round(closed.id, now - timedelta(days=1), committee)
    rnd = round_svc.create_round(world.estate_a.id, round_svc.RoundInput(
        kind="willingness", title="进行中的表决", opens_at=now - timedelta(hours=1), closes_at=now + timedelta(days=7),
        item_menu=[{"key": "roof", "label": "屋面防水", "category": "基础"}]), now - timedelta(hours=1), committee)
    round_svc.open_round(rnd.id, now - timedelta(hours=1), committee)
    pub = pub_svc.post_publicity(world.estate_a, subject_type="round_result", subject_id=closed.id, title="结果公示",
                                 notice_text="公示", posted_on=pub_svc.beijing_date(now), actor="user:1:t", now=now)
    pub_svc.raise_objection(pub, unit=world.resident_unit, owner=world.resident_owner, text="异议", photo=None,
                            now=now)
    plan = plan_svc.create_plan(world.estate_a, title="改造方案", user=committee, now=now)
    plan_svc.add_item(plan, name="外墙", category="basic", cost_fen=123_456, user=committee, now=now)
    plan_svc.publish_plan(plan, user=committee, now=now)
    tokens = {u.id: t for u, t in links_svc.issue_links(world.estate_a.id, now, reissue=True)}
    db.session.commit()
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = "10.251.0.2"
    owner = world.resident_owner
    resp = client.post(f"/api/ballot/{tokens[world.resident_unit.id]}/identity",
                       json={"name": owner.name, "phone_last4": owner.phone[-4:]})
    assert resp.status_code == 200, resp.get_json()
    me = client.get("/api/r/me")
    assert me.status_code == 200, me.get_json()
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def test_resident_operations_never_5xx_and_match_their_schemas(app, resident_cookie):
    """One hypothesis run per /api/r/ operation, with the resident's session cookie."""
    from residents_app.extensions import limiter

    operations = [op for op in _operations(app) if op.path.startswith("/api/r/")]
    names = {f"{op.method.upper()} {op.path}" for op in operations}
    assert EXPECTED <= names
    failures: dict[str, str] = {}
    statuses: dict[str, set[int]] = {}
    calls = 0
    for operation in operations:
        name = f"{operation.method.upper()} {operation.path}"

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            nonlocal calls
            limiter.reset()
            calls += 1
            # As a cookie, not a Cookie header: werkzeug's test client drops that header when its own jar is empty.
            response = case.call_and_validate(cookies={"session": resident_cookie},
                                              checks=[not_a_server_error, response_schema_conformance])
            statuses.setdefault(f"{case.method.upper()} {case.path}", set()).add(response.status_code)

        try:
            run()
        # schemathesis' FailureGroup is a BaseExceptionGroup (not an Exception): caught too, so that every
        # operation's failure is collected and reported at once.
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001
            failures[name] = str(exc)[:2000]
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert calls >= len(operations) * 5
    # The cookie is a resident's: the routes without parameters answer 200, none asks for the identity check.
    for name in ("GET /api/r/me", "GET /api/r/home", "GET /api/r/rounds", "GET /api/r/board", "GET /api/r/objections",
                 "GET /api/r/plans"):
        assert 200 in statuses[name], (name, statuses[name])
    assert all(401 not in codes for codes in statuses.values()), statuses
