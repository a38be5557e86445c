"""Item 2: change requests, refused in principle; a change of the residents' costs or scope goes to a new plan
version and vote; the others need the committee and the street office; logged and listed for residents."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.errors import Conflict, ValidationFailed
from residents_app.plans.models import PlanVersion
from residents_app.works.construction import changes
from residents_app.works.construction.models import ChangeRequest
from tests.conftest import login

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def _submit(project, world, *, moves=False, effect="外墙保温 | +12000.50\n雨污分流 | -300", title="增设雨棚"):
    return changes.submit_change(project, title=title, reason="原设计遗漏单元门雨棚",
                                 cost_effect=changes.parse_cost_effect(effect), moves_residents=moves,
                                 explanation=PDF, explanation_filename="设计说明.pdf", user=world.committee,
                                 now=world.now)


def test_cost_effect_parsed_exactly_item_by_item():
    assert changes.parse_cost_effect("外墙保温 | +12000.50\n\n雨污分流 | -300\n楼道照明 0") == [
        {"item": "外墙保温", "delta_fen": 1200050}, {"item": "雨污分流", "delta_fen": -30000},
        {"item": "楼道照明", "delta_fen": 0}]
    with pytest.raises(ValidationFailed) as info:
        changes.parse_cost_effect("外墙保温 | 12.345\n | 5")
    assert info.value.errors == {"cost_effect": ["第 1 行「外墙保温 | 12.345」的金额无效", "第 2 行缺少项目名称"]}
    with pytest.raises(ValidationFailed):
        changes.parse_cost_effect("  ")


def test_change_needs_reason_and_designers_explanation(project, world):
    with pytest.raises(ValidationFailed) as info:
        changes.submit_change(project, title="", reason=" ", cost_effect=[{"item": "x", "delta_fen": 0}],
                              moves_residents=False, explanation=b"hello", explanation_filename="a.txt",
                              user=world.committee, now=world.now)
    assert info.value.errors == {"title": ["请填写变更事项（不超过 200 字）"], "reason": ["请填写变更理由"],
                                 "explanation": ["设计说明只接受 10 MB 以内的 PDF、PNG 或 JPEG"]}


def test_refused_change_needs_a_reason_and_is_final(project, world):
    ch = _submit(project, world)
    assert (ch.number, ch.delta_fen, ch.state) == (1, 1170050, "submitted")
    with pytest.raises(Conflict):
        changes.refuse_change(ch, note="", user=world.committee, now=world.now)
    changes.refuse_change(ch, note="原则上不允许变更", user=world.committee, now=world.now)
    assert (ch.state, ch.decision_note) == ("refused", "原则上不允许变更")
    with pytest.raises(Conflict) as info:
        changes.approve_change(ch, user=world.street, now=world.now)
    assert info.value.code == "change_decided"


def test_other_change_approved_only_by_committee_and_street_office(project, world, client, db):
    ch = _submit(project, world)
    db.session.commit()
    login(client, world.committee)
    url = f"/estates/{world.estate.id}/construction/changes/{ch.id}/approve"
    assert client.post(url).status_code == 302
    db.session.refresh(ch)
    assert ch.state == "submitted" and ch.committee_approved_at is not None
    again = client.post(url, headers={"Accept": "application/json"})
    assert (again.status_code, again.get_json()["code"]) == (409, "already_approved")
    login(client, world.street)
    assert client.post(url).status_code == 302
    db.session.refresh(ch)
    assert ch.state == "approved"
    kinds = db.session.execute(sa.select(AuditEvent.kind, AuditEvent.data["side"].as_string()).where(
        AuditEvent.subject_type == "change_request").order_by(AuditEvent.seq)).all()
    assert [tuple(k) for k in kinds] == [("construction.change_submitted", None),
                                         ("construction.change_approved", "committee"),
                                         ("construction.change_approved", "street")]


def test_another_street_office_cannot_approve(project, world, factory, client, db):
    ch = _submit(project, world)
    stranger = factory.user("street", office=factory.street_office())
    db.session.commit()
    login(client, stranger)
    assert client.post(f"/estates/{world.estate.id}/construction/changes/{ch.id}/approve").status_code == 404


def test_change_of_residents_costs_goes_to_a_new_plan_version(project, world, client, db):
    ch = _submit(project, world, moves=True, title="增加电梯加装")
    with pytest.raises(Conflict) as info:
        changes.approve_change(ch, user=world.committee, now=world.now)
    assert info.value.code == "change_needs_vote"
    db.session.commit()
    login(client, world.committee)
    assert client.post(f"/estates/{world.estate.id}/construction/changes/{ch.id}/replan").status_code == 302
    db.session.refresh(ch)
    draft = db.session.get(PlanVersion, ch.new_plan_version_id)
    assert (ch.state, draft.status, draft.number, draft.supersedes_id) == (
        "replanned", "draft", 2, world.plan_version.id)
    # the street office cannot send a change to the residents (the committee's plan)
    ch2 = _submit(project, world, moves=True, title="再次变更")
    db.session.commit()
    login(client, world.street)
    assert client.post(f"/estates/{world.estate.id}/construction/changes/{ch2.id}/replan").status_code == 404


def test_residents_see_decided_changes(project, world, client, resident_login, db):
    a = _submit(project, world, title="取消绿化")
    changes.refuse_change(a, note="原则上不允许变更", user=world.committee, now=world.now)
    b = _submit(project, world, title="增设雨棚", effect="雨棚 | +800")
    changes.approve_change(b, user=world.committee, now=world.now)
    changes.approve_change(b, user=world.street, now=world.now)
    _submit(project, world, title="待审批的变更")
    db.session.commit()
    resident_login(client, world.u101)
    page = client.get("/r/construction").get_data(as_text=True)
    assert "第 1 号 取消绿化：<strong>不予变更</strong>" in page
    assert "第 2 号 增设雨棚：<strong>已批准</strong>\n    （费用增加 800.00 元）" in page
    assert "待审批的变更" not in page and "另有 1 项变更申请正在审批。" in page


def test_contractor_account_submits_change_over_http(project, world, client, db):
    from residents_app.works.construction import services

    p = services.add_party(project, kind="contractor", name="宏达建设", contact_name="王工",
                           contact_phone="13800000001", sign_mode="account", username="hongda",
                           password="Hongda-site-2026", user=world.committee, now=world.now)
    db.session.commit()
    login(client, p.user, "Hongda-site-2026")
    resp = client.post(f"/estates/{world.estate.id}/construction/changes", data={
        "title": "管线改道", "reason": "地下发现旧管", "cost_effect": "雨污分流 | +5000",
        "explanation": (io.BytesIO(PDF), "说明.pdf")}, content_type="multipart/form-data")
    assert resp.status_code == 302
    ch = db.session.query(ChangeRequest).one()
    assert (ch.submitted_by_id, ch.cost_effect, ch.explanation_type) == (
        p.user_id, [{"item": "雨污分流", "delta_fen": 500000}], "application/pdf")
    # but it cannot approve its own change
    assert client.post(f"/estates/{world.estate.id}/construction/changes/{ch.id}/approve").status_code == 404
