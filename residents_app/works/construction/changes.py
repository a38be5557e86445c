"""Change requests (工程变更, issue 16 item 2). Refused in principle: each carries its reason, the designer's written
technical and economic explanation (a PDF or image) and its effect on cost item by item. A change that moves the
residents' costs or scope goes back to them as a new plan version (a draft, then a new plan vote); the others
need the committee and the street office. Every step is on the audit chain; residents see the list."""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.errors import NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.plans import services as plan_svc
from residents_app.plans.schemas import yuan_to_fen
from residents_app.uploads import sniff_mime
from residents_app.works.construction import services
from residents_app.works.construction.models import ChangeRequest
from residents_app.works.models import StartApplication

MAX_EXPLANATION_BYTES = 10 * 1024 * 1024


def parse_cost_effect(text: str) -> list[dict]:
    """Lines "项目 | +1200.50" (or "-300"): the item and the signed change of its cost in yuan -> fen."""
    lines = []
    errors = []
    for n, raw in enumerate((text or "").splitlines(), start=1):
        raw = raw.strip()
        if not raw:
            continue
        item, sep, amount = raw.rpartition("|")
        if not sep:
            item, _, amount = raw.rpartition(" ")
        item, amount = item.strip(), amount.strip()
        sign = -1 if amount.startswith(("-", "−")) else 1
        amount = amount.lstrip("+-−")
        if not item:
            errors.append(f"第 {n} 行缺少项目名称")
            continue
        try:
            fen = yuan_to_fen(amount, "cost_effect", "费用变化")
        except ValidationFailed:
            errors.append(f"第 {n} 行「{raw}」的金额无效")
            continue
        lines.append({"item": item[:100], "delta_fen": sign * fen})
    if errors:
        raise ValidationFailed("费用影响格式有误：每行“项目 | 增减金额（元）”", errors={"cost_effect": errors})
    if not lines:
        raise ValidationFailed("请逐项填写对费用的影响（无变化填 0）", errors={"cost_effect": ["至少一行"]})
    return lines


def submit_change(project: StartApplication, *, title: str, reason: str, cost_effect: list[dict],
                  moves_residents: bool, explanation: bytes | None, explanation_filename: str, user,
                  now: datetime) -> ChangeRequest:
    errors = {}
    title, reason = (title or "").strip(), (reason or "").strip()
    if not title or len(title) > 200:
        errors["title"] = ["请填写变更事项（不超过 200 字）"]
    if not reason:
        errors["reason"] = ["请填写变更理由"]
    kind = sniff_mime(explanation or b"")
    if not explanation:
        errors["explanation"] = ["须上传设计单位的书面技术、经济说明"]
    elif kind is None or len(explanation) > MAX_EXPLANATION_BYTES:
        errors["explanation"] = ["设计说明只接受 10 MB 以内的 PDF、PNG 或 JPEG"]
    if errors:
        raise ValidationFailed("变更申请有误", errors=errors)
    services.lock_project(project)
    number = (db.session.execute(sa.select(sa.func.max(ChangeRequest.number)).where(
        ChangeRequest.start_application_id == project.id)).scalar_one() or 0) + 1
    ch = ChangeRequest(estate_id=project.estate_id, start_application_id=project.id, number=number, title=title,
                       reason=reason, cost_effect=cost_effect, moves_residents=bool(moves_residents),
                       explanation_filename=(explanation_filename or "说明")[:200], explanation_type=kind,
                       explanation_sha256=hashlib.sha256(explanation).hexdigest(), explanation=explanation,
                       state="submitted", submitted_at=now, submitted_by_id=user.id)
    db.session.add(ch)
    db.session.flush()
    record("construction.change_submitted", chain=project.estate_id, actor=actor_for_user(user), now=now,
           subject_type="change_request", subject_id=ch.id,
           data={"number": number, "title": title, "cost_effect": cost_effect, "delta_fen": ch.delta_fen,
                 "moves_residents": ch.moves_residents, "explanation_sha256": ch.explanation_sha256})
    return ch


def get_change(project: StartApplication, change_id: int) -> ChangeRequest:
    ch = db.session.get(ChangeRequest, change_id)
    if ch is None or ch.start_application_id != project.id:
        raise NotFound("找不到该变更申请")
    return ch


def changes_of(project: StartApplication) -> list[ChangeRequest]:
    return list(db.session.execute(sa.select(ChangeRequest).where(ChangeRequest.start_application_id == project.id)
                                   .order_by(ChangeRequest.number)).scalars())


def refuse_change(ch: ChangeRequest, *, note: str, user, now: datetime) -> ChangeRequest:
    ch.refuse(now=now, note=note)
    record("construction.change_refused", chain=ch.estate_id, actor=actor_for_user(user), now=now,
           subject_type="change_request", subject_id=ch.id, data={"number": ch.number, "note": ch.decision_note})
    return ch


def approve_change(ch: ChangeRequest, *, user, now: datetime, note: str = "") -> ChangeRequest:
    """The committee's or the street office's approval (by the user's role); approved once both have."""
    side = "committee" if user.role == "committee" else "street"
    ch.approve(side=side, user_id=user.id, now=now, note=note)
    record("construction.change_approved", chain=ch.estate_id, actor=actor_for_user(user), now=now,
           subject_type="change_request", subject_id=ch.id,
           data={"number": ch.number, "side": side, "state": ch.state})
    return ch


def send_to_residents(ch: ChangeRequest, project: StartApplication, *, user, now: datetime) -> ChangeRequest:
    """A change of the residents' costs or scope: a new plan version (draft) to be amended, published and voted."""
    from residents_app.errors import Conflict

    if ch.state != "submitted":
        raise Conflict(f"该变更{ch.state_label}，不能再处理", code="change_decided")
    if not ch.moves_residents:
        raise Conflict("该变更不涉及居民出资或改造范围，由业委会和街道审批", code="change_no_vote")
    draft = plan_svc.new_version(project.plan_version, user=user, now=now)
    ch.state = "replanned"
    ch.decided_at = now
    ch.new_plan_version_id = draft.id
    record("construction.change_replanned", chain=ch.estate_id, actor=actor_for_user(user), now=now,
           subject_type="change_request", subject_id=ch.id,
           data={"number": ch.number, "plan_version_id": draft.id, "plan_number": draft.number})
    return ch
