"""Public receipt check: a receipt code is 20 random hex digits written into the ballot's audit entry.

The check finds the ballot and its entry (the entry's data must carry the same code), recomputes the entry's
hash, confirms the chain is intact up to it, and, once the round is closed, says whether the ballot was counted
as cast. An online ballot's entry may still be waiting for the sealer (audit_pending) for a moment after the
cast: that is said as such. No names, no unit numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from residents_app.audit.chain import compute_hash
from residents_app.audit.models import AuditEvent, AuditPending
from residents_app.errors import NotFound, ValidationFailed
from residents_app.extensions import db

CODE_RE = re.compile(r"[0-9a-f]{20}")


@dataclass
class ReceiptCheck:
    state: str  # counted_as_cast / superseded / not_counted / recorded_round_open / log_broken
    headline: str
    round_title: str
    estate_name: str
    choice_label: str
    cast_at: datetime
    chain: int
    seq: int
    entry_hash: str
    round_closed: bool
    detail: str = ""


def normalise_code(code: str) -> str:
    code = re.sub(r"[\s-]", "", code or "").lower()
    if not CODE_RE.fullmatch(code):
        raise ValidationFailed("回执码应为 20 位，由数字 0-9 和字母 a-f 组成，请核对后重新输入",
                               code="invalid_receipt", errors={"code": "回执码格式不正确"})
    return code


def _entry_of(model, ballot_id: int):
    """The `ballot.cast` entry of a ballot (the last one: a conflict's winner is counted again)."""
    return db.session.execute(
        sa.select(model).where(model.kind == "ballot.cast", model.subject_type == "ballot",
                               model.subject_id == str(ballot_id)).order_by(model.id.desc()).limit(1)
    ).scalar_one_or_none()


def check_receipt(code: str, now: datetime) -> ReceiptCheck:
    from residents_app.audit.verify import verify_chain
    from residents_app.formatting import format_local_dt
    from residents_app.registry.models import Estate
    from residents_app.rounds.models import Ballot, CurrentBallot, Round

    code = normalise_code(code)
    ballot = db.session.execute(sa.select(Ballot).where(Ballot.receipt_code == code)).scalar_one_or_none()
    ev = None if ballot is None else _entry_of(AuditEvent, ballot.id)
    pending = None if ballot is None or ev is not None else _entry_of(AuditPending, ballot.id)
    if ev is None and pending is None:
        raise NotFound("没有找到该回执码对应的投票记录，请核对回执码", code="receipt_not_found")
    rnd = db.session.get(Round, ballot.round_id)
    estate = db.session.get(Estate, rnd.estate_id)
    base = dict(round_title=rnd.title, estate_name=estate.name,
                choice_label=rnd.option_labels.get(ballot.choice, ballot.choice), cast_at=ballot.cast_at,
                round_closed=rnd.status == "closed")
    if ev is None:
        return ReceiptCheck(state="recorded_pending", headline="您的投票已记录，正在写入审计日志", **base,
                            chain=pending.chain, seq=0, entry_hash="",
                            detail="通常在几秒内写入，请稍后刷新本页再核验。")
    data = ev.data or {}
    choice = data.get("choice", "")
    # What the log says was chosen (a tampered entry shows what it now says).
    base.update(choice_label=rnd.option_labels.get(choice, choice), chain=ev.chain, seq=ev.seq, entry_hash=ev.hash)
    # The entry must describe this very ballot: same round, unit and choice, in the round's estate chain.
    same_ballot = (ev.chain == rnd.estate_id and str(data.get("round_id")) == str(ballot.round_id)
                   and str(data.get("unit_id")) == str(ballot.unit_id) and choice == ballot.choice
                   and data.get("receipt") == code)
    chain = verify_chain(ev.chain)
    if (not same_ballot or compute_hash(ev) != ev.hash
            or (chain.broken is not None and chain.broken.seq <= ev.seq)):
        return ReceiptCheck(state="log_broken", headline="审计日志校验异常，请联系街道办事处", **base,
                            detail="该投票记录或其之前的日志与哈希不一致。")
    if rnd.status != "closed":
        return ReceiptCheck(state="recorded_round_open", headline="您的投票已记入审计日志", **base,
                            detail="表决尚未结束。结束后可用同一回执码核验是否按所投计入"
                                   "（截止前改票的，以最后一次为准，请使用最后一次的回执码）。")
    current = db.session.get(CurrentBallot, (ballot.round_id, ballot.unit_id))
    counted = current is not None and current.ballot_id == ballot.id and ballot.status == "counted"
    if counted:
        headline = f"已按所投计入：{base['choice_label']}，{format_local_dt(ballot.cast_at)}"
        return ReceiptCheck(state="counted_as_cast", headline=headline, **base)
    if ballot.status == "superseded":
        return ReceiptCheck(state="superseded", headline="该次投票已被本户后来的投票替代", **base,
                            detail="表决以每户最后一次有效投票为准；请用最后一次投票的回执码核验。")
    return ReceiptCheck(state="not_counted", headline="该次投票未计入结果", **base,
                        detail=f"状态：{ballot.status_label}。如有疑问请联系业委会或街道办事处。")
