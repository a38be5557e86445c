"""Item 9: the project's timeline on the estate dashboard and the district view."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

from residents_app.publicity.holidays import load_calendar
from residents_app.works import services as works_svc
from residents_app.works.construction import complaints, timeline
from residents_app.works.construction.timeline import STAGE_HOOKS, Stage
from tests.conftest import login
from tests.works.gate_world import all_met

BJ = timezone(timedelta(hours=8))


def _rows(stages):
    return [(s.key, s.state, s.on, s.note, s.overdue) for s in stages]


def test_timeline_before_anything(world):
    stages = timeline.project_timeline(world.estate.id, world.now)
    assert [(s.key, s.label, s.state) for s in stages] == [
        ("willingness", "改造意愿", "pending"), ("plan", "改造方案", "pending"), ("vote", "方案表决", "pending"),
        ("publicity", "结果公示", "pending"), ("start", "项目启动", "pending"), ("construction", "施工", "pending"),
        ("acceptance", "竣工验收", "pending"), ("settlement", "决算", "pending"), ("handover", "归档移交", "pending"),
        ("evaluation", "问效评价", "pending")]
    assert timeline.summary(stages) == "改造意愿（未开始）"


def _started(world):
    plan = world.plan()
    ends_at = all_met(world, plan)
    app = works_svc.submit_start(world.estate, user=world.committee, now=ends_at + timedelta(hours=1))
    works_svc.decide_start(app, approve=True, comment="", user=world.street, now=ends_at + timedelta(hours=2))
    return app


def test_timeline_through_the_start_and_what_is_overdue(world, db):
    project = _started(world)
    at = datetime(2026, 9, 20, 9, 0, tzinfo=BJ)
    stages = timeline.project_timeline(world.estate.id, at)
    assert _rows(stages)[:6] == [
        ("willingness", "done", date(2026, 9, 2), "改造意愿征求", []),
        ("plan", "done", date(2026, 9, 1), "第 1 版", []),
        ("vote", "done", date(2026, 9, 2), "方案表决", []),
        ("publicity", "done", date(2026, 9, 9), "", []),
        ("start", "done", date(2026, 9, 10), "", []),
        ("construction", "current", date(2026, 9, 10), "尚无进度通报", []),
    ]
    complaints.file_complaint(project, unit_id=world.u101.id, owner_id=world.owner(world.u101).id,
                              kind="complaint", body="噪音", photos=[], calendar=load_calendar(),
                              now=datetime(2026, 9, 21, 9, 0, tzinfo=BJ))  # 9/22-24, 9/28-29 (9/25 rest): due 9/29
    late = datetime(2026, 9, 30, 9, 0, tzinfo=BJ)
    construction = timeline.project_timeline(world.estate.id, late)[5]
    assert (construction.state, construction.overdue) == (
        "overdue", ["进度通报逾期（应于 2026-09-24 前发布）", "1 件投诉咨询逾期未答复"])
    assert timeline.summary(timeline.project_timeline(world.estate.id, late)) == "施工（已逾期） · 2 项逾期"


def test_later_stages_come_from_their_hooks(world, db, monkeypatch):
    _started(world)
    monkeypatch.setitem(STAGE_HOOKS, "acceptance",
                        lambda estate_id, now: Stage("acceptance", "竣工验收", "done", date(2026, 12, 1)))
    stages = {s.key: s for s in timeline.project_timeline(world.estate.id, datetime(2026, 9, 20, tzinfo=BJ))}
    assert (stages["acceptance"].state, stages["acceptance"].on) == ("done", date(2026, 12, 1))
    assert stages["construction"].state == "done"


def test_dashboard_and_district_show_the_timeline(world, client, db):
    _started(world)
    db.session.commit()
    login(client, world.street)
    page = client.get(f"/estates/{world.estate.id}/dashboard").get_data(as_text=True)
    assert 'data-stage="start" data-state="done"' in page
    assert 'data-stage="evaluation" data-state="pending"' in page
    district = client.get("/district").get_data(as_text=True)
    assert '<td class="stage">施工（' in district
    api = client.get(f"/api/construction/estates/{world.estate.id}/timeline").get_json()
    assert [s["key"] for s in api["stages"]][:3] == ["willingness", "plan", "vote"]
    assert api["stages"][4] == {"key": "start", "label": "项目启动", "state": "done", "on": "2026-09-10",
                                "note": "", "overdue": []}


def test_facts_tell_which_stages_to_look_up_in_one_statement(world, db):
    """The estate dashboard reads the facts and the estate's rounds once: the same timeline as the lookups."""
    import sqlalchemy as sa

    from residents_app.rounds.models import Round
    from tests.querycount import count_statements

    estate_id = world.estate.id
    with count_statements(db.engine) as counted:
        assert timeline.facts(estate_id) == {"plan": None, "project": False, "acceptance": False,
                                                   "handover": False, "evaluation": False}
    assert counted.total == 1
    project = _started(world)
    known = timeline.facts(world.estate.id)
    assert known == {"plan": project.plan_version_id, "project": True, "acceptance": False, "handover": False,
                     "evaluation": False}
    at = datetime(2026, 9, 20, 9, 0, tzinfo=BJ)
    rounds = list(db.session.execute(sa.select(Round).where(Round.estate_id == world.estate.id)).scalars())
    assert _rows(timeline.project_timeline(world.estate.id, at, rounds=rounds, known=known)) == _rows(
        timeline.project_timeline(world.estate.id, at))
