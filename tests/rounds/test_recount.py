"""The tally checked against the log (issue 13, item 12): `flask audit verify` and the desk recount closed rounds."""

from __future__ import annotations

import ast
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from residents_app.errors import Conflict
from residents_app.extensions import db as _db
from residents_app.oversight import services as oversight_svc
from residents_app.oversight.report import render_round_report
from residents_app.oversight.round_facts import round_report_data
from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import services as svc
from residents_app.rounds.models import CurrentBallot, Round, RoundResult
from residents_app.rounds.recount import recount_closed_rounds, recount_round
from tests.voted import build_open_round

TITLE = "外立面及屋面改造意愿征求"


def verify(app, *args):
    return app.test_cli_runner().invoke(args=["audit", "verify", *args])


def counted_id(round_id, unit_id):
    return _db.session.get(CurrentBallot, (round_id, unit_id)).ballot_id


def test_an_edited_current_ballot_is_named_by_audit_verify(app, db, voted_round):
    unit_id = voted_round.unit_ids["1幢-101"]
    ballot_id = counted_id(voted_round.id, unit_id)
    clean = verify(app)
    assert clean.exit_code == 0, clean.output
    assert "OK    数据核对：各表与日志一致（已结束的表决按日志重新计票，结果相符）" in clean.output

    # The hash chain cannot see this: current_ballot is not part of the log.
    db.session.execute(sa.text("UPDATE current_ballot SET choice = 'disagree' WHERE round_id = :r AND unit_id = :u"),
                       {"r": voted_round.id, "u": unit_id})
    result = verify(app)
    assert result.exit_code == 1, result.output
    assert f"OK    链 {voted_round.estate_id}（VR1 {voted_round.estate_name}）" in result.output  # the chain is intact
    assert (f"BROKEN 链 {voted_round.estate_id}（VR1 {voted_round.estate_name}）表决 #{voted_round.id}「{TITLE}」："
            f"房屋 1幢-101：日志中计入的是第 {ballot_id} 号票 “同意改造”，current_ballot 却是第 {ballot_id} 号票 "
            "“不同意改造”（current_ballot_mismatch）") in result.output
    # The stored counters (issue 19) still hold what was cast, so they disagree with the edited row too.
    counters = (f"BROKEN 链 {voted_round.estate_id}（VR1 {voted_round.estate_name}）表决 #{voted_round.id}"
                f"「{TITLE}」：1幢 ")
    assert (counters + "“同意改造”：计数器为 3 户、269.30 ㎡，按选票重新计数为 2 户、180.80 ㎡"
            "（round_count_mismatch）") in result.output
    assert (counters + "“不同意改造”：计数器为 1 户、92.30 ㎡，按选票重新计数为 2 户、180.80 ㎡"
            "（round_count_mismatch）") in result.output
    assert result.output.count("BROKEN") == 3
    assert "校验失败：3 处数据与日志不一致" in result.output
    # With --estate the recount covers that estate's rounds.
    assert verify(app, "--estate", "VR1").exit_code == 1


def test_other_edits_are_named_too(db, voted_round):
    rnd = db.session.get(Round, voted_round.id)
    assert recount_round(rnd) == []
    u101, u202 = voted_round.unit_ids["1幢-101"], voted_round.unit_ids["1幢-202"]
    b101 = counted_id(rnd.id, u101)
    db.session.execute(sa.text("UPDATE ballot SET choice = 'disagree' WHERE id = :b"), {"b": b101})
    db.session.execute(sa.text("UPDATE round_result SET passed = :f WHERE round_id = :r"),
                       {"f": False, "r": rnd.id})
    db.session.execute(sa.text("DELETE FROM current_ballot WHERE round_id = :r AND unit_id = :u"),
                       {"r": rnd.id, "u": u202})
    db.session.expire_all()
    rnd = db.session.get(Round, voted_round.id)
    problems = recount_round(rnd)
    b202 = db.session.execute(sa.text("SELECT id FROM ballot WHERE unit_id = :u AND status = 'counted'"),
                              {"u": u202}).scalar_one()
    assert [(p.code, p.message) for p in problems] == [
        ("current_ballot_missing",
         f"房屋 1幢-202：日志中计入的是第 {b202} 号票 “不同意改造”，current_ballot 中却没有该户"),
        ("ballot_mismatch",
         f"房屋 1幢-101：日志中第 {b101} 号票为 “同意改造”（计入），ballot 表中为 “不同意改造”（已计入）"),
        ("result_mismatch", "保存的结果为“未通过”，按日志重新计票为“通过”"),
    ]
    assert {p.subject for p in problems} == {f"表决 #{rnd.id}「{TITLE}」"}
    assert recount_closed_rounds([voted_round.estate_id + 999]) == []


def test_stored_figures_and_agreeing_units_are_recounted(db, voted_round):
    db.session.execute(sa.text("UPDATE round_result SET agreeing_unit_labels = :l WHERE round_id = :r"),
                       {"l": '["1幢-101", "1幢-102", "1幢-201", "1幢-202"]', "r": voted_round.id})
    rnd = db.session.get(Round, voted_round.id)
    result = db.session.get(RoundResult, rnd.id)
    tally = dict(result.tally)
    tally["figures"] = {**tally["figures"], "agree_count": 5, "agree_area": "481.60"}
    result.tally = tally
    db.session.flush()
    assert [(p.code, p.message) for p in recount_round(rnd)] == [
        ("result_mismatch", "保存的结果 agree_area = 481.60，按日志重新计票为 389.30"),
        ("result_mismatch", "保存的结果 agree_count = 5，按日志重新计票为 4"),
        ("agreeing_units_mismatch",
         "保存的同意房号与日志不符（日志中同意而结果未列：2幢-101；结果列出而日志中未同意：1幢-202）"),
    ]


def test_conflicts_resolved_either_way_recount_clean(db, make_round, units, now, committee, committee2):
    rnd = make_round()
    owner = {label: u.ownerships[0].owner_id for label, u in units.items()}
    h = timedelta(hours=1)
    for label, keep in (("1幢-101", "paper"), ("1幢-102", "online")):
        u = units[label]
        ballots_svc.cast_ballot(rnd.id, u.id, owner[label], "disagree", now + h)
        scan = ballots_svc.store_file(rnd.id, "paper_scan", b"%PDF-1.4 " + label.encode(), "application/pdf", now,
                                      committee)
        paper = ballots_svc.enter_paper_ballot(rnd.id, u.id, "agree", scan, now + 2 * h, committee)
        ballots_svc.confirm_paper_ballot(paper.id, now + 3 * h, committee2)
        ballots_svc.resolve_conflict(paper.id, keep, "业主到场说明", now + 4 * h, committee2)
    u = units["2幢-201"]
    evidence = ballots_svc.store_file(rnd.id, "mandate", b"%PDF-1.4 m", "application/pdf", now, committee)
    m = ballots_svc.record_mandate(rnd.id, u.id, owner["2幢-201"], "李四", "", evidence, now + h, committee)
    proxy = ballots_svc.cast_proxy_ballot(m.id, "agree", now + h, committee)
    ballots_svc.confirm_proxy_ballot(proxy.id, now + 2 * h, committee2)
    ballots_svc.cast_ballot(rnd.id, u.id, owner["2幢-201"], "disagree", now + 5 * h)  # the owner changes it
    assert svc.close_round(rnd.id, rnd.closes_at, None)
    assert recount_round(rnd) == []
    f = db.session.get(RoundResult,
                       rnd.id).tally["figures"]
    assert (f["voted_count"], f["agree_count"], f["agree_area"]) == (3, 1, "100.00")


def test_the_desk_shows_the_recount(client, login_as, db, voted_round):
    login_as(client, voted_round.street)
    html = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
    assert "按日志中的每一张计入票重新计票：与投票记录和保存的结果一致。" in html
    unit_id = voted_round.unit_ids["1幢-202"]
    ballot_id = counted_id(voted_round.id, unit_id)
    db.session.execute(sa.text("UPDATE current_ballot SET choice = 'agree' WHERE round_id = :r AND unit_id = :u"),
                       {"r": voted_round.id, "u": unit_id})
    db.session.commit()
    html = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
    assert "按日志重新计票，与数据库不一致（1 处），不能核验通过：" in html
    assert (f"<li>房屋 1幢-202：日志中计入的是第 {ballot_id} 号票 “不同意改造”，current_ballot 却是第 {ballot_id} 号票 "
            "“同意改造”</li>") in html


def test_sign_off_refuses_a_tally_that_does_not_match_the_log(db, voted_round, now):
    rnd = db.session.get(Round, voted_round.id)
    db.session.execute(sa.text("UPDATE current_ballot SET choice = 'agree' WHERE round_id = :r AND unit_id = :u"),
                       {"r": rnd.id, "u": voted_round.unit_ids["1幢-202"]})
    for decision in ("verified", "confirmed_failed"):
        with pytest.raises(Conflict) as exc:
            oversight_svc.sign_off(rnd, decision=decision, comment="", user=voted_round.street,
                                   now=voted_round.closes + timedelta(days=1))
        assert (exc.value.status, exc.value.code) == (409, "tally_mismatch")
    assert "房屋 1幢-202：日志中计入的是第" in exc.value.message
    # Returning it to the committee stays possible.
    ev = oversight_svc.sign_off(rnd, decision="returned", comment="计票与日志不符，请说明",
                                user=voted_round.street, now=voted_round.closes + timedelta(days=1))
    assert ev.data["decision"] == "returned"


def test_a_failed_round_cannot_be_signed_off_as_verified(db, voted_round):
    rnd = db.session.get(Round, voted_round.id)
    later = voted_round.closes + timedelta(days=1)
    with pytest.raises(Conflict) as exc:
        oversight_svc.sign_off(rnd, decision="confirmed_failed", comment="", user=voted_round.street, now=later)
    assert exc.value.code == "round_not_failed"
    # A failed round: 1 of 6 households agrees (build_open_round).
    failed = build_open_round(voted_round, voted_round.closes, voted_round.closes + timedelta(days=3),
                              title="失败的表决")
    assert svc.close_round(failed.id, voted_round.closes + timedelta(days=3), None)
    assert db.session.get(RoundResult,
                          failed.id).passed is False
    with pytest.raises(Conflict) as exc:
        oversight_svc.sign_off(failed, decision="verified", comment="", user=voted_round.street, now=later)
    assert (exc.value.status, exc.value.code) == (409, "round_failed")
    assert exc.value.message == "该表决未通过，不能核验为“核验通过”；如核对无误，请选择“核验属实（未通过）”"
    ev = oversight_svc.sign_off(failed, decision="confirmed_failed", comment="", user=voted_round.street, now=later)
    assert (ev.data["decision"], ev.data["passed"]) == ("confirmed_failed", False)


def test_the_desk_offers_confirmed_failed_for_a_failed_round(client, login_as, db, voted_round):
    failed = build_open_round(voted_round, voted_round.closes, voted_round.closes + timedelta(days=3),
                              title="失败的表决")
    assert svc.close_round(failed.id, voted_round.closes + timedelta(days=3), None)
    db.session.commit()
    login_as(client, voted_round.street)
    html = client.get(f"/rounds/{failed.id}/verify").get_data(as_text=True)
    assert 'value="confirmed_failed"' in html and 'value="verified"' not in html
    resp = client.post(f"/rounds/{failed.id}/verify", data={"decision": "verified"}, follow_redirects=True)
    assert "该表决未通过，不能核验为“核验通过”" in resp.get_data(as_text=True)
    resp = client.post(f"/rounds/{failed.id}/verify", data={"decision": "confirmed_failed"}, follow_redirects=True)
    assert "已记录核验意见：核验属实（未通过）" in resp.get_data(as_text=True)


def _pdf_text(pdf: bytes, tmp_path) -> str:
    import subprocess

    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-layout", str(path), "-"], capture_output=True, check=True)
    return "".join(out.stdout.decode("utf-8").split())  # no spaces: the PDF wraps long lines


def test_an_interim_pdf_never_prints_a_final_verdict(db, voted_round, tmp_path):
    opens = voted_round.closes + timedelta(days=1)
    rnd = build_open_round(voted_round, opens, opens + timedelta(days=7))
    data = round_report_data(rnd, opens + timedelta(hours=5))
    assert (data.final, data.passed) == (False, False)
    text = _pdf_text(render_round_report(data), tmp_path)
    assert "未通过" not in text and "表决结果：" not in text
    assert "中间结果（投票仍在进行，不是最终结果）：目前尚未达到通过条件，以截止后的最终计票为准" in text
    assert "投票中（中间结果，非最终结果）" in text
    # Once closed, the verdict is final.
    assert svc.close_round(rnd.id, opens + timedelta(days=7), None)
    closed = _pdf_text(render_round_report(round_report_data(rnd, opens + timedelta(days=8))), tmp_path)
    assert "表决结果：未通过" in closed and "中间结果" not in closed


def test_audit_imports_no_feature_above_it():
    root = Path(__file__).resolve().parents[2] / "residents_app" / "audit"
    above = ("plans", "rounds", "publicity", "funding", "works", "oversight", "ops", "scheduler")
    bad = []
    for path in sorted(root.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            bad += [f"{path.name}: {n}" for n in names
                    if any(n == f"residents_app.{p}" or n.startswith(f"residents_app.{p}.") for p in above)]
    assert bad == []
