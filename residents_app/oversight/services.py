"""The street office's verdict on a closed round (核验), kept only in the audit log: the log is the record."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.audit.services import actor_for_user, record
from residents_app.audit.verify import record_checkpoint, verify_chain
from residents_app.errors import Conflict, ValidationFailed
from residents_app.extensions import db
from residents_app.rounds.models import RoundResult
from residents_app.rounds.recount import recount_round

SIGNOFF_KIND = "round.verification"
# "核验通过" reads as "the round passed": a failed round is confirmed as "核验属实（未通过）" instead.
DECISIONS = {"verified": "核验通过", "confirmed_failed": "核验属实（未通过）", "returned": "退回"}
# Surveys have no pass or fail (their stored `passed` means nothing): they are simply verified.
SURVEY_KINDS = ("satisfaction", "evaluation")


def sign_off(rnd, *, decision: str, comment: str, user, now: datetime) -> AuditEvent:
    """The street office's verdict on a closed round, kept only in the log (the log is the record)."""
    comment = (comment or "").strip()
    errors = {}
    if decision not in DECISIONS:
        errors["decision"] = "请选择“核验通过”“核验属实（未通过）”或“退回”"
    if decision == "returned" and not comment:
        errors["comment"] = "退回时必须填写意见，说明需要业委会补正什么"
    if len(comment) > 2000:
        errors["comment"] = "意见不能超过 2000 字"
    if errors:
        raise ValidationFailed("核验意见有误：" + "；".join(errors.values()), errors=errors)
    if rnd.status != "closed":
        raise Conflict("表决尚未结束，不能核验", code="round_not_closed")
    chain = verify_chain(rnd.estate_id)  # the sign-off always walks the whole chain
    verdict = DECISIONS[decision]
    if decision != "returned" and not chain.ok:
        raise Conflict(f"本小区审计日志校验未通过（{chain.broken.describe()}），不能{verdict}",
                       code="audit_chain_broken")
    result = db.session.get(RoundResult, rnd.id)
    if decision != "returned":
        # The tally recounted from the log's ballot entries must match the ballot tables and the stored result.
        problems = recount_round(rnd)
        if problems:
            shown = "；".join(p.message for p in problems[:3]) + ("；……" if len(problems) > 3 else "")
            raise Conflict(f"按审计日志重新计票，与数据库中的投票或保存的结果不一致（{shown}），不能{verdict}",
                           code="tally_mismatch")
        failed = result is not None and not result.passed and rnd.kind not in SURVEY_KINDS
        if decision == "verified" and failed:
            raise Conflict("该表决未通过，不能核验为“核验通过”；如核对无误，请选择“核验属实（未通过）”",
                           code="round_failed")
        if decision == "confirmed_failed" and not failed:
            raise Conflict("该表决没有未通过的结果，请选择“核验通过”或“退回”", code="round_not_failed")
    # The whole chain checked out: its head is the checkpoint the desk walks from next time (issue 19 item 4).
    record_checkpoint(chain, actor=actor_for_user(user), now=now)
    return record(SIGNOFF_KIND, chain=rnd.estate_id, actor=actor_for_user(user), now=now, subject_type="round",
                  subject_id=rnd.id,
                  data={"decision": decision, "comment": comment, "round_id": rnd.id,
                        "passed": result.passed if result is not None else None,
                        "chain_head_seq": chain.head_seq, "chain_head_hash": chain.head_hash})


def signoffs(round_id: int, estate_id: int) -> list[AuditEvent]:
    return list(db.session.execute(
        sa.select(AuditEvent).where(AuditEvent.chain == estate_id, AuditEvent.kind == SIGNOFF_KIND,
                                    AuditEvent.subject_type == "round", AuditEvent.subject_id == str(round_id))
        .order_by(AuditEvent.seq)).scalars())
