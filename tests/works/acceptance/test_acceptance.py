"""The joint acceptance: it passes only when every participant has signed and no rectification item is open."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest

from residents_app.audit.models import AuditEvent
from residents_app.errors import Conflict, Forbidden, ValidationFailed
from residents_app.works.acceptance import services

PNG = (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
       b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef\x00\x00\x00\x00IEND\xaeB`\x82")


def _sign_all_paper(aw, acc, now, *, skip=()):
    for p in acc.participants:
        if p.user_id is None and p.role not in skip:
            services.enter_paper_signature(acc, p.id, data=PNG, filename="sig.png", content_type="image/png",
                                           opinion="同意", user=aw.w.committee, now=now)
            services.confirm_paper_signature(acc, p.id, user=aw.second, now=now)


def test_stays_open_until_the_last_signature_and_the_last_item(aw):
    acc = aw.open()
    now = aw.w.now
    assert [p.role for p in acc.participants] == ["builder", "street", "community", "owners", "designer",
                                                  "contractor", "supervisor", "utility"]
    assert acc.reasons_not_passed() == ["还有 8 方未签字：" + "、".join(p.display for p in acc.participants)]
    issue = services.add_issue(acc, description="3 幢屋面局部渗水", owner="市政建设公司", due_on=date(2026, 9, 10),
                               user=aw.w.committee, now=now)
    assert issue.number == 1 and issue.status == "open"
    services.sign_online(acc, acc.participants[0].id, user=aw.parties["builder"], opinion="同意", now=now)
    _sign_all_paper(aw, acc, now)
    assert acc.status == "open"
    assert acc.reasons_not_passed() == ["还有 1 方未签字：街道办事处（幸福街道办事处 李街）",
                                        "还有 1 项整改未完成：#1"]
    later = now + timedelta(days=3)
    services.close_issue(acc, issue.id, note="已重做防水层，复查合格", user=aw.w.committee, now=later)
    assert acc.status == "open"  # the 8th has not signed yet
    last = now + timedelta(days=4)
    services.sign_online(acc, acc.participants[1].id, user=aw.parties["street"], opinion="", now=last)
    assert acc.status == "passed" and acc.passed_at == last
    assert acc.reasons_not_passed() == []
    kinds = [e.kind for e in aw.db.session.query(AuditEvent).filter_by(chain=aw.w.estate.id).order_by(AuditEvent.seq)]
    assert kinds.count("acceptance.signed") == 8
    assert kinds[-1] == "acceptance.passed"
    with pytest.raises(Conflict, match="验收已通过"):
        services.add_issue(acc, description="又一项", owner="x", due_on=date(2026, 9, 20), user=aw.w.committee,
                           now=last)


def test_the_last_item_closed_after_every_signature_passes_it(aw):
    acc = aw.open(online=())
    issue = services.add_issue(acc, description="路灯不亮", owner="供电", due_on=date(2026, 9, 1),
                               user=aw.w.committee, now=aw.w.now)
    _sign_all_paper(aw, acc, aw.w.now)
    assert acc.status == "open" and acc.reasons_not_passed() == ["还有 1 项整改未完成：#1"]
    services.close_issue(acc, issue.id, note="已更换灯具", user=aw.w.committee, now=aw.w.now)
    assert acc.status == "passed"


def test_online_signature_only_by_the_linked_user(aw):
    acc = aw.open()
    with pytest.raises(Conflict, match="只有该单位登记的签字人本人") as e:
        services.sign_online(acc, acc.participants[0].id, user=aw.parties["street"], opinion="", now=aw.w.now)
    assert e.value.code == "not_the_signatory"
    with pytest.raises(Conflict, match="只有该单位登记的签字人本人"):  # a paper participant has no online signer
        services.sign_online(acc, acc.participants[2].id, user=aw.w.committee, opinion="", now=aw.w.now)
    services.sign_online(acc, acc.participants[0].id, user=aw.parties["builder"], opinion="", now=aw.w.now)
    with pytest.raises(Conflict, match="已签字"):
        services.sign_online(acc, acc.participants[0].id, user=aw.parties["builder"], opinion="", now=aw.w.now)


def test_paper_scan_needs_a_second_member(aw):
    acc = aw.open()
    p = acc.participants[2]
    with pytest.raises(Conflict, match="还没有录入纸质签字扫描件"):
        services.confirm_paper_signature(acc, p.id, user=aw.second, now=aw.w.now)
    services.enter_paper_signature(acc, p.id, data=PNG, filename="s.png", content_type="image/png", opinion="",
                                   user=aw.w.committee, now=aw.w.now)
    assert p.awaits_confirmation and not p.is_signed
    with pytest.raises(Conflict, match="录入人不能自己确认") as e:
        services.confirm_paper_signature(acc, p.id, user=aw.w.committee, now=aw.w.now)
    assert e.value.code == "second_person_required"
    with pytest.raises(Forbidden, match="业委会"):
        services.confirm_paper_signature(acc, p.id, user=aw.parties["street"], now=aw.w.now)
    services.confirm_paper_signature(acc, p.id, user=aw.second, now=aw.w.now)
    assert p.is_signed and p.signature_method == "paper" and p.confirmed_by_id == aw.second.id
    assert len(p.scan_sha256) == 64


def test_required_parties_and_validation(aw):
    rows = [services.ParticipantInput(role="builder", organisation="城建中心", name="王"),
            services.ParticipantInput(role="", organisation="", name="")]
    acc = services.open_acceptance(aw.w.estate, title="验收", held_on=date(2026, 9, 1), place="", participants=rows,
                                   user=aw.w.committee, now=aw.w.now)
    assert acc.reasons_not_passed()[0] == "缺少参加验收的单位：业主委员会/业主代表、设计单位、施工单位、监理单位"
    with pytest.raises(ValidationFailed) as e:
        services.open_acceptance(aw.w.estate, title="", held_on=date(2026, 9, 1), place="",
                                 participants=[services.ParticipantInput(role="nobody", organisation="x", name="y")],
                                 user=aw.w.committee, now=aw.w.now)
    assert e.value.errors == {"title": "请填写验收名称", "p1.role": "未知的参加单位类别",
                              "participants": "请至少登记一个参加验收的单位"}


def test_issue_due_date_bounds(aw):
    acc = aw.open()
    today = date(2026, 9, 1)  # the `now` fixture in Beijing
    with pytest.raises(ValidationFailed, match="不能早于今天"):
        services.add_issue(acc, description="x", owner="y", due_on=today - timedelta(days=1), user=aw.w.committee,
                           now=aw.w.now)
    services.add_issue(acc, description="x", owner="y", due_on=today, user=aw.w.committee, now=aw.w.now)
    services.add_issue(acc, description="x", owner="y", due_on=today + timedelta(days=366), user=aw.w.committee,
                       now=aw.w.now)
    with pytest.raises(ValidationFailed, match="不能超过一年"):
        services.add_issue(acc, description="x", owner="y", due_on=today + timedelta(days=367), user=aw.w.committee,
                           now=aw.w.now)
    assert acc.issues[0].is_overdue(today + timedelta(days=1)) and not acc.issues[0].is_overdue(today)
    with pytest.raises(Conflict, match="请写明整改结果"):
        services.close_issue(acc, acc.issues[0].id, note=" ", user=aw.w.committee, now=aw.w.now)


def test_publicity_only_after_passing(aw):
    from residents_app.publicity.models import Publicity

    acc = aw.open(online=())
    with pytest.raises(ValidationFailed, match="验收尚未通过"):
        services.post_acceptance_publicity(acc, aw.w.estate, posted_on=date(2026, 9, 1), user=aw.w.committee,
                                           now=aw.w.now)
    _sign_all_paper(aw, acc, aw.w.now)
    pub = services.post_acceptance_publicity(acc, aw.w.estate, posted_on=date(2026, 9, 1), user=aw.w.committee,
                                             now=aw.w.now)
    aw.db.session.commit()
    pub = aw.db.session.get(Publicity, pub.id)
    assert pub.subject_type == "acceptance" and pub.subject_label == "竣工验收"
    assert pub.outcome_lines[:3] == ["验收：竣工共同验收（2026-09-01）", "结论：验收通过",
                                     "建设单位：幸福街道城建中心（纸质签字（扫描件））"]


def test_record_pdf_has_every_signature(aw, client, login_as):
    import subprocess

    acc = aw.open()
    services.sign_online(acc, acc.participants[0].id, user=aw.parties["builder"], opinion="同意验收", now=aw.w.now)
    aw.db.session.commit()
    login_as(client, aw.w.committee)
    resp = client.get(f"/acceptance/{acc.id}/record.pdf")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    text = subprocess.run(["pdftotext", "-", "-"], input=resp.data, capture_output=True, check=True).stdout.decode()
    flat = "".join(text.split())
    assert "竣工共同验收记录" in flat and "在线签字账号" + aw.parties["builder"].username in flat
    assert "2026-09-0110:00同意验收" in flat
    assert text.count("未签字") >= 7


def test_pages_sign_and_scan_over_http(aw, client, login_as):
    acc = aw.open()
    login_as(client, aw.parties["builder"])
    page = client.get(f"/acceptance/{acc.id}").get_data(as_text=True)
    assert "0 / 8 已签字" in page and "在线签字" in page
    resp = client.post(f"/acceptance/{acc.id}/participants/{acc.participants[0].id}/sign", data={"opinion": "同意"})
    assert resp.status_code == 302
    page = client.get(f"/acceptance/{acc.id}").get_data(as_text=True)
    assert "1 / 8 已签字" in page
    login_as(client, aw.w.committee)
    p = acc.participants[2]
    assert client.get(f"/acceptance/{acc.id}/participants/{p.id}/scan").status_code == 404
    resp = client.post(f"/acceptance/{acc.id}/participants/{p.id}/scan",
                       data={"scan": (io.BytesIO(b"MZ\x90\x00not a scan"), "sig.png")},
                       content_type="multipart/form-data")
    assert resp.status_code == 422
    resp = client.post(f"/acceptance/{acc.id}/participants/{p.id}/scan",
                       data={"scan": (io.BytesIO(PNG), "sig.png")}, content_type="multipart/form-data")
    assert resp.status_code == 302
    assert client.get(f"/acceptance/{acc.id}/participants/{p.id}/scan").data == PNG
    resp = client.post(f"/acceptance/{acc.id}/participants/{p.id}/confirm")
    assert resp.status_code == 409
    login_as(client, aw.second)
    assert client.post(f"/acceptance/{acc.id}/participants/{p.id}/confirm").status_code == 302
    data = client.get(f"/api/works/acceptance/{acc.id}").get_json()
    assert [x["signed"] for x in data["participants"]] == [True, False, True, False, False, False, False, False]
    assert data["participants"][2]["method"] == "paper"


def test_another_estate_sees_404(aw, client, login_as, factory):
    acc = aw.open()
    other = factory.estate()
    stranger = factory.user("committee", estate=other)
    aw.db.session.commit()
    login_as(client, stranger)
    assert client.get(f"/acceptance/{acc.id}").status_code == 404
    assert client.get(f"/acceptance/{acc.id}/record.pdf").status_code == 404
    assert client.get(f"/api/works/acceptance/{acc.id}").status_code == 404


def test_api_sign_and_refusal_shape(aw, client, login_as):
    acc = aw.open()
    login_as(client, aw.parties["street"])
    resp = client.post(f"/api/works/acceptance/{acc.id}/participants/{acc.participants[0].id}/sign", json={})
    assert resp.status_code == 409
    assert resp.get_json()["code"] == "not_the_signatory"
    resp = client.post(f"/api/works/acceptance/{acc.id}/participants/{acc.participants[1].id}/sign",
                       json={"opinion": "同意"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "open" and body["participants"][1]["signed"] is True
    assert body["reasons"] == ["还有 7 方未签字：" + "、".join(
        p.display for p in acc.participants if p.role != "street")]


def test_the_project_timeline_shows_the_acceptance_from_open_to_passed(aw):
    from residents_app.works.construction.timeline import project_timeline

    def stage(now):
        (s,) = [s for s in project_timeline(aw.w.estate.id, now) if s.key == "acceptance"]
        return s.state, s.on, s.note

    assert stage(aw.w.now)[0] == "pending"
    acc = aw.open(online=())
    assert stage(aw.w.now) == ("current", acc.held_on, f"{acc.title}：待全体签字并整改完毕")
    _sign_all_paper(aw, acc, aw.w.now)
    assert acc.status == "passed"
    assert stage(aw.w.now) == ("done", date(2026, 9, 1), acc.title)  # passed 2026-09-01 10:00 Beijing
