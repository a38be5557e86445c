"""Use cases of publicity: posting, documents, objections, mediation, completion (calendar upkeep in
holidays.py).

Every function takes `now`, flushes but never commits, and appends to the audit log in the caller's
transaction.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

import sqlalchemy as sa

from residents_app.audit.services import record
from residents_app.core.calendar import (
    MAX_WORKING_DAYS,
    CalendarNotCovered,
    WorkCalendar,
    beijing_date,
    publicity_last_day,
    window_end,
)
from residents_app.db import utcnow
from residents_app.errors import Conflict, DomainError, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.publicity.holidays import load_calendar
from residents_app.publicity.models import (
    OUTCOMES,
    SUBJECT_LABELS,
    SUBJECT_SNAPSHOTS,
    SUBJECT_TYPES,
    Objection,
    Publicity,
    PublicityBackdate,
    PublicityChange,
    PublicityDocument,
)
from residents_app.registry.models import Estate, Unit

log = logging.getLogger(__name__)


MAX_DOCUMENT_BYTES = 10 * 1024 * 1024


MAX_PHOTO_BYTES = 5 * 1024 * 1024


MAX_TEXT = 5000


MIN_RESULT_DAYS = 5  # 公示不少于5个工作日 (seed 001)


DOCUMENT_TYPES = {"application/pdf": "PDF", "image/png": "PNG", "image/jpeg": "JPEG"}


PHOTO_TYPES = {"image/png": "PNG", "image/jpeg": "JPEG"}


def calendar_error(exc: CalendarNotCovered) -> DomainError:
    return DomainError(str(exc), code="calendar_not_covered", status=409, errors={"year": str(exc.year)})


# ---- posting --------------------------------------------------------------------------------------

def _check_working_days(working_days) -> int:
    try:
        n = int(working_days)
    except (TypeError, ValueError):
        raise ValidationFailed("公示天数须为整数", errors={"working_days": f"“{working_days}”不是整数"}) from None
    if not 1 <= n <= MAX_WORKING_DAYS:
        raise ValidationFailed(f"公示天数须在 1 至 {MAX_WORKING_DAYS} 个工作日之间",
                               errors={"working_days": str(n)})
    return n


def compute_period(posted_on: date, working_days: int, calendar: WorkCalendar) -> tuple[date, datetime]:
    try:
        last = publicity_last_day(posted_on, working_days, calendar)
    except CalendarNotCovered as exc:
        raise calendar_error(exc) from None
    return last, window_end(last)


def _subject_snapshot(estate: Estate, subject_type: str, subject_id: int) -> tuple[str, list[str], list[str]]:
    """(unit list title, unit labels, outcome lines) for what is being published."""
    if subject_type in SUBJECT_SNAPSHOTS:
        return SUBJECT_SNAPSHOTS[subject_type](estate, subject_id)
    if subject_type == "round_result":
        from residents_app.rounds.models import Round

        rnd = db.session.get(Round, subject_id)
        if rnd is None or rnd.estate_id != estate.id:
            raise ValidationFailed("找不到本小区的该表决", errors={"subject_id": str(subject_id)})
        if rnd.status != "closed":
            raise Conflict("表决尚未结束，结果不能公示", code="round_not_closed")
        from residents_app.rounds import services as rounds_services

        labels = sorted(rounds_services.agreeing_unit_labels(subject_id), key=_label_key)
        outcome = rounds_services.round_outcome(subject_id)
        if rnd.is_survey or rnd.is_choice:  # nobody "agrees" in a survey or a choice
            return "", [], _outcome_lines(outcome)
        return "同意改造居民房号汇总表", labels, _outcome_lines(outcome)
    if subject_type == "plan_version":
        from residents_app.plans.models import PlanVersion

        plan = db.session.get(PlanVersion, subject_id)
        if plan is None or plan.estate_id != estate.id:
            raise ValidationFailed("找不到本小区的该方案版本", errors={"subject_id": str(subject_id)})
        if plan.status == "draft":
            raise Conflict("方案尚未发布，不能公示", code="plan_not_published")
        return "", [], [f"改造方案第 {plan.number} 版：{plan.title}"]
    if subject_type == "round_roll":
        return _roll_snapshot(estate, subject_id)
    if subject_type == "hardship_list":
        if subject_id != estate.id:
            raise ValidationFailed("困难群众名单的对象须为本小区", errors={"subject_id": str(subject_id)})
        units = db.session.execute(
            sa.select(Unit).where(Unit.estate_id == estate.id, Unit.is_hardship.is_(True))).scalars().all()
        labels = sorted((u.label for u in units), key=_label_key)
        return "困难群众房号名单", labels, []
    raise ValidationFailed("公示对象类型无效", errors={"subject_type": str(subject_type)})


def _roll_snapshot(estate: Estate, round_id: int) -> tuple[str, list[str], list[str]]:
    """The frozen roll of a round (DOMAIN: published for objections): unit numbers with their title areas, the
    totals and when it froze. No owner names on a public board."""
    from residents_app.formatting import format_local_dt
    from residents_app.rounds.models import Round
    from residents_app.rounds.tally import roll_entries

    rnd = db.session.get(Round, round_id)
    if rnd is None or rnd.estate_id != estate.id:
        raise ValidationFailed("找不到本小区的该表决", errors={"subject_id": str(round_id)})
    if rnd.status == "draft":
        raise Conflict("表决尚未开启，名册还没有冻结，不能公示", code="roll_not_frozen")
    entries = roll_entries(rnd.id)
    total = sum((e.area_m2 for e in entries), Decimal("0.00"))
    labels = [f"{e.label}（{e.area_m2:.2f} m²）" for e in entries]
    frozen = format_local_dt(rnd.opened_at) if rnd.opened_at else ""
    lines = [f"{rnd.title}：表决名册共 {len(entries)} 户，产权面积合计 {total:.2f} m²"
             + (f"，于 {frozen} 表决开启时冻结" if frozen else ""),
             "名册中的房号或产权面积如有错漏，请在公示期内提出异议。"]
    return "表决名册（房号 / 产权面积）", labels, lines


def _label_key(label: str):
    import re

    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", label)]


def _outcome_lines(outcome) -> list[str]:
    """Lines for the notice from what rounds.round_outcome returns (a dict with title, passed, tally)."""
    if not outcome:
        return []
    if not isinstance(outcome, dict):
        return [str(outcome)]
    lines = []
    tally = outcome.get("tally") or {}
    if "survey" in tally:  # a survey: its figures, never a verdict
        s = tally["survey"]
        rating = next((q for q in s["questions"] if q["key"] == "rating"), {})
        return [f"{outcome.get('title', '调查')}：应答 {s['response_count']} / {s['total_count']} 户，"
                f"应答率 {s['response_rate'] or '—'}，平均分 {rating.get('average') or '—'}"]
    if "choice" in tally:
        c = tally["choice"]
        lines = [f"{outcome.get('title', '表决')}：表决结果 "
                 + (f"决定采用「{c['decided_label']}」" if c["decided"] else "未决定（需重新表决）")]
        return lines + [f"{o['label']}：{o['count']}，面积 {o['area']} m²" for o in c["options"]]
    verdict = "通过" if outcome.get("passed") else "未通过"
    lines.append(f"{outcome.get('title', '表决')}：表决结果 {verdict}")
    f = tally.get("figures") or {}
    if f:
        lines.append(f"同意 {f.get('agree_count')} 户 / 共 {f.get('total_count')} 户；"
                     f"同意户的产权面积 {f.get('agree_area')} m² / 总面积 {f.get('total_area')} m²；"
                     f"参与表决 {f.get('voted_count')} 户")
    for c in tally.get("conditions") or []:
        unit = "户" if c.get("measure") == "count" else " m²"
        lines.append(f"{c.get('label')}：{c.get('value')}{unit} / {c.get('denominator')}{unit}，"
                     f"要求 {c.get('required')}，{'已达到' if c.get('met') else '未达到'}")
    return lines


def _check_posting_day(subject_type: str, subject_id: int, posted_on: date, today: date, reason: str) -> str:
    """No backdating: a round result is not posted before the day it exists (the round's close, Beijing
    time); any posting day before today needs a reason, which is stored and flagged on the desk."""
    if subject_type == "round_result":
        from residents_app.rounds.models import Round

        rnd = db.session.get(Round, subject_id)
        result_day = beijing_date(rnd.closed_at) if rnd is not None and rnd.closed_at else None
        if result_day is not None and posted_on < result_day:
            msg = (f"表决「{rnd.title}」的结果于 {result_day.isoformat()} 产生，"
                   f"公示张贴日期 {posted_on.isoformat()} 不能早于该日")
            raise ValidationFailed(msg, code="posted_before_result", errors={"posted_on": msg})
    reason = (reason or "").strip()
    if posted_on < today and not reason:
        msg = f"张贴日期 {posted_on.isoformat()} 早于今天（{today.isoformat()}），补录公示须写明理由"
        raise ValidationFailed(msg, code="backdate_reason_required", errors={"backdate_reason": msg})
    if len(reason) > 500:
        raise ValidationFailed("补录理由不能超过 500 个字", errors={"backdate_reason": "过长"})
    return reason if posted_on < today else ""


def post_publicity(estate: Estate, *, subject_type: str, subject_id, title: str, notice_text: str,
                   posted_on: date, working_days=5, actor: str, now: datetime,
                   calendar: WorkCalendar | None = None, backdate_reason: str = "") -> Publicity:
    errors = {}
    if subject_type not in SUBJECT_TYPES:
        errors["subject_type"] = "须为：表决结果、改造方案、困难群众名单或表决名册"
    try:
        subject_id = int(subject_id)
    except (TypeError, ValueError):
        errors["subject_id"] = "须为编号（整数）"
    title = (title or "").strip()
    notice_text = (notice_text or "").strip()
    if not title:
        errors["title"] = "请填写公示标题"
    elif len(title) > 200:
        errors["title"] = "标题不能超过 200 个字"
    if not notice_text:
        errors["notice_text"] = "请填写公示书内容"
    elif len(notice_text) > 20000:
        errors["notice_text"] = "公示书不能超过 20000 个字"
    today = beijing_date(now)
    if not isinstance(posted_on, date):
        errors["posted_on"] = "请填写张贴日期"
    elif posted_on < today - timedelta(days=7) or posted_on > today + timedelta(days=30):
        errors["posted_on"] = "张贴日期须在今天之前 7 天至之后 30 天以内"
    if errors:
        raise ValidationFailed("公示信息有误：" + "；".join(f"{k}：{v}" for k, v in errors.items()), errors=errors)
    working_days = _check_working_days(working_days)
    if subject_type == "round_result" and working_days < MIN_RESULT_DAYS:
        raise ValidationFailed(f"表决结果公示不少于 {MIN_RESULT_DAYS} 个工作日（鹿城区实施办法）",
                               errors={"working_days": str(working_days)})
    active = db.session.execute(sa.select(Publicity).where(
        Publicity.subject_type == subject_type, Publicity.subject_id == subject_id,
        Publicity.estate_id == estate.id, Publicity.status != "completed")).scalar_one_or_none()
    if active is not None:
        raise Conflict(f"该{SUBJECT_LABELS[subject_type]}已有一个进行中的公示（#{active.id}）", code="publicity_exists")
    unit_title, labels, lines = _subject_snapshot(estate, subject_type, subject_id)
    backdate_reason = _check_posting_day(subject_type, subject_id, posted_on, today, backdate_reason)
    last_day, ends_at = compute_period(posted_on, working_days, calendar or load_calendar())
    pub = Publicity(
        estate_id=estate.id, subject_type=subject_type, subject_id=subject_id, title=title,
        notice_text=notice_text, unit_list_title=unit_title, unit_labels=labels, outcome_lines=lines,
        posted_on=posted_on, working_days=working_days, last_day=last_day, ends_at=ends_at,
        backdate=PublicityBackdate(reason=backdate_reason) if backdate_reason else None,
        status="posted", created_by=actor, created_at=now,
    )
    db.session.add(pub)
    db.session.flush()
    record("publicity.posted", chain=estate.id, actor=actor, now=now, subject_type="publicity", subject_id=pub.id,
           data={"subject_type": subject_type, "subject_id": subject_id, "title": title,
                 "posted_on": posted_on.isoformat(), "working_days": working_days,
                 "last_day": last_day.isoformat(), "unit_labels": labels,
                 **({"backdate_reason": backdate_reason} if backdate_reason else {})})
    return pub


def publishable_subjects(estate: Estate) -> list[tuple[str, str]]:
    """(value "type:id", label) of what the committee may publish now: closed rounds, published
    plan versions, the hardship list, the frozen rolls of opened rounds."""
    from residents_app.plans.models import PlanVersion
    from residents_app.rounds.models import Round

    out = []
    for r in db.session.execute(sa.select(Round).where(Round.estate_id == estate.id, Round.status == "closed")
                                .order_by(Round.id.desc())).scalars():
        out.append((f"round_result:{r.id}", f"表决结果：{r.title}（#{r.id}）"))
    for p in db.session.execute(sa.select(PlanVersion).where(PlanVersion.estate_id == estate.id,
                                                             PlanVersion.status != "draft")
                                .order_by(PlanVersion.number.desc())).scalars():
        out.append((f"plan_version:{p.id}", f"改造方案第 {p.number} 版：{p.title}"))
    out.append((f"hardship_list:{estate.id}", "困难群众名单"))
    for r in db.session.execute(sa.select(Round).where(Round.estate_id == estate.id, Round.status != "draft")
                                .order_by(Round.id.desc())).scalars():
        out.append((f"round_roll:{r.id}", f"表决名册：{r.title}（#{r.id}）"))
    return out


def sniff_type(data: bytes) -> str | None:
    from residents_app.uploads import sniff_mime

    return sniff_mime(data)


def _safe_filename(name: str) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '<>:"|?*')
    return name[:200] or "文件"


def add_document(pub: Publicity, filename: str, data: bytes, *, actor: str, now: datetime) -> PublicityDocument:
    """A PDF / PNG / JPEG up to 10 MB; the type is read from the content, not from the name."""
    if pub.is_completed:
        raise Conflict("公示已结束，不能再添加文件", code="publicity_completed")
    name = _safe_filename(filename)
    if not data:
        raise ValidationFailed(f"文件“{name}”是空的", errors={"documents": name})
    if len(data) > MAX_DOCUMENT_BYTES:
        raise ValidationFailed(f"文件“{name}”超过 10 MB（{len(data) // 1024} KB）", errors={"documents": name})
    ctype = sniff_type(data)
    if ctype not in DOCUMENT_TYPES:
        raise ValidationFailed(f"文件“{name}”不是 PDF、PNG 或 JPEG 格式", errors={"documents": name})
    doc = PublicityDocument(publicity_id=pub.id, filename=name, content_type=ctype, size_bytes=len(data),
                            sha256=hashlib.sha256(data).hexdigest(), data=data, uploaded_by=actor,
                            uploaded_at=now)
    db.session.add(doc)
    db.session.flush()
    record("publicity.document_added", chain=pub.estate_id, actor=actor, now=now, subject_type="publicity",
           subject_id=pub.id, data={"document_id": doc.id, "filename": name, "sha256": doc.sha256,
                                    "size_bytes": len(data)})
    return doc


def raise_objection(pub: Publicity, *, unit: Unit, owner, text: str, photo: bytes | None, now: datetime
                    ) -> Objection:
    if pub.estate_id != unit.estate_id:
        raise NotFound("找不到该公示")
    # Lock the period so the scheduler cannot end it between this check and the insert.
    pub = db.session.execute(sa.select(Publicity).where(Publicity.id == pub.id).with_for_update()
                             .execution_options(populate_existing=True)).scalar_one()
    if not pub.is_open_at(now):
        if pub.is_completed or now >= pub.ends_at:
            raise Conflict("该公示已结束，不能再提出异议", code="publicity_closed")
        raise Conflict("该公示尚未开始", code="publicity_not_started")
    text = (text or "").strip()
    if not text:
        raise ValidationFailed("请写明异议内容", errors={"text": "不能为空"})
    if len(text) > MAX_TEXT:
        raise ValidationFailed(f"异议内容不能超过 {MAX_TEXT} 个字（现有 {len(text)} 个）", errors={"text": "过长"})
    photo_type = None
    if photo:
        if len(photo) > MAX_PHOTO_BYTES:
            raise ValidationFailed("照片不能超过 5 MB", errors={"photo": f"{len(photo) // 1024} KB"})
        photo_type = sniff_type(photo)
        if photo_type not in PHOTO_TYPES:
            raise ValidationFailed("照片须为 JPEG 或 PNG 格式", errors={"photo": "格式不支持"})
    obj = Objection(publicity_id=pub.id, estate_id=pub.estate_id, unit_id=unit.id, owner_id=owner.id, text=text,
                    photo=photo or None, photo_type=photo_type, raised_at=now, status="open")
    db.session.add(obj)
    db.session.flush()
    record("objection.raised", chain=pub.estate_id, actor=f"unit:{unit.id}/owner:{owner.id}", now=now,
           subject_type="objection", subject_id=obj.id,
           data={"publicity_id": pub.id, "unit": unit.label, "text": text, "has_photo": photo_type is not None})
    return obj


def withdraw_own_objection(obj: Objection, *, unit: Unit, owner, now: datetime) -> None:
    """The resident withdraws their own open objection."""
    if obj.unit_id != unit.id:
        raise NotFound("找不到该异议")
    obj.resolve("withdrawn", "居民本人撤回", "", now, f"unit:{unit.id}/owner:{owner.id}")
    db.session.flush()
    record("objection.withdrawn", chain=obj.estate_id, actor=f"unit:{unit.id}/owner:{owner.id}", now=now,
           subject_type="objection", subject_id=obj.id, data={"publicity_id": obj.publicity_id})


def mediate(obj: Objection, *, outcome: str, notes: str, answer: str = "", action: str = "none",
            extra_days=None, reason: str = "", actor: str, now: datetime,
            calendar: WorkCalendar | None = None) -> Objection:
    """Record the mediation (协商调解) and its outcome; an upheld objection may extend or restart."""
    notes = (notes or "").strip()
    answer = (answer or "").strip()
    errors = {}
    if outcome not in OUTCOMES:
        errors["outcome"] = "须为：已撤回、已答复或异议成立"
    if not notes:
        errors["notes"] = "请记录协商调解经过"
    if outcome == "answered" and not answer:
        errors["answer"] = "答复异议须填写答复内容"
    if action not in ("none", "extend", "restart"):
        errors["action"] = "须为：不调整、延长或重新公示"
    elif action != "none" and outcome != "upheld":
        errors["action"] = "只有异议成立时才能延长或重新公示"
    if errors:
        raise ValidationFailed("处理异议的信息有误：" + "；".join(errors.values()), errors=errors)
    if action != "none":  # check before changing anything
        _check_reason(reason)
    if action == "extend":
        _check_working_days(extra_days)
    pub = obj.publicity
    if pub.is_completed:
        raise Conflict("公示已结束，不能再处理其中的异议", code="publicity_completed")
    obj.resolve(outcome, notes, answer, now, actor)
    db.session.flush()
    record("objection.mediated", chain=obj.estate_id, actor=actor, now=now, subject_type="objection",
           subject_id=obj.id, data={"publicity_id": pub.id, "outcome": outcome, "notes": notes, "answer": answer})
    if action == "extend":
        extend_publicity(pub, extra_days, reason, actor=actor, now=now, objection=obj, calendar=calendar)
    elif action == "restart":
        restart_publicity(pub, reason, actor=actor, now=now, objection=obj, calendar=calendar)
    return obj


def _check_reason(reason: str) -> str:
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("延长或重新公示必须写明理由", errors={"reason": "不能为空"})
    if len(reason) > 2000:
        raise ValidationFailed("理由不能超过 2000 个字", errors={"reason": "过长"})
    return reason


def extend_publicity(pub: Publicity, extra_days, reason: str, *, actor: str, now: datetime,
                     objection: Objection | None = None, calendar: WorkCalendar | None = None) -> PublicityChange:
    """N more working days after the current last day (or after today, if that is later)."""
    if pub.is_completed:
        raise Conflict("公示已结束，不能延长", code="publicity_completed")
    reason = _check_reason(reason)
    n = _check_working_days(extra_days)
    base = max(pub.last_day, beijing_date(now))
    last_day, ends_at = compute_period(base, n, calendar or load_calendar())
    change = PublicityChange(publicity_id=pub.id, objection_id=objection.id if objection else None, kind="extend",
                             reason=reason, extra_working_days=n, old_posted_on=pub.posted_on,
                             old_last_day=pub.last_day, new_posted_on=pub.posted_on, new_last_day=last_day,
                             actor=actor, at=now)
    db.session.add(change)
    pub.last_day, pub.ends_at, pub.status = last_day, ends_at, "extended"
    db.session.flush()
    record("publicity.extended", chain=pub.estate_id, actor=actor, now=now, subject_type="publicity",
           subject_id=pub.id, data={"extra_working_days": n, "old_last_day": change.old_last_day.isoformat(),
                                    "new_last_day": last_day.isoformat(), "reason": reason,
                                    "objection_id": change.objection_id})
    return change


def restart_publicity(pub: Publicity, reason: str, *, actor: str, now: datetime, objection: Objection | None = None,
                      calendar: WorkCalendar | None = None) -> PublicityChange:
    """A new full period counted from today (the corrected notice is posted again today)."""
    if pub.is_completed:
        raise Conflict("公示已结束，不能重新公示", code="publicity_completed")
    reason = _check_reason(reason)
    today = beijing_date(now)
    last_day, ends_at = compute_period(today, pub.working_days, calendar or load_calendar())
    change = PublicityChange(publicity_id=pub.id, objection_id=objection.id if objection else None, kind="restart",
                             reason=reason, extra_working_days=0, old_posted_on=pub.posted_on,
                             old_last_day=pub.last_day, new_posted_on=today, new_last_day=last_day,
                             actor=actor, at=now)
    db.session.add(change)
    pub.posted_on, pub.last_day, pub.ends_at, pub.status = today, last_day, ends_at, "extended"
    pub.started_notice_queued = False
    db.session.flush()
    record("publicity.restarted", chain=pub.estate_id, actor=actor, now=now, subject_type="publicity",
           subject_id=pub.id, data={"old_posted_on": change.old_posted_on.isoformat(),
                                    "new_posted_on": today.isoformat(), "new_last_day": last_day.isoformat(),
                                    "reason": reason, "objection_id": change.objection_id})
    return change


def complete_publicity(pub: Publicity, *, actor: str, now: datetime) -> None:
    pub.complete(now, actor)
    db.session.flush()
    record("publicity.completed", chain=pub.estate_id, actor=actor, now=now, subject_type="publicity",
           subject_id=pub.id, data={"last_day": pub.last_day.isoformat(), "posted_on": pub.posted_on.isoformat(),
                                    "objections": len(pub.objections)})


def publicity_due(now: datetime) -> list[tuple[int, datetime]]:
    """(id, ends_at) of periods past their end, not completed, in order of their end."""
    rows = db.session.execute(
        sa.select(Publicity.id, Publicity.ends_at)
        .where(Publicity.status != "completed", Publicity.ends_at <= now)
        .order_by(Publicity.ends_at, Publicity.id)).all()
    return [(r.id, r.ends_at) for r in rows]


def end_publicity_if_due(publicity_id: int, now: datetime, actor: str = "system:scheduler") -> bool:
    """Complete one period if it is over and has no open objection. Row-locked; True if it acted."""
    pub = db.session.execute(
        sa.select(Publicity).where(Publicity.id == publicity_id).with_for_update()
        .execution_options(populate_existing=True)).scalar_one_or_none()
    if pub is None or pub.is_completed or now < pub.ends_at:
        return False
    db.session.refresh(pub, ["objections"])
    if pub.open_objections:
        return False
    complete_publicity(pub, actor=actor, now=now)
    return True


def get_publicity(publicity_id: int) -> Publicity:
    pub = db.session.get(Publicity, publicity_id)
    if pub is None:
        raise NotFound("找不到该公示")
    return pub


def estate_publicity(estate_id: int) -> list[Publicity]:
    return db.session.execute(sa.select(Publicity).where(Publicity.estate_id == estate_id)
                              .order_by(Publicity.posted_on.desc(), Publicity.id.desc())).scalars().all()


def board(estate_id: int, now: datetime) -> dict:
    """What the public notice board shows: current (posted, not completed) and past periods."""
    items = estate_publicity(estate_id)
    today = beijing_date(now)
    return {
        "current": [p for p in items if not p.is_completed and p.posted_on <= today],
        "upcoming": [p for p in items if not p.is_completed and p.posted_on > today],
        "past": [p for p in items if p.is_completed],
    }


def period_text(pub: Publicity, calendar: WorkCalendar | None = None) -> str:
    """公示期：2026-09-30 至 2026-10-12（5个工作日）: from the first working day after posting."""
    try:
        first = publicity_last_day(pub.posted_on, 1, calendar or load_calendar())
    except CalendarNotCovered:
        first = pub.posted_on + timedelta(days=1)
    days = pub.working_days
    extra = sum(c.extra_working_days for c in pub.changes if c.kind == "extend" and c.new_posted_on == pub.posted_on)
    if extra:
        return f"公示期：{first:%Y-%m-%d} 至 {pub.last_day:%Y-%m-%d}（{days}个工作日，另延长{extra}个工作日）"
    return f"公示期：{first:%Y-%m-%d} 至 {pub.last_day:%Y-%m-%d}（{days}个工作日）"


def objections_of_unit(unit_id: int) -> list[Objection]:
    return db.session.execute(sa.select(Objection).where(Objection.unit_id == unit_id)
                              .order_by(Objection.id.desc())).scalars().all()


def subject_estate_id(subject_type: str, subject_id: int) -> int | None:
    """The estate a publicity subject belongs to, or None when there is no such subject (a subject removed
    since its publicity still belongs to that publicity's estate)."""
    subject = None
    if subject_type == "hardship_list":
        subject = db.session.get(Estate, subject_id)
        return subject.id if subject is not None else None
    if subject_type in ("round_result", "round_roll"):
        from residents_app.rounds.models import Round

        subject = db.session.get(Round, subject_id)
    elif subject_type == "plan_version":
        from residents_app.plans.models import PlanVersion

        subject = db.session.get(PlanVersion, subject_id)
    if subject is not None:
        return subject.estate_id
    return db.session.execute(sa.select(Publicity.estate_id).where(
        Publicity.subject_type == subject_type, Publicity.subject_id == subject_id).limit(1)).scalar_one_or_none()


def publicity_status(subject_type: str, subject_id: int, now: datetime | None = None) -> dict:
    """For the plans feature: the latest publicity of a subject.

    {"posted": bool, "ended": bool, "open_objections": int, "reasons_not_complete": [str]}
    `ended` is True once the period was completed (end reached with every objection resolved).
    """
    now = now or utcnow()
    pub = db.session.execute(
        sa.select(Publicity).where(Publicity.subject_type == subject_type, Publicity.subject_id == int(subject_id))
        .order_by(Publicity.id.desc()).limit(1)).scalar_one_or_none()
    if pub is None:
        label = SUBJECT_LABELS.get(subject_type, subject_type)
        return {"posted": False, "ended": False, "open_objections": 0,
                "reasons_not_complete": [f"该{label}尚未公示"], "publicity_id": None}
    reasons = [] if pub.is_completed else pub.reasons_not_complete(now)
    if not pub.is_completed and not reasons:
        reasons = ["公示期已届满，等待系统结束公示（每分钟自动处理）"]
    return {"posted": True, "ended": pub.is_completed, "open_objections": len(pub.open_objections),
            "reasons_not_complete": reasons, "publicity_id": pub.id}
