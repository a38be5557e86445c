"""The resident API of rounds (/api/r/rounds, /api/r/receipts; resident session): the rounds of my unit's estate,
one round's question, rule and my ballot, casting, checking a receipt; the home section "open_rounds".

A resident only ever sees their own estate: a round of another estate (or a draft) answers 404 as an unknown id.
Casting takes the same checks and the same write as the H5 page (ballots.cast_ballot: window, roll, choice, the
owner; castpath's write), so the receipt and the audit entry are the same whichever way the owner voted.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from flask import request
from flask_smorest import Blueprint as ApiBlueprint
from marshmallow import RAISE, Schema, fields, validate

from residents_app.audit import sealer
from residents_app.auth.resident import Resident
from residents_app.auth.resident_api import register_home_section, resident_or_401
from residents_app.db import utcnow
from residents_app.errors import NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.formatting import to_local
from residents_app.rounds import ballots, outcomes
from residents_app.rounds import services as svc
from residents_app.rounds import tally as tally_svc
from residents_app.rounds.models import Ballot, RollEntry, Round, RoundResult
from residents_app.rounds.receipts import check_receipt, normalise_code
from residents_app.rounds.resident_views import rule_text

api_bp = ApiBlueprint("rounds_resident_api", __name__, url_prefix="/api/r",
                      description="住户（小程序）：本小区的表决、投票与回执核验")

_ISO = "2026-09-10T02:00:00+00:00"


@api_bp.before_request
def _signed_in():
    resident_or_401()  # before the body is read: without a session, 401 whatever was sent


# ---- schemas ---------------------------------------------------------------------------------------

class RoundOptionOutSchema(Schema):
    key = fields.String(metadata={"example": "agree"})
    label = fields.String(metadata={"example": "同意改造"})


class RoundMenuItemOutSchema(Schema):
    key = fields.String(metadata={"example": "roof"})
    label = fields.String(metadata={"example": "屋面防水"})
    category = fields.String(metadata={"example": "基础"})


class RuleSchema(Schema):
    label = fields.String(metadata={"example": "双三分之二（鹿城规则）"})
    description = fields.String(metadata={"example": "参与表决的专有部分面积和人数均占三分之二以上……"})
    counting = fields.String(metadata={"example": "按户计"})
    matter = fields.String(metadata={"example": "本事项属于《民法典》第二百七十八条第一款第（八）项"})


class MyBallotSchema(Schema):
    choice = fields.String(metadata={"example": "agree"})
    choice_label = fields.String(metadata={"example": "同意改造"})
    items = fields.List(fields.String(), metadata={"example": ["roof"]})
    channel = fields.String(metadata={"example": "online"})
    cast_at = fields.DateTime(metadata={"example": _ISO})
    receipt_code = fields.String(metadata={"description": "20 位回执码（可在“核验回执”中查询）",
                                           "example": "3f9a0c1d2e4b5a6978f0"})


class ResultsSchema(Schema):
    final = fields.Boolean(metadata={"description": "true：表决已结束，为最终结果；false：实时统计",
                                     "example": True})
    passed = fields.Boolean(allow_none=True, metadata={"description": "是否通过（问卷和统计中为 null）",
                                                       "example": True})
    label = fields.String(metadata={"example": "结果：通过"})
    figures = fields.Dict(keys=fields.String(), metadata={
        "description": "户数与面积（平方米，两位小数的字符串）",
        "example": {"total_count": 5, "total_area": "400.00", "voted_count": 4, "voted_area": "300.00",
                    "agree_count": 4, "agree_area": "300.00"}})


class RoundBriefSchema(Schema):
    id = fields.Integer(metadata={"example": 3})
    title = fields.String(metadata={"example": "加装电梯意见征询"})
    kind = fields.String(metadata={"example": "willingness"})
    kind_label = fields.String(metadata={"example": "改造意愿征询"})
    status = fields.String(metadata={"description": "open 进行中 / closed 已结束", "example": "open"})
    status_label = fields.String(metadata={"example": "进行中"})
    accepts_ballots = fields.Boolean(metadata={"description": "此刻能否投票（以服务器时间为准）", "example": True})
    opens_at = fields.DateTime(metadata={"example": "2026-09-01T02:00:00+00:00"})
    closes_at = fields.DateTime(metadata={"example": _ISO})
    on_roll = fields.Boolean(metadata={"description": "本户是否在本次表决的名册内", "example": True})
    my_ballot = fields.Nested(MyBallotSchema, allow_none=True)
    outcome_label = fields.String(allow_none=True, metadata={"description": "已结束的表决的结果（进行中为 null）",
                                                             "example": None})


class RoundDetailSchema(RoundBriefSchema):
    description = fields.String(metadata={"example": "拟对本小区屋面、外墙进行改造，请各户表明意愿。"})
    options = fields.List(fields.Nested(RoundOptionOutSchema))
    item_menu = fields.List(fields.Nested(RoundMenuItemOutSchema),
                            metadata={"description": "选择同意时可勾选的改造项目"})
    rule = fields.Nested(RuleSchema)
    results_visibility = fields.String(metadata={"description": "live 实时公开 / hidden 截止后公开",
                                                 "example": "live"})
    results = fields.Nested(ResultsSchema, allow_none=True, metadata={
        "description": "结果；表决设为截止后公开且尚未结束时为 null"})


class CastInSchema(Schema):
    class Meta:
        unknown = RAISE

    choice = fields.String(required=True, validate=validate.Length(min=1, max=20), metadata={"example": "agree"})
    items = fields.List(fields.String(validate=validate.Length(max=40)), load_default=list,
                        metadata={"example": ["roof"]})
    rating = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(1, 5),
                            metadata={"description": "满意度调查的评分 1-5", "example": None})
    comment = fields.String(load_default="", validate=validate.Length(max=500), metadata={"example": ""})


class CastOutSchema(Schema):
    ballot_id = fields.Integer(metadata={"example": 41})
    round_id = fields.Integer(metadata={"example": 3})
    choice = fields.String(metadata={"example": "agree"})
    channel = fields.String(metadata={"example": "online"})
    cast_at = fields.DateTime(metadata={"example": _ISO})
    receipt_code = fields.String(metadata={"example": "3f9a0c1d2e4b5a6978f0"})


class ReceiptOutSchema(Schema):
    state = fields.String(metadata={
        "description": "counted_as_cast / superseded / not_counted / recorded_round_open / recorded_pending / "
                       "log_broken", "example": "recorded_round_open"})
    headline = fields.String(metadata={"example": "您的投票已记入审计日志"})
    round_title = fields.String(metadata={"example": "加装电梯意见征询"})
    estate_name = fields.String(metadata={"example": "幸福里小区"})
    choice_label = fields.String(metadata={"example": "同意改造"})
    cast_at = fields.DateTime(metadata={"example": _ISO})
    round_closed = fields.Boolean(metadata={"example": False})
    chain = fields.Integer(metadata={"example": 1})
    seq = fields.Integer(metadata={"example": 128})
    entry_hash = fields.String(metadata={"example": "9c1e…"})
    detail = fields.String(metadata={"example": "表决尚未结束。结束后可用同一回执码核验是否按所投计入。"})


# ---- reading ---------------------------------------------------------------------------------------

def _visible_round(round_id: int, resident: Resident) -> Round:
    """A round of the resident's estate that residents may see (not a draft); anything else is 404."""
    rnd = db.session.get(Round, round_id)
    if rnd is None or rnd.estate_id != resident.unit.estate_id or rnd.status == "draft":
        raise NotFound("找不到该表决", code="round_not_found")
    return rnd


def _my_ballot(rnd: Round, unit_id: int) -> dict | None:
    cur = ballots.current_ballot_for(rnd.id, unit_id)
    if cur is None:
        return None
    return {"choice": cur.choice, "choice_label": rnd.option_labels.get(cur.choice, cur.choice),
            "items": list(cur.items or []), "channel": cur.channel, "cast_at": cur.cast_at,
            "receipt_code": cur.receipt_code}


def _on_roll(round_id: int, unit_id: int) -> bool:
    return db.session.execute(sa.select(RollEntry.id).where(
        RollEntry.round_id == round_id, RollEntry.unit_id == unit_id)).first() is not None


def _brief(rnd: Round, resident: Resident, now: datetime, result: RoundResult | None = None) -> dict:
    closed = rnd.status == "closed"
    if closed and result is None:
        result = db.session.get(RoundResult, rnd.id)
    return {"id": rnd.id, "title": rnd.title, "kind": rnd.kind, "kind_label": rnd.kind_label, "status": rnd.status,
            "status_label": rnd.status_label, "accepts_ballots": rnd.accepts_ballots_at(now),
            "opens_at": rnd.opens_at, "closes_at": rnd.closes_at, "on_roll": _on_roll(rnd.id, resident.unit.id),
            "my_ballot": _my_ballot(rnd, resident.unit.id),
            "outcome_label": svc.result_label(rnd, result) if closed else None}


def _results(rnd: Round, now: datetime) -> dict | None:
    """The final result once closed; before that the live figures, unless the round hides them until the close."""
    if rnd.status == "closed":
        result = db.session.get(RoundResult, rnd.id)
        tally = (result.tally or {}) if result is not None else {}
        passed = None if result is None or rnd.is_survey else bool(result.passed)
        return {"final": result is not None, "passed": passed, "label": svc.result_label(rnd, result),
                "figures": dict(tally.get("figures") or {})}
    if rnd.results_hidden:
        return None
    live = outcomes.live_tally(rnd, tally_svc.compute_tally(rnd.id, now))
    return {"final": False, "passed": None, "label": "实时统计（表决尚未结束）", "figures": dict(live["figures"])}


@api_bp.route("/rounds")
@api_bp.response(200, RoundBriefSchema(many=True))
def my_rounds():
    """The rounds of my estate: open ones (soonest closing first) with my ballot, then closed ones with their outcome.

    Closed rounds come latest first; drafts are never shown."""
    resident = resident_or_401()
    now = utcnow()
    rows = db.session.execute(
        sa.select(Round).where(Round.estate_id == resident.unit.estate_id, Round.status.in_(("open", "closed")))
    ).scalars().all()
    open_ = sorted((r for r in rows if r.status == "open"), key=lambda r: (r.closes_at, r.id))
    closed = sorted((r for r in rows if r.status == "closed"), key=lambda r: (r.closes_at, r.id), reverse=True)
    return [_brief(r, resident, now) for r in open_ + closed]


@api_bp.route("/rounds/<int:round_id>")
@api_bp.response(200, RoundDetailSchema)
def my_round(round_id: int):
    """One round: the question, options or item menu, the rule in Chinese, my ballot, results if visible.

    Results: the final ones once closed; before that the live figures, unless the round hides them until the close."""
    resident = resident_or_401()
    now = utcnow()
    rnd = _visible_round(round_id, resident)
    return {**_brief(rnd, resident, now), "description": rnd.description, "options": list(rnd.options or []),
            "item_menu": list(rnd.item_menu or []), "rule": rule_text(rnd),
            "results_visibility": rnd.results_visibility, "results": _results(rnd, now)}


@api_bp.route("/rounds/<int:round_id>/cast", methods=["POST"])
@api_bp.arguments(CastInSchema)
@api_bp.response(201, CastOutSchema)
def my_cast(data, round_id: int):
    """Cast (or change) my unit's ballot; returns the receipt code (the last ballot before the close counts)."""
    resident = resident_or_401()
    now = utcnow()
    rnd = _visible_round(round_id, resident)
    ballot = ballots.cast_ballot(
        rnd.id, resident.unit.id, resident.owner.id, data["choice"], now, items=data["items"],
        rating=data["rating"], comment=data["comment"], defer_audit=True,
        client=ballots.client_fingerprint(request.remote_addr, request.headers.get("User-Agent")))
    out = {"ballot_id": ballot.id, "round_id": rnd.id, "choice": ballot.choice, "channel": "online",
           "cast_at": now, "receipt_code": ballot.receipt_code}
    db.session.commit()
    sealer.after_commit()
    return out


@api_bp.route("/receipts/<code>")
@api_bp.response(200, ReceiptOutSchema)
def my_receipt(code: str):
    """Check a receipt code of my estate: recorded in the audit log, and once the round is closed counted as cast."""
    resident = resident_or_401()
    try:
        normal = normalise_code(code)
    except ValidationFailed as exc:  # nothing can be found under a malformed code: 404, saying why
        raise NotFound(exc.message, code="receipt_not_found", errors=exc.errors) from None
    estate_id = db.session.execute(
        sa.select(Round.estate_id).join(Ballot, Ballot.round_id == Round.id).where(Ballot.receipt_code == normal)
    ).scalar_one_or_none()
    if estate_id != resident.unit.estate_id:
        raise NotFound("没有找到该回执码对应的投票记录，请核对回执码", code="receipt_not_found")
    return check_receipt(normal, utcnow())


# ---- the home page's section -----------------------------------------------------------------------

def open_rounds_section(resident: Resident, now: datetime) -> list[dict] | None:
    """The rounds open for my unit now, soonest closing first, with my current choice (None: not voted yet)."""
    rounds = svc.open_rounds_for_unit(resident.unit.id, now)
    if not rounds:
        return None
    out = []
    for rnd in rounds:
        cur = ballots.current_ballot_for(rnd.id, resident.unit.id)
        out.append({"id": rnd.id, "title": rnd.title, "closes_at": to_local(rnd.closes_at).isoformat(),
                    "my_choice": None if cur is None else cur.choice})
    return out


register_home_section("open_rounds", open_rounds_section)
