"""The joint completion acceptance (共同验收): open it with its participants, record problems as rectification
items, sign (online or a paper scan confirmed by a second person), close items; it passes by itself once every
participant has signed and no item is open. Services flush, never commit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.core.calendar import beijing_date
from residents_app.errors import Forbidden, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.publicity import services as publicity_svc
from residents_app.publicity.models import SUBJECT_SNAPSHOTS, Publicity
from residents_app.registry.models import Estate
from residents_app.works.acceptance.models import ROLE_LABELS, ROLES, Acceptance, AcceptanceIssue, AcceptanceParticipant
from residents_app.works.construction import services as construction
from residents_app.works.construction.models import Party


@dataclass
class ParticipantInput:
    role: str
    organisation: str
    name: str
    user_id: int | None = None
    party_id: int | None = None  # one of the project's construction parties


def _text(value, field: str, label: str, limit: int, errors: dict, required: bool = True) -> str:
    value = (value or "").strip()
    if required and not value:
        errors[field] = f"请填写{label}"
    elif len(value) > limit:
        errors[field] = f"{label}不能超过 {limit} 个字"
    return value


def acceptances_of(estate_id: int) -> list[Acceptance]:
    return list(db.session.execute(sa.select(Acceptance).where(Acceptance.estate_id == estate_id)
                                   .order_by(Acceptance.id.desc())).scalars())


def get_acceptance(acceptance_id: int) -> Acceptance:
    acc = db.session.get(Acceptance, acceptance_id)
    if acc is None:
        raise NotFound("找不到该验收")
    return acc


def open_acceptance(estate: Estate, *, title: str, held_on: date, place: str, participants: list[ParticipantInput],
                    user, now: datetime) -> Acceptance:
    errors: dict = {}
    title = _text(title, "title", "验收名称", 200, errors)
    place = _text(place, "place", "验收地点", 200, errors, required=False)
    if not isinstance(held_on, date):
        errors["held_on"] = "请填写验收日期"
    rows = []
    project = construction.project_of(estate.id)
    for n, p in enumerate(participants, start=1):
        if not (p.organisation or "").strip() and not (p.name or "").strip():
            continue  # a blank line of the form
        if p.role not in ROLES:
            errors[f"p{n}.role"] = "未知的参加单位类别"
            continue
        org = _text(p.organisation, f"p{n}.organisation", f"{ROLE_LABELS[p.role]}的单位名称", 200, errors)
        name = _text(p.name, f"p{n}.name", f"{ROLE_LABELS[p.role]}的签字人", 100, errors)
        party_id, user_id = _party_link(p, project, f"p{n}.party", errors)
        rows.append(AcceptanceParticipant(role=p.role, organisation=org, name=name, user_id=user_id,
                                          party_id=party_id))
    if not rows:
        errors["participants"] = "请至少登记一个参加验收的单位"
    if errors:
        raise ValidationFailed("验收信息有误：" + "；".join(errors.values()), errors=errors)
    acc = Acceptance(estate_id=estate.id, title=title, held_on=held_on, place=place, status="open",
                     opened_by_id=user.id, opened_at=now, participants=rows)
    db.session.add(acc)
    db.session.flush()
    record("acceptance.opened", chain=estate.id, actor=actor_for_user(user), now=now, subject_type="acceptance",
           subject_id=acc.id, data={"title": title, "held_on": held_on.isoformat(),
                                    "participants": [{"role": r.role, "organisation": r.organisation,
                                                      "name": r.name} for r in rows]})
    return acc


def _party_link(p: ParticipantInput, project, field: str, errors: dict) -> tuple[int | None, int | None]:
    """(party_id, user_id) of a participant: a party (given, or found from its `party` account) must be one of
    this estate's current project; its account is the one that signs online."""
    party = None
    if p.party_id is not None:
        party = db.session.get(Party, p.party_id)
        if party is None or project is None or party.start_application_id != project.id:
            errors[field] = "该单位不是本项目的参建单位"
            return None, None
    elif p.user_id is not None:
        party = db.session.execute(sa.select(Party).where(Party.user_id == p.user_id)).scalar_one_or_none()
        if party is not None and (project is None or party.start_application_id != project.id):
            errors[field] = "该参建单位账号不属于本小区当前的改造项目"
            return None, None
    if party is None:
        return None, p.user_id
    if p.user_id is not None and party.user_id != p.user_id:
        errors[field] = "签字账号与参建单位的账号不一致"
        return None, None
    return party.id, party.user_id


def require_party_of_project(acc: Acceptance, user) -> None:
    """A `party` account sees and signs only the acceptance of its own project (404 otherwise)."""
    if getattr(user, "role", None) != "party":
        return
    party = construction.party_of_user(user)
    project = construction.project_of(acc.estate_id)
    if party is None or project is None or party.start_application_id != project.id:
        raise NotFound("找不到该验收")


def participant_of(acc: Acceptance, participant_id: int) -> AcceptanceParticipant:
    for p in acc.participants:
        if p.id == participant_id:
            return p
    raise NotFound("找不到该参加单位")


def _maybe_pass(acc: Acceptance, *, actor: str, now: datetime) -> None:
    if acc.status == "open" and not acc.reasons_not_passed():
        acc.status = "passed"
        acc.passed_at = now
        db.session.flush()
        record("acceptance.passed", chain=acc.estate_id, actor=actor, now=now, subject_type="acceptance",
               subject_id=acc.id, data={"signatures": [
                   {"role": p.role, "name": p.name, "method": p.signature_method,
                    "signed_at": p.signed_at.isoformat()} for p in acc.participants],
                   "issues": len(acc.issues)})


def sign_online(acc: Acceptance, participant_id: int, *, user, opinion: str, now: datetime) -> AcceptanceParticipant:
    require_party_of_project(acc, user)
    acc.require_open()
    p = participant_of(acc, participant_id)
    p.sign_online(user_id=user.id, now=now, opinion=(opinion or "").strip()[:2000])
    db.session.flush()
    record("acceptance.signed", chain=acc.estate_id, actor=actor_for_user(user), now=now,
           subject_type="acceptance", subject_id=acc.id,
           data={"participant_id": p.id, "role": p.role, "name": p.name, "method": "online"})
    _maybe_pass(acc, actor=actor_for_user(user), now=now)
    return p


def enter_paper_signature(acc: Acceptance, participant_id: int, *, data: bytes, filename: str, content_type: str,
                          opinion: str, user, now: datetime) -> AcceptanceParticipant:
    acc.require_open()
    if user.role not in ("committee", "admin"):
        raise Forbidden("纸质签字扫描件由业委会录入", code="committee_only")
    p = participant_of(acc, participant_id)
    sha = hashlib.sha256(data).hexdigest()
    p.enter_scan(user_id=user.id, now=now, filename=filename[:200], content_type=content_type, data=data,
                 sha256=sha, opinion=(opinion or "").strip()[:2000])
    db.session.flush()
    record("acceptance.scan_entered", chain=acc.estate_id, actor=actor_for_user(user), now=now,
           subject_type="acceptance", subject_id=acc.id,
           data={"participant_id": p.id, "role": p.role, "name": p.name, "scan_sha256": sha})
    return p


def confirm_paper_signature(acc: Acceptance, participant_id: int, *, user, now: datetime) -> AcceptanceParticipant:
    acc.require_open()
    if user.role not in ("committee", "admin"):
        raise Forbidden("纸质签字扫描件由业委会另一位成员核对确认", code="committee_only")
    p = participant_of(acc, participant_id)
    p.confirm_scan(user_id=user.id, now=now)
    db.session.flush()
    record("acceptance.signed", chain=acc.estate_id, actor=actor_for_user(user), now=now,
           subject_type="acceptance", subject_id=acc.id,
           data={"participant_id": p.id, "role": p.role, "name": p.name, "method": "paper",
                 "scan_sha256": p.scan_sha256})
    _maybe_pass(acc, actor=actor_for_user(user), now=now)
    return p


def add_issue(acc: Acceptance, *, description: str, owner: str, due_on: date, user, now: datetime,
              owner_party_id: int | None = None) -> AcceptanceIssue:
    """A rectification item; its owner is named, or is one of the project's parties (reminded when overdue)."""
    acc.require_open()
    errors: dict = {}
    description = _text(description, "description", "问题描述", 2000, errors)
    party = None
    if owner_party_id is not None:
        party = db.session.get(Party, owner_party_id)
        project = construction.project_of(acc.estate_id)
        if party is None or project is None or party.start_application_id != project.id:
            errors["owner_party_id"] = "该单位不是本项目的参建单位"
            party = None
        elif not (owner or "").strip():
            owner = party.name
    owner = _text(owner, "owner", "整改责任单位", 200, errors)
    if not isinstance(due_on, date):
        errors["due_on"] = "请填写整改期限"
    elif due_on < beijing_date(now):
        errors["due_on"] = "整改期限不能早于今天"
    elif due_on > beijing_date(now) + timedelta(days=366):
        errors["due_on"] = "整改期限不能超过一年"
    if errors:
        raise ValidationFailed("整改项有误：" + "；".join(errors.values()), errors=errors)
    issue = AcceptanceIssue(number=len(acc.issues) + 1, description=description, owner=owner, due_on=due_on,
                            owner_party_id=party.id if party else None, status="open", created_at=now,
                            created_by_id=user.id)
    acc.issues.append(issue)
    db.session.flush()
    record("acceptance.issue_added", chain=acc.estate_id, actor=actor_for_user(user), now=now,
           subject_type="acceptance", subject_id=acc.id,
           data={"number": issue.number, "owner": owner, "due_on": due_on.isoformat(), "description": description})
    return issue


def close_issue(acc: Acceptance, issue_id: int, *, note: str, user, now: datetime) -> AcceptanceIssue:
    acc.require_open()
    issue = next((i for i in acc.issues if i.id == issue_id), None)
    if issue is None:
        raise NotFound("找不到该整改项")
    issue.close(user_id=user.id, now=now, note=note or "")
    db.session.flush()
    record("acceptance.issue_closed", chain=acc.estate_id, actor=actor_for_user(user), now=now,
           subject_type="acceptance", subject_id=acc.id, data={"number": issue.number, "note": issue.closing_note})
    _maybe_pass(acc, actor=actor_for_user(user), now=now)
    return issue


def publicity_of(acc: Acceptance) -> Publicity | None:
    return db.session.execute(sa.select(Publicity).where(
        Publicity.subject_type == "acceptance", Publicity.subject_id == acc.id)
        .order_by(Publicity.id.desc())).scalars().first()


def post_acceptance_publicity(acc: Acceptance, estate: Estate, *, posted_on: date, user, now: datetime,
                              working_days: int = 5, calendar_=None) -> Publicity:
    if acc.status != "passed":
        raise ValidationFailed("验收尚未通过，不能公示：" + "；".join(acc.reasons_not_passed()),
                               errors={"acceptance": "未通过"})
    notice = (f"{estate.name}改造工程已于 {acc.held_on.isoformat()} 组织共同验收，参加验收的 {len(acc.participants)} "
              f"方均已签字，验收中发现的 {len(acc.issues)} 项问题均已整改完毕。现将验收结果公示如下，"
              f"如有异议，请在公示期内向业委会或街道提出。")
    return publicity_svc.post_publicity(
        estate, subject_type="acceptance", subject_id=acc.id, title=f"{estate.name} {acc.title}结果公示",
        notice_text=notice, posted_on=posted_on, working_days=working_days, actor=actor_for_user(user), now=now,
        calendar=calendar_)


def snapshot_lines(acc: Acceptance) -> list[str]:
    lines = [f"验收：{acc.title}（{acc.held_on.isoformat()}）", f"结论：{acc.status_label}"]
    for p in acc.participants:
        lines.append(f"{p.role_label}：{p.organisation}（{p.method_label}）")
    for i in acc.issues:
        lines.append(f"整改 #{i.number}：{i.description}（{i.owner}，{i.status_label}）")
    return lines


def _snapshot(estate: Estate, subject_id: int) -> tuple[str, list[str], list[str]]:
    acc = db.session.get(Acceptance, subject_id)
    if acc is None or acc.estate_id != estate.id:
        raise ValidationFailed("找不到本小区的该验收", errors={"subject_id": str(subject_id)})
    return "", [], snapshot_lines(acc)


SUBJECT_SNAPSHOTS["acceptance"] = _snapshot
