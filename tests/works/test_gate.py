"""The whole start gate (issue 13 item 7, DOMAIN "The start gate"): each check with its exact reason, the
submission refused with the list of reasons, the generated materials ① ② and the uploaded ⑤."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from residents_app.errors import Conflict
from residents_app.plans import services as plan_svc
from residents_app.plans.models import PlanVersion
from residents_app.works import services as works_svc
from tests.works.gate_world import PDF, all_met, publicise, requested_shots_dir, vote


def check(plan, key, now):
    c = next(c for c in works_svc.start_checklist(plan, now) if c.key == key)
    return c.met, c.reason


# ---- willingness ----------------------------------------------------------------------------------

def test_willingness_none_building_only_weak_rule_failed_passed(world):
    plan = world.plan()
    at = world.later(days=3)
    assert check(plan, "willingness", at) == (False, "还没有已结束的全小区改造意愿征求")
    vote(world, "willingness", scope=[world.b1], title="1幢意愿征求")
    assert check(plan, "willingness", at) == (False, "意愿征求「1幢意愿征求」只涵盖 1幢，改造意愿须由全小区业主表决")
    vote(world, "willingness", preset="civil_code_278_ordinary", title="一般规则征求")
    assert check(plan, "willingness", at) == (
        False, "意愿征求「一般规则征求」采用「民法典第278条（一般事项）」规则；改造属于《民法典》第二百七十八条"
               "第一款第七项，须采用双三分之二或重大事项规则")
    vote(world, "willingness", agree=False, base=world.later(hours=1), title="第二次征求")
    assert check(plan, "willingness", at) == (False, "意愿征求「第二次征求」未达到通过条件")
    vote(world, "willingness", base=world.later(hours=2), title="第三次征求", preset="civil_code_278_major")
    assert check(plan, "willingness", at) == (True, "意愿征求「第三次征求」已通过")


# ---- plan vote ------------------------------------------------------------------------------------

def test_plan_vote_must_be_estate_wide(world):
    plan = world.plan()
    vote(world, "plan_vote", plan_id=plan.id, scope=[world.b1], title="1幢方案表决")
    assert check(plan, "plan_vote", world.later(days=3)) == (
        False, "表决「1幢方案表决」只涵盖 1幢，方案须由全小区业主表决")


def test_plan_vote_under_the_ordinary_rule_does_not_count(world):
    plan = world.plan()
    vote(world, "plan_vote", plan_id=plan.id, preset="civil_code_278_ordinary")
    assert check(plan, "plan_vote", world.later(days=3)) == (
        False, "表决「方案表决」采用「民法典第278条（一般事项）」规则；改造属于《民法典》第二百七十八条第一款第七项，"
               "须采用双三分之二或重大事项规则")


def test_a_vote_on_a_superseded_version_does_not_count(world):
    v1 = world.plan()
    vote(world, "plan_vote", plan_id=v1.id)
    v2 = plan_svc.new_version(v1, user=world.committee, now=world.later(days=2))
    plan_svc.update_plan(v2, user=world.committee, now=world.later(days=2), change_summary="取消停车位改造")
    plan_svc.publish_plan(v2, user=world.committee, now=world.later(days=2))
    assert check(v2, "plan_vote", world.later(days=3)) == (
        False, "第 2 版方案还没有已结束的方案表决（表决「方案表决」针对的是已被取代的第 1 版）")
    assert check(v2, "publicity", world.later(days=3)) == (False, "没有可公示的方案表决结果")
    vote(world, "plan_vote", plan_id=v2.id, base=world.later(days=3), title="第2版方案表决")
    assert check(v2, "plan_vote", world.later(days=5)) == (True, "表决「第2版方案表决」已通过")


def test_a_vote_opened_before_the_version_was_published_does_not_count(world, db):
    plan = world.plan()
    rnd = vote(world, "plan_vote", plan_id=plan.id)
    # stored before drafts were refused: the round opened a minute before the version was published
    db.session.execute(sa.update(PlanVersion).where(PlanVersion.id == plan.id)
                       .values(published_at=rnd.opened_at + timedelta(minutes=1)))
    db.session.expire(plan)
    assert check(plan, "plan_vote", world.later(days=3)) == (False, "表决「方案表决」开启时第 1 版方案尚未发布")


def test_plan_vote_label_names_the_version(world):
    plan = world.plan()
    labels = {c.key: c.label for c in works_svc.start_checklist(plan, world.now)}
    assert labels["plan_vote"] == "全小区方案表决通过（现行第 1 版方案）"


# ---- publicity ------------------------------------------------------------------------------------

def test_publicity_not_posted_running_objection_completed(world, db):
    from residents_app.publicity import services as pub_svc

    plan = world.plan()
    rnd = vote(world, "plan_vote", plan_id=plan.id)
    assert check(plan, "publicity", world.later(days=2)) == (False, "该表决结果尚未公示")
    p = publicise(world, rnd, complete=False)
    assert check(plan, "publicity", world.later(days=2)) == (False, "公示期尚未届满（截至 2026-09-09 24:00）")
    u = world.u201
    obj = pub_svc.raise_objection(p, unit=u, owner=world.owner(u), text="电梯费用分摊有误", photo=None,
                                  now=world.later(days=3))
    assert check(plan, "publicity", world.later(days=9)) == (False, "公示期内还有 1 条异议未处理")
    pub_svc.mediate(obj, outcome="answered", notes="上门解释分摊规则", answer="电梯费用仅由1幢分摊",
                    actor="user:1:test", now=world.later(days=4))
    pub_svc.complete_publicity(p, actor="user:1:test", now=world.later(days=9))
    assert check(plan, "publicity", world.later(days=9)) == (True, "公示期已结束，无未处理的异议")


# ---- management mode ------------------------------------------------------------------------------

def test_management_mode_none_undecided_decided(world):
    plan = world.plan()
    assert works_svc.management_mode_decided(world.estate.id) == (False, "还没有已结束的管理模式表决")
    vote(world, "management_mode", agree=False)
    assert check(plan, "management_mode", world.later(days=3)) == (
        False, "管理模式表决「管理模式表决」没有任何选项达到表决规则（未决定），需重新表决")
    vote(world, "management_mode", base=world.later(hours=1), title="再次表决管理模式")
    assert works_svc.management_mode_decided(world.estate.id) == (True, "管理模式表决「再次表决管理模式」已决定：自治")
    assert check(plan, "management_mode", world.later(days=3)) == (True, "管理模式表决「再次表决管理模式」已决定：自治")


# ---- everything, and the refusal ------------------------------------------------------------------

def test_every_check_met_then_submitted(world, db):
    plan = world.plan()
    at = all_met(world, plan)
    checks = works_svc.start_checklist(plan, at)
    assert [(c.key, c.met, c.reason) for c in checks] == [
        ("willingness", True, "意愿征求「改造意愿征求」已通过"),
        ("plan_vote", True, "表决「方案表决」已通过"),
        ("publicity", True, "公示期已结束，无未处理的异议"),
        ("management_mode", True, "管理模式表决「管理模式表决」已决定：自治"),
        ("management_plan", True, "方案中已有长效管理方案"),
        ("pledges", True, "应出资 3 户已全部签署"),
        ("self_funding", True, "已到位 11,000.00 / 11,000.00 元（100%）"),
    ]
    from residents_app.works import materials

    materials.add_material(plan, title="小区业主大会决议", filename="决议.pdf", data=PDF, user=world.committee,
                           now=at)
    app = works_svc.submit_start(world.estate, user=world.committee, now=at)
    assert app.status == "submitted"
    from residents_app.audit.models import AuditEvent, AuditPending

    rows = [e.data for m in (AuditEvent, AuditPending) for e in db.session.query(m).filter_by(
        kind="plans.start_submitted")]
    assert rows[0]["materials"] == [{"title": "小区业主大会决议", "filename": "决议.pdf",
                                     "sha256": hashlib.sha256(PDF).hexdigest()}]
    with pytest.raises(Conflict) as err:
        materials.add_material(plan, title="补充材料", filename="b.pdf", data=PDF, user=world.committee, now=at)
    assert err.value.message == "启动申请已提交，材料不能再修改"


def test_server_refuses_with_every_reason(client, login_as, world):
    world.plan(management_plan="")
    login_as(client, world.committee)
    resp = client.post(f"/estates/{world.estate.id}/start", headers={"Accept": "application/json"})
    assert resp.status_code == 409
    body = resp.get_json()
    assert body["code"] == "start_conditions_unmet"
    assert body["errors"] == {
        "willingness": ["还没有已结束的全小区改造意愿征求"],
        "plan_vote": ["第 1 版方案还没有已结束的方案表决"],
        "publicity": ["没有可公示的方案表决结果"],
        "management_mode": ["还没有已结束的管理模式表决"],
        "management_plan": ["第 1 版方案没有长效管理方案（文字或附件）"],
        "pledges": ["应出资 3 户，已签 0 户，还差 3 户：1幢-101、1幢-102、2幢-101"],
        "self_funding": ["已到位 0.00 / 11,000.00 元（0.00%），还差 11,000.00 元，3 户未缴足："
                         "1幢-101、1幢-102、2幢-101"],
    }
    assert body["message"].startswith(
        "启动申请条件未满足：全小区改造意愿征求已通过：还没有已结束的全小区改造意愿征求；")
    api = client.get(f"/api/plans/estates/{world.estate.id}/start").get_json()
    assert (api["can_submit"], api["materials"]) == (False, [])
    page = client.get(f"/estates/{world.estate.id}/start").get_data(as_text=True)
    assert '<button type="submit" id="submit-start" disabled' in page
    assert "还有 7 项条件未满足，暂不能提交" in page


def test_page_enables_the_button_when_every_check_is_met(client, login_as, world, monkeypatch):
    from residents_app.works import views

    plan = world.plan()
    at = all_met(world, plan)
    monkeypatch.setattr(views, "utcnow", lambda: at)
    login_as(client, world.committee)
    page = client.get(f"/estates/{world.estate.id}/start").get_data(as_text=True)
    assert '<button type="submit" id="submit-start">提交启动申请</button>' in page
    assert "全部条件已满足，可以提交。" in page
    assert client.post(f"/estates/{world.estate.id}/start").status_code == 302


# ---- materials ------------------------------------------------------------------------------------

def _pdf_text(data: bytes, tmp_path, name="doc") -> str:
    path = tmp_path / f"{name}.pdf"
    path.write_bytes(data)
    keep = requested_shots_dir()
    if keep:  # RAPP_SCREENSHOTS=dir: keep the PDF and its pages as PNG to look at
        (Path(keep) / f"gate-{name}.pdf").write_bytes(data)
        subprocess.run(["pdftoppm", "-png", "-r", "80", str(path), str(Path(keep) / f"gate-{name}")], check=True)
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True).stdout
    assert "WenQuanYi" in fonts and " yes " in fonts  # the CJK font is embedded
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    return re.sub(r"\s+", "", text)  # table cells wrap: compare without white space


def test_application_form_and_publicity_notice_pdfs(client, login_as, world, tmp_path, monkeypatch):
    from residents_app.works import views

    plan = world.plan()
    at = all_met(world, plan)
    monkeypatch.setattr(views, "utcnow", lambda: at)
    login_as(client, world.committee)
    resp = client.get(f"/estates/{world.estate.id}/start/application.pdf")
    assert (resp.status_code, resp.mimetype) == (200, "application/pdf")
    text = _pdf_text(resp.data, tmp_path, "application-form")
    for expected in ("老旧小区改造项目启动申请表", "第 1 版《幸福小区综合改造方案》", "3 户", "200.00 m²",
                     "40,000.00 元", "11,000.00 元", "全小区方案表决通过",
                     "已满足", "双三分之二（鹿城规则）；全小区", "同意 3 / 3 户", "公示期：2026-09-03 至 2026-09-09",
                     "应签 3 户，已签 3 户", "业主委员会（自治小组）盖章"):
        assert expected.replace(" ", "") in text, expected
    assert "未满足" not in text
    resp = client.get(f"/estates/{world.estate.id}/start/publicity.pdf")
    assert (resp.status_code, resp.mimetype) == (200, "application/pdf")
    text = _pdf_text(resp.data, tmp_path, "publicity-notice")
    for expected in ("方案表决结果公示", "公示期：2026-09-03 至 2026-09-09（5个工作日）", "张贴日期 2026-09-02",
                     "经全体业主表决", "1幢-101", "1幢-102", "2幢-101", "共 3 户，仅列房号"):
        assert expected.replace(" ", "") in text, expected
    for owner in (world.owner(u) for u in world.units):
        assert owner.name not in text and owner.phone not in text


def test_publicity_notice_needs_a_posted_result(client, login_as, world):
    from residents_app.works import documents

    plan = world.plan()
    with pytest.raises(Conflict) as err:
        documents.publicity_notice_pdf(plan, world.now)
    assert err.value.message == "第 1 版方案的表决结果尚未公示，无法生成公示书"
    login_as(client, world.committee)
    assert client.get(f"/estates/{world.estate.id}/start/publicity.pdf").status_code == 409
    resp = client.get(f"/estates/{world.estate.id}/start/application.pdf")
    assert resp.status_code == 200  # the form is generated whatever the state, its checklist says what is missing


def test_other_materials_upload_download_delete(client, login_as, world):
    from residents_app.works import materials

    plan = world.plan()
    login_as(client, world.committee)
    url = f"/estates/{world.estate.id}/start/materials"
    resp = client.post(url, data={"title": "业主大会决议", "file": (io.BytesIO(PDF), "决议.pdf")},
                       content_type="multipart/form-data")
    assert resp.status_code == 302
    (m,) = materials.materials_of(plan)
    assert (m.title, m.filename, m.content_type, m.size_bytes) == ("业主大会决议", "决议.pdf", "application/pdf",
                                                                    len(PDF))
    got = client.get(f"{url}/{m.id}")
    assert (got.status_code, got.data, got.mimetype) == (200, PDF, "application/pdf")
    page = client.get(f"/estates/{world.estate.id}/start").get_data(as_text=True)
    assert "⑤ 其他材料（1 份）" in page and "业主大会决议" in page
    resp = client.post(url, data={"title": "程序", "file": (io.BytesIO(b"MZ\x90\x00" + b"\x00" * 60), "a.pdf")},
                       content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert resp.status_code == 422
    assert resp.get_json()["errors"] == {
        "file": "上传的材料的内容是Windows 可执行程序，只接受 PDF 文件（.pdf）、PNG 图片（.png）、JPEG 图片（.jpg）"}
    resp = client.post(url, data={"title": " ", "file": (io.BytesIO(PDF), "b.pdf")},
                       content_type="multipart/form-data", headers={"Accept": "application/json"})
    assert (resp.status_code, resp.get_json()["message"]) == (422, "请填写材料名称")
    assert client.post(f"{url}/{m.id}/delete").status_code == 302
    assert materials.materials_of(plan) == []
    street = world.street
    login_as(client, street)
    assert client.post(url, data={"title": "x", "file": (io.BytesIO(PDF), "x.pdf")},
                       content_type="multipart/form-data").status_code in (403, 404)
