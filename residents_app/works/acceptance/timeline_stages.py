"""The acceptance, handover and evaluation stages of the project's timeline (works.construction.timeline), which
finds them through its STAGE_HOOKS registry."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from residents_app.core.calendar import beijing_date
from residents_app.extensions import db
from residents_app.works.acceptance.models import Acceptance, ArchiveHandover, Evaluation, ProjectArchive
from residents_app.works.construction.timeline import STAGE_HOOKS, STAGE_PROBES, Stage


def acceptance_stage(estate_id: int, now: datetime) -> Stage | None:
    acc = db.session.execute(sa.select(Acceptance).where(Acceptance.estate_id == estate_id)
                             .order_by(Acceptance.id.desc()).limit(1)).scalar_one_or_none()
    if acc is None:
        return None
    if acc.status == "passed":
        return Stage("acceptance", "竣工验收", "done", beijing_date(acc.passed_at), acc.title)
    stage = Stage("acceptance", "竣工验收", "current", acc.held_on, f"{acc.title}：待全体签字并整改完毕")
    late = [i for i in acc.issues if i.is_overdue(beijing_date(now))]
    if late:
        stage.overdue.append(f"{len(late)} 项验收整改逾期（" + "、".join(f"#{i.number}" for i in late) + "）")
    return stage


def handover_stage(estate_id: int, now: datetime) -> Stage | None:
    row = db.session.execute(
        sa.select(ArchiveHandover.received_at, ArchiveHandover.recipient_organisation)
        .join(ProjectArchive, ProjectArchive.id == ArchiveHandover.archive_id)
        .where(ProjectArchive.estate_id == estate_id).order_by(ArchiveHandover.id.desc()).limit(1)).first()
    if row is not None:
        return Stage("handover", "归档移交", "done", beijing_date(row.received_at),
                     f"已移交{row.recipient_organisation}")
    built = db.session.execute(sa.select(ProjectArchive.created_at).where(ProjectArchive.estate_id == estate_id)
                               .order_by(ProjectArchive.id.desc()).limit(1)).scalar_one_or_none()
    if built is None:
        return None
    return Stage("handover", "归档移交", "current", beijing_date(built), "档案已生成，待移交")


def evaluation_stage(estate_id: int, now: datetime) -> Stage | None:
    ev = db.session.execute(sa.select(Evaluation).where(Evaluation.estate_id == estate_id)
                            .order_by(Evaluation.id.desc()).limit(1)).scalar_one_or_none()
    if ev is None:
        return None
    if ev.status == "published":
        return Stage("evaluation", "问效评价", "done", beijing_date(ev.published_at), "评价结果已公布")
    return Stage("evaluation", "问效评价", "current", beijing_date(ev.created_at), "评分中")


STAGE_HOOKS.update({"acceptance": acceptance_stage, "handover": handover_stage, "evaluation": evaluation_stage})
# Each hook returns None exactly when the estate has none of these rows (a handover needs an archive).
STAGE_PROBES.update({
    acceptance_stage: lambda estate_id: sa.exists().where(Acceptance.estate_id == estate_id),
    handover_stage: lambda estate_id: sa.exists().where(ProjectArchive.estate_id == estate_id),
    evaluation_stage: lambda estate_id: sa.exists().where(Evaluation.estate_id == estate_id),
})
