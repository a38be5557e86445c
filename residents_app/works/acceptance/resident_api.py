"""The resident API of the evaluation (/api/r/evaluation..., resident session): the published evaluation (问效) of my
estate's project, totals to two places, with its satisfaction survey's summary; and the residents' satisfaction
survey itself, a survey round (kind "satisfaction") answered through the rounds' own cast (the same checks, the
same ballot, receipt and audit entry as the phone page /r/rounds/<id>).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import request
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import RAISE, Schema, fields, validate

from residents_app.audit import sealer
from residents_app.auth.resident import Resident
from residents_app.auth.resident_api import resident_or_401
from residents_app.core import evaluation as ev
from residents_app.db import utcnow
from residents_app.errors import NotFound
from residents_app.extensions import db
from residents_app.rounds import ballots
from residents_app.rounds import services as rounds_svc
from residents_app.rounds.models import Round
from residents_app.works.acceptance import evaluation as svc
from residents_app.works.acceptance.models import Evaluation

api_bp = ApiBlueprint("evaluation_resident_api", __name__, url_prefix="/api/r",
                      description="住户（小程序）：改造项目的问效评价结果与居民满意度调查")


@api_bp.before_request
def _resident_first():
    """No resident session: 401 before the body is even read (the mini-program then asks for the identity check)."""
    resident_or_401()

SURVEY_KIND = "satisfaction"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# ---- schemas ---------------------------------------------------------------------------------------------------

class AspectSchema(Schema):
    aspect = fields.String(metadata={"example": "工程质量"})
    score = fields.String(metadata={"description": "得分（两位小数）", "example": "8.75"})
    points = fields.String(metadata={"description": "满分", "example": "10"})


class GroupSchema(Schema):
    group = fields.String(metadata={"description": "resident 居民代表、community 社区、street 街道办事处",
                                    "example": "resident"})
    label = fields.String(metadata={"example": "居民代表"})
    weight_pct = fields.Integer(metadata={"example": 50})
    evaluators = fields.Integer(metadata={"description": "评价人数", "example": 3})


class EvaluationResultSchema(Schema):
    id = fields.Integer(metadata={"example": 2})
    title = fields.String(metadata={"example": "老旧小区改造问效评价"})
    published_at = fields.String(metadata={"example": "2027-05-10T02:00:00+00:00"})
    total = fields.String(metadata={"description": "总分（两位小数，四舍五入）", "example": "87.35"})
    total_points = fields.String(metadata={"example": "100"})
    grade = fields.String(metadata={"example": "良好"})
    groups = fields.List(fields.Nested(GroupSchema))
    aspects = fields.List(fields.Nested(AspectSchema))


class SurveyOptionSchema(Schema):
    key = fields.String(metadata={"example": "agree"})
    label = fields.String(metadata={"example": "满意"})


class MyAnswerSchema(Schema):
    choice = fields.String(metadata={"example": "agree"})
    choice_label = fields.String(metadata={"example": "满意"})
    rating = fields.Integer(allow_none=True, metadata={"example": 5})
    cast_at = fields.String(metadata={"example": "2026-09-01T02:00:00+00:00"})
    receipt_code = fields.String(allow_none=True, metadata={"example": "K7QF-2M9X-PL3D"})


class SurveyToAnswerSchema(Schema):
    round_id = fields.Integer(metadata={"example": 9})
    title = fields.String(metadata={"example": "改造满意度调查"})
    opens_at = fields.String(metadata={"example": "2026-09-01T01:00:00+00:00"})
    closes_at = fields.String(metadata={"example": "2026-09-15T10:00:00+00:00"})
    options = fields.List(fields.Nested(SurveyOptionSchema))
    rating = fields.String(metadata={"description": "可同时打分（1 到 5 分，5 分最满意，可不填）",
                                     "example": "评分（1 到 5 分，5 分最满意）"})
    my_answer = fields.Nested(MyAnswerSchema, allow_none=True, metadata={"description": "本户已提交的答复（可修改）"})


class EvaluationSchema(Schema):
    evaluation = fields.Nested(EvaluationResultSchema, allow_none=True,
                               metadata={"description": "已公布的评价结果；还没有公布为 null"})
    survey = fields.Dict(allow_none=True, metadata={
        "description": "评价所附居民满意度调查的汇总（调查截止后）：应答率、各项分布、平均分",
        "example": {"round_id": 9, "title": "改造满意度调查", "total_count": 3, "response_count": 2,
                    "response_rate": "66.66%", "questions": [
                        {"key": "choice", "title": "总体满意度", "responses": 2, "distribution": [
                            {"key": "agree", "label": "满意", "count": 2, "share": "100.00%"}]},
                        {"key": "rating", "title": "评分（1 到 5 分，5 分最满意）", "responses": 2, "average": "4.50",
                         "distribution": [{"score": 5, "count": 1, "share": "50.00%"}]}]}})
    survey_to_answer = fields.Nested(SurveyToAnswerSchema, allow_none=True,
                                     metadata={"description": "本户可以答复的满意度调查；没有为 null"})


class SurveyAnswerIn(Schema):
    class Meta:
        unknown = RAISE

    round_id = fields.Integer(required=True, strict=True, metadata={"example": 9})
    choice = fields.String(required=True, metadata={"description": "agree 满意、disagree 不满意、abstain 说不清",
                                                    "example": "agree"})
    rating = fields.Integer(load_default=None, allow_none=True, strict=True, metadata={"example": 5})
    comment = fields.String(load_default="", validate=validate.Length(max=500), metadata={"example": "楼道亮堂多了"})


class SurveyAnswerSchema(MyAnswerSchema):
    round_id = fields.Integer(metadata={"example": 9})


# ---- helpers ---------------------------------------------------------------------------------------------------

def published_evaluation(estate_id: int) -> Evaluation | None:
    return db.session.execute(sa.select(Evaluation).where(
        Evaluation.estate_id == estate_id, Evaluation.status == "published")
        .order_by(Evaluation.published_at.desc(), Evaluation.id.desc()).limit(1)).scalar_one_or_none()


def _result_json(e: Evaluation) -> dict:
    r = svc.result_of(e)
    return {"id": e.id, "title": e.title, "published_at": _iso(e.published_at), "total": r.total_text,
            "total_points": str(r.total_points), "grade": r.grade,
            "groups": [{"group": g, "label": ev.GROUP_LABELS[g], "weight_pct": int(e.group_weights[g]),
                        "evaluators": sum(1 for s in e.sheets if s.evaluator_group == g)} for g in ev.GROUPS],
            "aspects": [{"aspect": a, "score": ev.two_places(s), "points": str(p)} for a, s, p in r.aspects]}


def _my_answer(rnd: Round, unit_id: int) -> dict | None:
    b = ballots.current_ballot_for(rnd.id, unit_id)
    if b is None:
        return None
    return {"choice": b.choice, "choice_label": rnd.option_labels.get(b.choice, b.choice), "rating": b.rating,
            "cast_at": _iso(b.cast_at), "receipt_code": b.receipt_code}


def survey_to_answer(resident: Resident, now: datetime, evaluation: Evaluation | None) -> Round | None:
    """The satisfaction survey open now for my unit (on its roll): the one the evaluation names if it is open, else
    the one closing first."""
    open_ = [r for r in rounds_svc.open_rounds_for_unit(resident.unit.id, now) if r.kind == SURVEY_KIND]
    named = [r for r in open_ if evaluation is not None and r.id == evaluation.satisfaction_round_id]
    return (named or open_ or [None])[0]


def _survey_round_of_estate(round_id: int, estate_id: int) -> Round:
    rnd = db.session.get(Round, round_id)
    if rnd is None or rnd.estate_id != estate_id or rnd.kind != SURVEY_KIND:
        raise NotFound("找不到本小区的该满意度调查", code="no_survey")
    return rnd


# ---- routes ----------------------------------------------------------------------------------------------------

@api_bp.route("/evaluation", methods=["GET"])
@api_bp.response(200, EvaluationSchema)
def evaluation():
    """The published evaluation of my estate's project (totals to two places) with its satisfaction survey's summary,
    and the satisfaction survey my unit can answer now."""
    resident = resident_or_401()
    now = utcnow()
    e = published_evaluation(resident.unit.estate_id)
    rnd = survey_to_answer(resident, now, e)
    answer = None
    if rnd is not None:
        answer = {"round_id": rnd.id, "title": rnd.title, "opens_at": _iso(rnd.opens_at),
                  "closes_at": _iso(rnd.closes_at),
                  "options": [{"key": o["key"], "label": o["label"]} for o in rnd.options or []],
                  "rating": "评分（1 到 5 分，5 分最满意）", "my_answer": _my_answer(rnd, resident.unit.id)}
    return {"evaluation": _result_json(e) if e else None, "survey": svc.survey_of(e) if e else None,
            "survey_to_answer": answer}


@api_bp.route("/evaluation/survey", methods=["POST"])
@api_bp.arguments(SurveyAnswerIn)
@api_bp.response(201, SurveyAnswerSchema)
def survey_answer(data):
    """Answer (or change the answer to) my estate's satisfaction survey: a choice, a score from 1 to 5 if you like,
    and a comment. Counted like any online ballot of the unit, with a receipt code."""
    resident = resident_or_401()
    rnd = _survey_round_of_estate(data["round_id"], resident.unit.estate_id)
    now = utcnow()
    ballot = ballots.cast_ballot(rnd.id, resident.unit.id, resident.owner.id, data["choice"], now, items=[],
                                 rating=data["rating"], comment=data["comment"], defer_audit=True,
                                 client=ballots.client_fingerprint(request.remote_addr,
                                                                   request.headers.get("User-Agent")))
    db.session.commit()
    sealer.after_commit()
    return {"round_id": rnd.id, "choice": ballot.choice, "choice_label": rnd.option_labels[ballot.choice],
            "rating": ballot.rating, "cast_at": _iso(ballot.cast_at), "receipt_code": ballot.receipt_code}
