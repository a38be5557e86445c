"""Schemathesis on the resident routes of part B (/api/r/statement ... /api/r/evaluation/survey) with a resident
session, on an estate with a plan in its pledge window, a project with a complaint and a progress report with a
photo, an open satisfaction survey and a published evaluation: no 5xx, every documented response matches its
schema (the examples included: each field's example is of its type)."""

from __future__ import annotations

from datetime import date, timedelta

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from tests.works.construction.conftest import png_bytes

MAX_EXAMPLES = 15
PATHS = {"/api/r/statement", "/api/r/settlement", "/api/r/pledges", "/api/r/pledges/{pledge_id}/withdraw",
         "/api/r/complaints", "/api/r/complaints/public", "/api/r/complaints/{number}", "/api/r/progress",
         "/api/r/project", "/api/r/photos/{photo_id}", "/api/r/evaluation", "/api/r/evaluation/survey"}


def _full_world(world, db):
    from residents_app.funding import services as funding_svc
    from residents_app.publicity.holidays import load_calendar
    from residents_app.rounds import services as rounds
    from residents_app.works.acceptance import evaluation as ev_svc
    from residents_app.works.construction import complaints, progress

    plan = world.plan(pledge_closes_at=world.later(days=400))
    funding_svc.sign_pledge(plan, world.u101, world.owner(world.u101), now=world.now)
    project = world.approve_start(plan)
    complaints.file_complaint(project, unit_id=world.u101.id, owner_id=world.owner(world.u101).id, kind="complaint",
                              body="噪音", photos=[png_bytes()], calendar=load_calendar(), now=world.now)
    progress.post_report(project, title="第一期", body="脚手架", percent_done="10", photos=[png_bytes()],
                         user=world.committee, now=world.now)
    opens = world.later(hours=-1)
    rnd = rounds.create_round(world.estate.id, rounds.RoundInput(
        kind="satisfaction", title="改造满意度调查", opens_at=opens, closes_at=world.later(days=400)), opens)
    rounds.open_round(rnd.id, opens)
    weights = {"resident": 50, "community": 20, "street": 30}
    e = ev_svc.create_evaluation(world.estate, title="问效评价", weights=weights, satisfaction_round_id=None,
                                 user=world.street, now=world.now)
    ev_svc.save_sheet(e, evaluator_name="甲", group="resident",
                      scores={i.key: str(i.points) for i in ev_svc.template_of(e).items}, user=world.street,
                      now=world.now)
    ev_svc.publish_evaluation(e, world.estate, posted_on=date(2026, 9, 1), user=world.street, now=world.now)
    db.session.commit()


def test_resident_routes_never_5xx_and_match_their_schemas(app, world, db, resident_login, clock):
    from residents_app.extensions import limiter

    _full_world(world, db)
    clock.now = world.now + timedelta(minutes=1)
    client = app.test_client()
    resident_login(client, world.u101)
    cookie = client.get_cookie("session").value
    spec = client.get("/api/openapi.json").get_json()
    schema = schemathesis.openapi.from_dict(spec)
    schema.app = app
    schema.location = "/api/openapi.json"
    operations = [r.ok() for r in schema.get_all_operations()]
    operations = [op for op in operations if op.path in PATHS]
    assert {op.path for op in operations} == PATHS
    failures: dict[str, str] = {}
    calls = 0
    seen: dict[str, set[int]] = {}
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        def run(case):
            nonlocal calls
            limiter.reset()
            calls += 1
            # as a cookie of the case (a Cookie header is dropped by the WSGI client's own, empty, cookie jar)
            case.cookies = {**(case.cookies or {}), "session": cookie}
            resp = case.call_and_validate(checks=[not_a_server_error, response_schema_conformance])
            seen.setdefault(f"{case.method} {case.path}", set()).add(resp.status_code)

        try:
            run()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure, then report all
            failures[f"{operation.method.upper()} {operation.path}"] = str(exc)[:2000]
    assert failures == {}, "\n\n".join(f"{k}:\n{v}" for k, v in failures.items())
    assert calls >= len(operations) * 5
    # the resident session holds: the routes without parameters answered (not 401)
    for path in ("/api/r/statement", "/api/r/pledges", "/api/r/complaints", "/api/r/complaints/public",
                 "/api/r/progress", "/api/r/project", "/api/r/evaluation"):
        assert 200 in seen[f"GET {path}"], (path, seen[f"GET {path}"])
    assert seen["GET /api/r/settlement"] == {404}  # no settlement yet: the clear 404
