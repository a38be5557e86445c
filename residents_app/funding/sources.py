"""Funding sources (资金来源): estate money with its source, its evidence and the decision that allows it.

A source counts (offsets residents' shares, and so the 100 % gate) once its evidence is attached and the
decision exists: a passed round of the estate for maintenance funds, public income and parking rights
(Civil Code art. 278), a written decision (e.g. the committee's resolution accepting a donation) otherwise.
How the offset is divided is documented in `residents_app/core/money.py`.
"""

from __future__ import annotations

import hashlib
from datetime import date, datetime

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.funding.account_models import (
    NON_CASH_SOURCES,
    SOURCE_KIND_LABELS,
    SOURCE_KINDS,
    SOURCES_NEEDING_VOTE,
    FundingSource,
)
from residents_app.funding.owed import amounts_by_unit
from residents_app.funding.services import _ensure_money_not_locked, estate_units, paid_by_unit
from residents_app.plans.models import PlanVersion
from residents_app.plans.services import MAX_COST_FEN
from residents_app.registry.models import Estate, Unit
from residents_app.uploads import sniff_mime

MAX_EVIDENCE_BYTES = 10 * 1024 * 1024


def _round_passed(round_id: int, estate_id: int) -> bool | None:
    from residents_app.rounds.models import Round
    from residents_app.rounds.services import round_outcome

    rnd = db.session.get(Round, round_id)
    if rnd is None or rnd.estate_id != estate_id:
        return None
    outcome = round_outcome(round_id)
    return None if outcome is None else bool(outcome["passed"])


def source_problems(src: FundingSource) -> list[str]:
    """Why this source does not count yet (empty: it offsets residents' shares)."""
    problems = []
    if src.withdrawn_at is not None:
        return [f"已撤销：{src.withdrawn_reason}"]
    if not src.has_evidence:
        problems.append("尚未上传凭证（到账凭证、捐赠协议或折价清单）")
    if src.kind in SOURCES_NEEDING_VOTE:
        if src.decision_round_id is None:
            problems.append(f"使用{src.kind_label}须经业主共同决定（民法典第二百七十八条），请关联已通过的表决")
        else:
            passed = _round_passed(src.decision_round_id, src.estate_id)
            if passed is None:
                problems.append("所关联的表决尚无结果")
            elif not passed:
                problems.append("所关联的表决未通过")
    elif src.decision_round_id is None and not (src.decision_note or "").strip():
        problems.append("请写明同意使用该资金的决定（如业委会决议）")
    return problems


def source_counts(src: FundingSource) -> bool:
    return not source_problems(src)


def sources_of(estate_id: int, *, include_withdrawn: bool = True) -> list[FundingSource]:
    q = sa.select(FundingSource).where(FundingSource.estate_id == estate_id).order_by(FundingSource.id)
    if not include_withdrawn:
        q = q.where(FundingSource.withdrawn_at.is_(None))
    return list(db.session.execute(q).scalars())


def add_source(estate: Estate, *, kind: str, amount_fen: int, provider: str = "", description: str = "",
               item_names=None, decision_round_id: int | None = None, decision_note: str = "",
               received_on: date | None = None, into_account: bool = False, user, now: datetime) -> FundingSource:
    errors = {}
    if kind not in SOURCE_KINDS:
        errors["kind"] = ["资金来源必须是：" + "、".join(SOURCE_KIND_LABELS.values())]
    if not isinstance(amount_fen, int) or isinstance(amount_fen, bool) or amount_fen <= 0:
        errors["amount_fen"] = ["金额必须大于零（分）"]
    elif amount_fen > MAX_COST_FEN:
        errors["amount_fen"] = ["金额过大，请检查"]
    names = [str(n).strip() for n in (item_names or []) if str(n).strip()]
    if len((provider or "").strip()) > 100:
        errors["provider"] = ["出资方不能超过 100 个字"]
    if len((description or "").strip()) > 200:
        errors["description"] = ["说明不能超过 200 个字"]
    if decision_round_id is not None and _round_passed(decision_round_id, estate.id) is None:
        from residents_app.rounds.models import Round

        rnd = db.session.get(Round, decision_round_id)
        if rnd is None or rnd.estate_id != estate.id:
            errors["decision_round_id"] = ["所选表决不属于本小区"]
    if into_account and kind in NON_CASH_SOURCES:
        errors["into_account"] = ["捐物、投工投劳按折价计入，不进入资金专用账户"]
    if into_account and not isinstance(received_on, date):
        errors["received_on"] = ["进入专用账户的资金请填写到账日期"]
    if errors:
        raise ValidationFailed("资金来源有误", errors=errors)
    _ensure_money_not_locked(estate.id, "变更资金来源")
    src = FundingSource(estate_id=estate.id, kind=kind, amount_fen=amount_fen, provider=(provider or "").strip(),
                        description=(description or "").strip(), item_names=names,
                        decision_round_id=decision_round_id, decision_note=(decision_note or "").strip(),
                        received_on=received_on, created_by_id=getattr(user, "id", None), created_at=now)
    db.session.add(src)
    db.session.flush()
    record("funding.source_added", chain=estate.id, actor=actor_for_user(user), now=now,
           subject_type="funding_source", subject_id=src.id,
           data={"kind": kind, "amount_fen": amount_fen, "provider": src.provider, "item_names": names,
                 "decision_round_id": decision_round_id})
    if into_account:
        from residents_app.funding.account import book_source

        book_source(src, user=user, now=now)
    return src


def attach_evidence(src: FundingSource, *, filename: str, data: bytes, user, now: datetime) -> FundingSource:
    if not data:
        raise ValidationFailed("请选择凭证文件", errors={"evidence": ["缺少文件"]})
    if len(data) > MAX_EVIDENCE_BYTES:
        raise ValidationFailed("凭证文件不能超过 10 MB", errors={"evidence": ["文件过大"]})
    mime = sniff_mime(data)
    if mime is None:
        raise ValidationFailed("凭证须为 PDF、PNG 或 JPEG 文件", errors={"evidence": ["文件类型不支持"]})
    _ensure_money_not_locked(src.estate_id, "变更资金来源")
    src.evidence_filename = (filename or "凭证")[-200:]
    src.evidence_content_type = mime
    src.evidence_sha256 = hashlib.sha256(data).hexdigest()
    src.evidence_data = data
    db.session.flush()
    record("funding.source_evidence", chain=src.estate_id, actor=actor_for_user(user), now=now,
           subject_type="funding_source", subject_id=src.id,
           data={"filename": src.evidence_filename, "sha256": src.evidence_sha256})
    return src


def withdraw_source(src: FundingSource, *, reason: str, user, now: datetime) -> FundingSource:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("撤销必须写明原因", errors={"reason": ["请填写原因"]})
    if src.withdrawn_at is not None:
        raise Conflict("该资金来源已撤销", code="source_withdrawn")
    _ensure_money_not_locked(src.estate_id, "变更资金来源")
    src.withdrawn_at = now
    src.withdrawn_reason = reason[:200]
    db.session.flush()
    record("funding.source_withdrawn", chain=src.estate_id, actor=actor_for_user(user), now=now,
           subject_type="funding_source", subject_id=src.id, data={"reason": src.withdrawn_reason})
    return src


def get_source(estate: Estate, source_id: int) -> FundingSource:
    src = db.session.get(FundingSource, source_id)
    if src is None or src.estate_id != estate.id:
        raise NotFound("找不到该资金来源")
    return src


def self_funding_state(plan: PlanVersion) -> tuple[int, int, list[Unit]]:
    """The start gate's 100 % check with funding sources counted: (counted_fen, owed_fen, short_units).

    owed_fen = the residents' part to be funded (shares after hardship cover) = what the residents pay plus
    what funding sources offset; counted_fen = per unit min(paid, what it pays) plus its offsets (a unit's
    overpayment never covers another unit); short_units = units that have paid less than they pay.
    Complete when counted_fen == owed_fen.
    """
    amounts = amounts_by_unit(plan)  # the saved columns (funding/owed.py)
    paid = paid_by_unit(plan.estate_id)
    counted = owed = 0
    short = []
    for u in estate_units(plan.estate_id):
        out = amounts[u.id]
        p = paid.get(u.id, 0)
        owed += out.owed_fen + out.offset_fen
        counted += min(max(p, 0), out.owed_fen) + out.offset_fen
        if p < out.owed_fen:
            short.append(u)
    return counted, owed, short
