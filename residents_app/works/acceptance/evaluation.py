"""The evaluation (问效): the street office's template (from the shipped Sichuan-shaped one), an evaluation per
project with its groups' weights, the named evaluators' sheets, the exact result (core/evaluation.py), its
publication on the public board with the residents' satisfaction survey beside it. Services flush, never commit.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.core import evaluation as ev
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.publicity import services as publicity_svc
from residents_app.publicity.models import SUBJECT_SNAPSHOTS, Publicity
from residents_app.registry.models import Estate
from residents_app.rounds.models import Round
from residents_app.works.acceptance.models import Evaluation, EvaluationSheet, EvaluationTemplate

SHIPPED = Path(__file__).parent / "evaluation_template.json"


def _invalid(e: ev.TemplateError) -> ValidationFailed:
    return ValidationFailed(str(e), errors=e.errors)


def shipped_template() -> tuple[str, list]:
    data = json.loads(SHIPPED.read_text(encoding="utf-8"))
    return data["title"], data["aspects"]


def office_template(office_id: int) -> tuple[str, list, EvaluationTemplate | None]:
    row = db.session.execute(sa.select(EvaluationTemplate).where(
        EvaluationTemplate.street_office_id == office_id)).scalar_one_or_none()
    if row is not None:
        return row.title, row.aspects, row
    title, aspects = shipped_template()
    return title, aspects, None


def save_office_template(office_id: int, *, title: str, lines: str, user, now: datetime) -> EvaluationTemplate:
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise ValidationFailed("请填写评价表名称（不超过 200 个字）", errors={"title": "必填"})
    try:
        template = ev.template_from_lines(lines)
    except ev.TemplateError as e:
        raise _invalid(e) from None
    _, _, row = office_template(office_id)
    if row is None:
        row = EvaluationTemplate(street_office_id=office_id)
        db.session.add(row)
    row.title, row.aspects = title, ev.template_to_data(template)
    row.updated_at, row.updated_by_id = now, user.id
    db.session.flush()
    record("evaluation.template_saved", chain=0, actor=actor_for_user(user), now=now,
           subject_type="street_office", subject_id=office_id,
           data={"aspects": len(template.aspects), "items": len(template.items),
                 "total_points": str(template.total_points)})
    return row


def evaluations_of(estate_id: int) -> list[Evaluation]:
    return list(db.session.execute(sa.select(Evaluation).where(Evaluation.estate_id == estate_id)
                                   .order_by(Evaluation.id.desc())).scalars())


def get_evaluation(evaluation_id: int) -> Evaluation:
    e = db.session.get(Evaluation, evaluation_id)
    if e is None:
        raise NotFound("找不到该评价")
    return e


def satisfaction_rounds(estate_id: int) -> list[Round]:
    return list(db.session.execute(sa.select(Round).where(
        Round.estate_id == estate_id, Round.kind == "satisfaction").order_by(Round.id.desc())).scalars())


def create_evaluation(estate: Estate, *, title: str, weights: dict, satisfaction_round_id, user,
                      now: datetime) -> Evaluation:
    title = (title or "").strip()
    if not title or len(title) > 200:
        raise ValidationFailed("请填写评价名称（不超过 200 个字）", errors={"title": "必填"})
    try:
        weights = ev.check_group_weights(weights)
    except ev.TemplateError as e:
        raise _invalid(e) from None
    round_id = None
    if satisfaction_round_id not in (None, ""):
        try:
            round_id = int(satisfaction_round_id)
        except (TypeError, ValueError):
            raise ValidationFailed("满意度调查编号有误", errors={"satisfaction_round_id": "须为编号"}) from None
        if round_id not in {r.id for r in satisfaction_rounds(estate.id)}:
            raise ValidationFailed("找不到本小区的该满意度调查", errors={"satisfaction_round_id": str(round_id)})
    _, aspects, _ = office_template(estate.street_office_id)
    e = Evaluation(estate_id=estate.id, title=title, template=aspects, group_weights=weights,
                   satisfaction_round_id=round_id, status="draft", created_at=now, created_by_id=user.id)
    db.session.add(e)
    db.session.flush()
    record("evaluation.created", chain=estate.id, actor=actor_for_user(user), now=now, subject_type="evaluation",
           subject_id=e.id, data={"title": title, "weights": weights, "items": len(template_of(e).items)})
    return e


def template_of(e: Evaluation) -> ev.Template:
    """The template frozen into the evaluation; one that no longer reads (damaged data) is a 409, never a 500."""
    try:
        return ev.template_from_data(e.template)
    except ev.TemplateError:
        raise Conflict("该评价保存的评价模板无效，无法计分，请联系管理员",
                       code="evaluation_template_invalid") from None


def save_sheet(e: Evaluation, *, evaluator_name: str, group: str, scores: dict, user, now: datetime) -> EvaluationSheet:
    """Enter (or replace) one named evaluator's sheet; blank items stay unscored."""
    e.require_draft()
    name = (evaluator_name or "").strip()
    if not name or len(name) > 100:
        raise ValidationFailed("请填写评价人姓名（不超过 100 个字）", errors={"evaluator_name": "必填"})
    if group not in ev.GROUPS:
        raise ValidationFailed("评价人类别须为居民代表、社区或街道办事处", errors={"evaluator_group": group})
    try:
        checked = ev.check_sheet(template_of(e), scores)
    except ev.TemplateError as err:
        raise _invalid(err) from None
    values = {"evaluator_group": group, "scores": {k: str(v) for k, v in checked.items()},
              "entered_by_id": user.id, "entered_at": now}
    sheet = next((s for s in e.sheets if s.evaluator_name == name), None)
    if sheet is None:
        sheet = EvaluationSheet(evaluator_name=name, **values)
        e.sheets.append(sheet)
    else:
        for k, v in values.items():
            setattr(sheet, k, v)
    db.session.flush()
    record("evaluation.sheet_saved", chain=e.estate_id, actor=actor_for_user(user), now=now,
           subject_type="evaluation", subject_id=e.id,
           data={"evaluator": name, "group": group, "scores": sheet.scores})
    return sheet


def result_of(e: Evaluation) -> ev.Result:
    from decimal import Decimal

    sheets = [ev.Sheet(s.evaluator_name, s.evaluator_group, {k: Decimal(v) for k, v in s.scores.items()})
              for s in e.sheets]
    return ev.score(template_of(e), sheets, e.group_weights)


def survey_of(e: Evaluation) -> dict | None:
    """The satisfaction survey's summary (response rate, distribution, average) once its round is closed."""
    if e.satisfaction_round_id is None:
        return None
    rnd = db.session.get(Round, e.satisfaction_round_id)
    if rnd is None or rnd.status != "closed":
        return None
    from residents_app.rounds.outcomes import survey_summary

    return {"round_id": rnd.id, "title": rnd.title, **survey_summary(rnd)}


def survey_lines(survey: dict | None) -> list[str]:
    if survey is None:
        return []
    lines = [f"居民满意度调查「{survey['title']}」：{survey['response_count']} / {survey['total_count']} 户答复"
             f"（{survey['response_rate']}）"]
    for q in survey["questions"]:
        if q["key"] == "choice":
            lines.append(q["title"] + "：" + "，".join(f"{d['label']} {d['count']} 户（{d['share']}）"
                                                       for d in q["distribution"]))
        else:
            lines.append(f"平均评分：{q['average']}（{q['responses']} 户评分）")
    return lines


def result_lines(e: Evaluation) -> list[str]:
    r = result_of(e)
    lines = [f"总分 {r.total_text} / {r.total_points}，等级：{r.grade}",
             f"评价人：{len(e.sheets)} 位（" + "、".join(
                 f"{ev.GROUP_LABELS[g]} {sum(1 for s in e.sheets if s.evaluator_group == g)} 位，权重 "
                 f"{e.group_weights[g]}%" for g in ev.GROUPS) + "）"]
    lines += [f"{a}：{ev.two_places(s)} / {p}" for a, s, p in r.aspects]
    return lines + survey_lines(survey_of(e))


def publicity_of(e: Evaluation) -> Publicity | None:
    return db.session.execute(sa.select(Publicity).where(
        Publicity.subject_type == "evaluation", Publicity.subject_id == e.id)
        .order_by(Publicity.id.desc())).scalars().first()


def publish_evaluation(e: Evaluation, estate: Estate, *, posted_on: date, user, now: datetime,
                       working_days: int = 5, calendar_=None) -> Publicity:
    e.require_draft()
    r = result_of(e)
    if not e.sheets:
        raise Conflict("还没有评价人打分，不能公布", code="evaluation_empty")
    if r.missing:
        shown = "、".join(r.missing[:10]) + ("等" if len(r.missing) > 10 else "")
        raise Conflict(f"还有 {len(r.missing)} 个评价项目无人打分：{shown}", code="evaluation_incomplete")
    e.status, e.published_at, e.published_total = "published", now, r.total_text
    db.session.flush()
    record("evaluation.published", chain=estate.id, actor=actor_for_user(user), now=now, subject_type="evaluation",
           subject_id=e.id, data={"total": r.total_text, "grade": r.grade,
                                  "exact_total": f"{r.total.numerator}/{r.total.denominator}"})
    notice = (f"{estate.name}改造项目已由居民代表、社区和街道办事处共同评价（问效）。现将评价结果和居民满意度调查情况"
              f"公示如下，如有意见，请在公示期内向街道办事处反映。")
    return publicity_svc.post_publicity(
        estate, subject_type="evaluation", subject_id=e.id, title=f"{estate.name} {e.title}结果公示",
        notice_text=notice, posted_on=posted_on, working_days=working_days, actor=actor_for_user(user), now=now,
        calendar=calendar_)


def _snapshot(estate: Estate, subject_id: int) -> tuple[str, list[str], list[str]]:
    e = db.session.get(Evaluation, subject_id)
    if e is None or e.estate_id != estate.id:
        raise ValidationFailed("找不到本小区的该评价", errors={"subject_id": str(subject_id)})
    return "", [], result_lines(e)


SUBJECT_SNAPSHOTS["evaluation"] = _snapshot
