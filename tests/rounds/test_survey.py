"""Satisfaction and evaluation rounds are surveys (issue 13 item 3): response rate, per question the distribution
and the average score; no "passed" / "failed" / 通过 / 未通过 on the round page, in the API, in the PDF, on the
dashboard or the desk.

The estate: 1幢 101, 102, 103, 2幢 201, 202: 5 households. Four answer: 满意 5 分, 满意 4 分, 不满意 2 分,
说不清 without a score.
"""

from __future__ import annotations

import json
import subprocess
from datetime import timedelta

from residents_app.extensions import db
from residents_app.rounds import ballots
from residents_app.rounds import services as svc

PASS_WORDS = ("通过", "passed", "failed", "can_still_pass")


def _answer(rnd, units, now):
    for label, choice, rating in (("1幢-101", "agree", 5), ("1幢-102", "agree", 4), ("1幢-103", "disagree", 2),
                                  ("2幢-201", "abstain", None)):
        unit = units[label]
        ballots.cast_ballot(rnd.id, unit.id, unit.owners[0].id, choice, now + timedelta(hours=1), rating=rating)
    db.session.commit()


def _no_pass_words(text: str, where: str):
    for word in PASS_WORDS:
        assert word not in text, f"{where}: {word}"


EXPECTED_SURVEY = {
    "total_count": 5, "response_count": 4, "response_rate": "80.00%",
    "questions": [
        {"key": "choice", "title": "总体满意度", "responses": 4, "distribution": [
            {"key": "agree", "label": "满意", "count": 2, "share": "50.00%"},
            {"key": "disagree", "label": "不满意", "count": 1, "share": "25.00%"},
            {"key": "abstain", "label": "说不清", "count": 1, "share": "25.00%"}]},
        {"key": "rating", "title": "评分（1 到 5 分，5 分最满意）", "responses": 3, "average": "3.67",
         "distribution": [{"score": 5, "count": 1, "share": "33.33%"}, {"score": 4, "count": 1, "share": "33.33%"},
                          {"score": 3, "count": 0, "share": "0.00%"}, {"score": 2, "count": 1, "share": "33.33%"},
                          {"score": 1, "count": 0, "share": "0.00%"}]},
    ],
}


def test_a_satisfaction_round_reports_a_survey_and_never_a_verdict(client, login_as, committee, make_round, units,
                                                                  now, tmp_path):
    rnd = make_round(kind="satisfaction", title="改造满意度评价")
    _answer(rnd, units, now)
    login_as(client, committee)

    # While open: the page, the API, the dashboard card.
    html = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    for expected in ('应答 <strong id="survey-responses">4</strong> / 5 户，'
                     '应答率 <strong id="survey-rate">80.00%</strong>',
                     '平均分 <strong id="survey-average">3.67</strong>',
                     "<td>满意</td><td class=\"num\">2</td><td class=\"num\">50.00%</td>",
                     "<td>2 分</td><td class=\"num\">1</td><td class=\"num\">33.33%</td>",
                     "问卷调查（满意度评价），不是表决事项"):
        assert expected in html, expected
    _no_pass_words(html, "open page")
    live = client.get(f"/api/rounds/{rnd.id}/tally").get_json()
    assert live["survey"] == EXPECTED_SURVEY
    _no_pass_words(json.dumps(live, ensure_ascii=False), "open API")
    board = client.get(f"/estates/{rnd.estate_id}/dashboard").get_data(as_text=True)
    card = board[board.index(f'id="round-{rnd.id}"'):]
    card = card[:card.index("</article>")]
    assert "问卷调查：应答率 80.00%，平均分 3.67" in card
    _no_pass_words(card, "dashboard card")

    # Closed: the stored result, the page, the API, the PDF, the desk.
    assert svc.close_round(rnd.id, rnd.closes_at, None)
    db.session.commit()
    outcome = svc.round_outcome(rnd.id)
    assert "passed" not in outcome
    assert outcome["tally"]["survey"] == EXPECTED_SURVEY
    html = client.get(f"/rounds/{rnd.id}").get_data(as_text=True)
    assert "调查已结束" in html and "最终结果" not in html
    _no_pass_words(html, "closed page")
    closed = client.get(f"/api/rounds/{rnd.id}/tally").get_json()
    assert closed["survey"] == EXPECTED_SURVEY
    _no_pass_words(json.dumps(closed, ensure_ascii=False), "closed API")

    resp = client.get(f"/rounds/{rnd.id}/report.pdf")
    assert resp.status_code == 200
    path = tmp_path / "survey.pdf"
    path.write_bytes(resp.data)
    text = " ".join(subprocess.run(["pdftotext", "-enc", "UTF-8", "-layout", str(path), "-"], capture_output=True,
                                   check=True).stdout.decode().split())
    for expected in ("改造满意度评价 调查结果报告", "应答 4 / 5 户，应答率 80.00%",
                     "评分（1 到 5 分，5 分最满意）：3 份，平均分 3.67",
                     "二、调查性质", "三、调查结果"):
        assert expected in text, expected
    _no_pass_words(text, "PDF")
    assert "表决结果" not in text

    desk = client.get(f"/rounds/{rnd.id}/verify").get_data(as_text=True)
    assert 'id="survey-rate">80.00%</strong>' in desk
    _no_pass_words(desk, "desk")
