"""Use cases of rounds and ballots. Services take `now`, flush, raise DomainError; views commit.

Public functions other features call (names fixed):
    rounds_due_to_open(now) -> list[int]
    rounds_due_to_close(now) -> list[int]
    open_round(round_id, now, actor) -> bool          idempotent, row locked
    close_round(round_id, now, actor) -> bool         idempotent, row locked, stores RoundResult
    round_outcome(round_id) -> dict | None            stored final tally and passed
    agreeing_unit_labels(round_id) -> list[str]       unit numbers only ("1幢-101")
    compute_tally(round_id, now) -> Tally             live tally (SQL aggregate)
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from flask import current_app

from residents_app.audit.services import new_receipt, record
from residents_app.auth import identity
from residents_app.core import thresholds as th
from residents_app.errors import Conflict, DomainError, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.registry.models import Building, Owner, Ownership, Unit, UnitLink
from residents_app.rounds import castpath
from residents_app.rounds.models import (
    DEFAULT_OPTIONS,
    ROUND_KINDS,
    Ballot,
    CurrentBallot,
    ProxyMandate,
    RollEntry,
    Round,
    RoundFile,
    RoundResult,
)

log = logging.getLogger(__name__)

SYSTEM_ACTOR = "system:scheduler"
SCAN_MAX_BYTES = 10 * 1024 * 1024


# ---- helpers ---------------------------------------------------------------------------------

def get_round(round_id: int) -> Round:
    rnd = db.session.get(Round, round_id)
    if rnd is None:
        raise NotFound("找不到该表决")
    return rnd


def _lock_round(round_id: int) -> Round | None:
    # FOR UPDATE on PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE already.
    return db.session.execute(
        sa.select(Round).where(Round.id == round_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()


def _dialect() -> str:
    return db.session.get_bind().dialect.name


def owner_actor(unit_id: int, owner_id: int) -> str:
    return f"unit:{unit_id}/owner:{owner_id}"


# ---- round definition ------------------------------------------------------------------------

@dataclass
class RoundInput:
    kind: str
    title: str
    opens_at: datetime
    closes_at: datetime
    description: str = ""
    rule_preset: str = "lucheng_double_two_thirds"
    counting_mode: str = "household"
    scope_building_ids: list[int] | None = None
    item_menu: list[dict] | None = None
    plan_version_id: int | None = None
    results_visibility: str = "live"


def _validate_round_input(estate_id: int, data: RoundInput) -> dict:
    errors = {}
    if data.kind not in ROUND_KINDS:
        errors["kind"] = "请选择表决类型"
    if not data.title.strip():
        errors["title"] = "请填写标题"
    elif len(data.title) > 200:
        errors["title"] = "标题不能超过 200 字"
    if data.rule_preset not in th.PRESETS:
        errors["rule_preset"] = "请选择表决规则"
    if data.counting_mode not in th.COUNTING_MODES:
        errors["counting_mode"] = "请选择计数方式（按户或按人）"
    if data.results_visibility not in ("live", "hidden"):
        errors["results_visibility"] = "请选择结果是否实时公开"
    if data.opens_at.tzinfo is None or data.closes_at.tzinfo is None:
        errors["opens_at"] = "时间必须带时区"
    elif data.closes_at <= data.opens_at:
        errors["closes_at"] = "截止时间必须晚于开始时间"
    scope = sorted(set(data.scope_building_ids or []))
    if scope:
        found = set(db.session.execute(
            sa.select(Building.id).where(Building.estate_id == estate_id, Building.id.in_(scope))).scalars())
        if found != set(scope):
            errors["scope_building_ids"] = "所选楼栋不属于本小区"
    menu = []
    for i, item in enumerate(data.item_menu or []):
        label = str(item.get("label", "")).strip()
        if not label:
            errors[f"item_menu[{i}]"] = "改造项目名称不能为空"
            continue
        menu.append({"key": str(item.get("key") or f"item{i + 1}"), "label": label[:100],
                     "category": str(item.get("category", ""))[:20]})
    if data.kind != "willingness" and menu:
        errors["item_menu"] = "只有改造意愿征求可以设置改造项目清单"
    if data.kind == "plan_vote" and data.plan_version_id is None:
        errors["plan_version_id"] = "方案表决必须选择一个方案版本"
    if data.plan_version_id is not None:
        from residents_app.plans.models import PlanVersion

        version = db.session.get(PlanVersion, data.plan_version_id)
        if version is None or version.estate_id != estate_id:
            errors["plan_version_id"] = "所选方案版本不属于本小区"
    if errors:
        raise ValidationFailed("表决设置有误，请检查标出的项目", errors=errors)
    return {"scope_building_ids": scope, "item_menu": menu}


def create_round(estate_id: int, data: RoundInput, now: datetime, user=None) -> Round:
    clean = _validate_round_input(estate_id, data)
    rnd = Round(
        estate_id=estate_id, kind=data.kind, title=data.title.strip(), description=data.description.strip(),
        rule_preset=data.rule_preset, counting_mode=data.counting_mode,
        scope_building_ids=clean["scope_building_ids"], item_menu=clean["item_menu"],
        options=[{"key": k, "label": v} for k, v in DEFAULT_OPTIONS[data.kind]],
        plan_version_id=data.plan_version_id, results_visibility=data.results_visibility,
        status="draft", opens_at=data.opens_at, closes_at=data.closes_at, created_at=now,
        created_by_id=getattr(user, "id", None),
    )
    db.session.add(rnd)
    db.session.flush()
    castpath.forget_round(rnd.id)
    record("round.created", chain=estate_id, actor=_actor(user), now=now, subject_type="round",
           subject_id=rnd.id, data={"title": rnd.title, "kind": rnd.kind, "rule_preset": rnd.rule_preset})
    return rnd


def update_round(round_id: int, data: RoundInput, now: datetime, user=None) -> Round:
    rnd = get_round(round_id)
    rnd.ensure_editable()
    clean = _validate_round_input(rnd.estate_id, data)
    rnd.kind, rnd.title, rnd.description = data.kind, data.title.strip(), data.description.strip()
    rnd.rule_preset, rnd.counting_mode = data.rule_preset, data.counting_mode
    rnd.scope_building_ids, rnd.item_menu = clean["scope_building_ids"], clean["item_menu"]
    rnd.options = [{"key": k, "label": v} for k, v in DEFAULT_OPTIONS[data.kind]]
    rnd.plan_version_id, rnd.results_visibility = data.plan_version_id, data.results_visibility
    rnd.opens_at, rnd.closes_at = data.opens_at, data.closes_at
    db.session.flush()
    record("round.updated", chain=rnd.estate_id, actor=_actor(user), now=now, subject_type="round",
           subject_id=rnd.id, data={"title": rnd.title})
    return rnd


def extend_round(round_id: int, new_closes_at: datetime, reason: str, now: datetime, user=None) -> Round:
    rnd = _lock_round(round_id) or get_round(round_id)
    old = rnd.closes_at
    rnd.extend_to(new_closes_at, reason, now, getattr(user, "id", None))
    db.session.flush()
    record("round.extended", chain=rnd.estate_id, actor=_actor(user), now=now, subject_type="round",
           subject_id=rnd.id, data={"from": old.isoformat(), "to": new_closes_at.isoformat(), "reason": reason})
    return rnd


def _actor(user) -> str:
    if user is None:
        return SYSTEM_ACTOR
    if isinstance(user, str):
        return user
    return f"user:{user.id}:{user.username}"


# ---- lifecycle (called by the scheduler and by the committee) ---------------------------------

def rounds_due_to_open(now: datetime) -> list[int]:
    # A draft whose whole window passed (scheduler down all along) is not opened: nobody could have
    # voted. It stays a draft, which the committee sees and reschedules (why_not_open says why).
    return list(db.session.execute(
        sa.select(Round.id).where(Round.status == "draft", Round.opens_at <= now, Round.closes_at > now)
        .order_by(Round.opens_at, Round.id)).scalars())


def rounds_due_to_close(now: datetime) -> list[int]:
    return list(db.session.execute(
        sa.select(Round.id).where(Round.status == "open", Round.closes_at <= now)
        .order_by(Round.closes_at, Round.id)).scalars())


def freeze_roll(rnd: Round) -> int:
    """Copy the register of the round's scope into roll_entry (units, areas, owners as of now)."""
    q = (sa.select(Unit.id, Unit.building_id, Building.name, Unit.number, Unit.title_area_m2)
         .join(Building, Building.id == Unit.building_id)
         .where(Unit.estate_id == rnd.estate_id).order_by(Building.name, Unit.number))
    if rnd.scope_building_ids:
        q = q.where(Unit.building_id.in_(rnd.scope_building_ids))
    units = db.session.execute(q).all()
    owners: dict[int, list[tuple[int, str]]] = {}
    for unit_id, owner_id, name in db.session.execute(
            sa.select(Ownership.unit_id, Owner.id, Owner.name).join(Owner, Owner.id == Ownership.owner_id)
            .where(Owner.estate_id == rnd.estate_id).order_by(Owner.id)):
        owners.setdefault(unit_id, []).append((owner_id, name))
    rows = [
        {"round_id": rnd.id, "unit_id": u.id, "building_id": u.building_id, "building_name": u.name,
         "unit_number": u.number, "label": f"{u.name}-{u.number}", "area_m2": u.title_area_m2,
         "owner_ids": [o[0] for o in owners.get(u.id, [])], "owner_names": [o[1] for o in owners.get(u.id, [])]}
        for u in units
    ]
    if rows:
        db.session.execute(sa.insert(RollEntry), rows)
    return len(rows)


def open_round(round_id: int, now: datetime, actor=None) -> bool:
    """Open a draft round and freeze its roll. False (nothing changed) if it is not a draft any more."""
    rnd = _lock_round(round_id)
    if rnd is None:
        raise NotFound("找不到该表决")
    if rnd.status != "draft":
        return False
    rnd.mark_open(now)
    count = freeze_roll(rnd)
    if count == 0:
        raise Conflict("表决范围内没有任何房屋，无法开启（请先导入房屋名册）", code="roll_empty")
    db.session.flush()
    record("round.opened", chain=rnd.estate_id, actor=_actor(actor), now=now, subject_type="round",
           subject_id=rnd.id, data={"roll_units": count, "closes_at": rnd.closes_at.isoformat()})
    return True


def close_round(round_id: int, now: datetime, actor=None) -> bool:
    """Close an open round whose window has ended, store its result. False if already closed or not due."""
    rnd = _lock_round(round_id)
    if rnd is None:
        raise NotFound("找不到该表决")
    if rnd.status != "open" or now < rnd.closes_at:
        return False
    rnd.mark_closed(now)
    # Paper ballots still waiting for confirmation or conflict resolution do not count.
    t = compute_tally(rnd.id, now)
    labels = _agreeing_labels_live(rnd.id)
    db.session.add(RoundResult(round_id=rnd.id, passed=t.passed, tally=t.to_dict(),
                               agreeing_unit_labels=labels, closed_at=now))
    db.session.flush()
    record("round.closed", chain=rnd.estate_id, actor=_actor(actor), now=now, subject_type="round",
           subject_id=rnd.id, data={"passed": t.passed, "tally_sha256": hashlib.sha256(
               repr(sorted(t.to_dict()["figures"].items())).encode()).hexdigest()})
    return True


def round_outcome(round_id: int) -> dict | None:
    res = db.session.get(RoundResult, round_id)
    if res is None:
        return None
    rnd = db.session.get(Round, round_id)
    return {"round_id": round_id, "estate_id": rnd.estate_id, "kind": rnd.kind, "title": rnd.title,
            "plan_version_id": rnd.plan_version_id, "passed": res.passed, "tally": res.tally,
            "closed_at": res.closed_at}


def natural_key(text: str) -> tuple:
    """"2幢" before "10幢", "201" before "1001"."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))


def _agreeing_labels_live(round_id: int) -> list[str]:
    rows = db.session.execute(
        sa.select(RollEntry.building_name, RollEntry.unit_number, RollEntry.label)
        .join(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                     CurrentBallot.unit_id == RollEntry.unit_id))
        .where(RollEntry.round_id == round_id, CurrentBallot.choice == th.AGREE)).all()
    rows.sort(key=lambda r: (natural_key(r[0]), natural_key(r[1])))
    return [r[2] for r in rows]


def agreeing_unit_labels(round_id: int) -> list[str]:
    """Unit numbers that agreed (final list once closed), never names or phone numbers."""
    res = db.session.get(RoundResult, round_id)
    if res is not None:
        return list(res.agreeing_unit_labels)
    return _agreeing_labels_live(round_id)


# ---- tally -----------------------------------------------------------------------------------

def _register_entries(rnd: Round) -> list[th.RollEntry]:
    """Before opening there is no frozen roll: preview over the live register."""
    q = sa.select(Unit.id, Unit.building_id, Unit.title_area_m2).where(Unit.estate_id == rnd.estate_id)
    if rnd.scope_building_ids:
        q = q.where(Unit.building_id.in_(rnd.scope_building_ids))
    owners: dict[int, list[int]] = {}
    for unit_id, owner_id in db.session.execute(
            sa.select(Ownership.unit_id, Ownership.owner_id).join(Unit, Unit.id == Ownership.unit_id)
            .where(Unit.estate_id == rnd.estate_id)):
        owners.setdefault(unit_id, []).append(owner_id)
    return [th.RollEntry(u, b, a, tuple(owners.get(u, ()))) for u, b, a in db.session.execute(q)]


def compute_tally(round_id: int, now: datetime | None = None) -> th.Tally:
    """The live tally of a round, from the frozen roll and the counted ballots.

    Household mode aggregates in SQL (SUM over integer hundredths, GROUP BY building and choice);
    person mode needs the owner groups, so it reads one light row per unit (no ORM objects).
    """
    rnd = get_round(round_id)
    if rnd.status == "draft":
        entries = _register_entries(rnd)
        return th.tally(entries, {}, rnd.rule_preset, rnd.counting_mode)
    names = dict(db.session.execute(
        sa.select(Building.id, Building.name).where(Building.estate_id == rnd.estate_id)).all())
    if rnd.counting_mode == "household":
        area_col = sa.func.sum(sa.type_coerce(RollEntry.area_m2, sa.BigInteger))
        rows = db.session.execute(
            sa.select(RollEntry.building_id, CurrentBallot.choice, sa.func.count(), area_col)
            .select_from(RollEntry)
            .outerjoin(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                              CurrentBallot.unit_id == RollEntry.unit_id))
            .where(RollEntry.round_id == round_id)
            .group_by(RollEntry.building_id, CurrentBallot.choice)).all()
        per_building: dict[int, dict] = {}
        tc = ta = vc = va = ac = aa = 0
        for building_id, choice, count, area in rows:
            area = int(area or 0)
            row = per_building.setdefault(building_id, {"building_id": building_id, "total_count": 0,
                                                        "total_area": 0, "voted_count": 0, "voted_area": 0,
                                                        "agree_count": 0, "agree_area": 0})
            row["total_count"] += count
            row["total_area"] += area
            tc += count
            ta += area
            if choice is not None:
                row["voted_count"] += count
                row["voted_area"] += area
                vc += count
                va += area
                if choice == th.AGREE:
                    row["agree_count"] += count
                    row["agree_area"] += area
                    ac += count
                    aa += area
        figures = th.Figures(tc, ta, vc, va, ac, aa, ac + (tc - vc), aa + (ta - va))
        buildings = [th.finish_building_row(per_building[k]) for k in sorted(per_building)]
        t = th.evaluate(rnd.rule_preset, rnd.counting_mode, figures, buildings)
    else:
        rows = db.session.execute(
            sa.select(RollEntry.unit_id, RollEntry.building_id, RollEntry.area_m2, RollEntry.owner_ids,
                      CurrentBallot.choice)
            .select_from(RollEntry)
            .outerjoin(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                              CurrentBallot.unit_id == RollEntry.unit_id))
            .where(RollEntry.round_id == round_id)).all()
        entries = [th.RollEntry(u, b, a, tuple(o or ())) for u, b, a, o, _ in rows]
        ballots = {u: c for u, _, _, _, c in rows if c is not None}
        t = th.tally(entries, ballots, rnd.rule_preset, rnd.counting_mode)
    for row in t.buildings:
        row["building_name"] = names.get(row["building_id"], str(row["building_id"]))
    t.buildings.sort(key=lambda r: natural_key(r["building_name"]))
    return t


def non_voters_by_building(round_id: int) -> dict[str, list[str]]:
    """Units of the frozen roll without a counted ballot, by building (for door-to-door visits)."""
    rows = db.session.execute(
        sa.select(RollEntry.building_name, RollEntry.unit_number)
        .outerjoin(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                          CurrentBallot.unit_id == RollEntry.unit_id))
        .where(RollEntry.round_id == round_id, CurrentBallot.unit_id.is_(None))).all()
    rows.sort(key=lambda r: (natural_key(r[0]), natural_key(r[1])))
    out: dict[str, list[str]] = {}
    for building, number in rows:
        out.setdefault(building, []).append(number)
    return out


def roll_entries(round_id: int) -> list[RollEntry]:
    entries = list(db.session.execute(sa.select(RollEntry).where(RollEntry.round_id == round_id)).scalars())
    entries.sort(key=lambda e: (natural_key(e.building_name), natural_key(e.unit_number)))
    return entries


# ---- ballots ---------------------------------------------------------------------------------

def _roll_entry(round_id: int, unit_id: int) -> RollEntry | None:
    return db.session.execute(
        sa.select(RollEntry).where(RollEntry.round_id == round_id, RollEntry.unit_id == unit_id)
    ).scalar_one_or_none()


def _check_choice(rnd: Round, choice: str, items: list[str] | None, rating: int | None) -> list[str]:
    if choice not in rnd.option_labels:
        raise ValidationFailed("请选择一个有效的选项", code="invalid_choice",
                               errors={"choice": f"“{choice}”不是本次表决的选项"})
    items = list(dict.fromkeys(items or []))
    menu = {i["key"] for i in rnd.item_menu or []}
    bad = [i for i in items if i not in menu]
    if bad:
        raise ValidationFailed("所选改造项目不在清单中", code="invalid_items",
                               errors={"items": f"未知的改造项目：{'、'.join(bad)}"})
    if rating is not None and not (1 <= rating <= 5):
        raise ValidationFailed("评分必须是 1 到 5 分", code="invalid_rating", errors={"rating": "请选择 1 到 5 分"})
    return items


def _window_check(rnd: Round, now: datetime) -> None:
    if rnd.status == "draft" or now < rnd.opens_at:
        raise Conflict("投票尚未开始", code="vote_not_open")
    if rnd.status == "closed" or now >= rnd.closes_at:
        raise castpath.window_closed()


def _count(ballot: Ballot, now: datetime, actor: str, rnd: Round | None = None) -> Ballot:
    """Make `ballot` (a paper or proxy ballot, or a conflict's winner) the counted one of its unit: the upsert
    of current_ballot, the earlier counted ballot marked superseded, and its audit event on the chain (with a
    fresh receipt code in it). Online ballots take castpath.write_online instead."""
    rnd = rnd or db.session.get(Round, ballot.round_id)
    ballot.status = "counted"
    # A ballot counted again (a conflict's winner) keeps the receipt its voter holds.
    ballot.receipt_code = ballot.receipt_code or new_receipt()
    if ballot.id is None:
        db.session.add(ballot)
    db.session.flush()
    conn = db.session.connection()
    params = {"round_id": ballot.round_id, "unit_id": ballot.unit_id, "ballot_id": ballot.id,
              "choice": ballot.choice, "channel": ballot.channel, "cast_at": ballot.cast_at}
    conn.execute(_UPSERT, params)
    conn.execute(_SUPERSEDE, params)
    record("ballot.cast", chain=rnd.estate_id, actor=actor, now=now, subject_type="ballot", subject_id=ballot.id,
           data={"round_id": ballot.round_id, "unit_id": ballot.unit_id, "choice": ballot.choice,
                 "channel": ballot.channel, "items": ballot.items or [], "cast_at": ballot.cast_at.isoformat(),
                 "receipt": ballot.receipt_code})
    return ballot


# The cast path's statements, as SQLAlchemy text (cast_at converted by its column type).
_UPSERT = sa.text(castpath.CURRENT_UPSERT).bindparams(
    sa.bindparam("cast_at", type_=CurrentBallot.__table__.c.cast_at.type))
_SUPERSEDE = sa.text(castpath.SUPERSEDE_SQL)


def client_fingerprint(remote_addr: str | None, user_agent: str | None, secret_key: str | None = None) -> dict:
    """{"ip_hash", "ua_hash"}: HMAC-SHA-256 with the app's SECRET_KEY, first 16 hex digits (never the raw
    values). What audit.round_facts reads to flag many units voting from one device or address."""
    key = (secret_key if secret_key is not None else current_app.config["SECRET_KEY"]).encode("utf-8")
    out = {}
    for name, value in (("ip_hash", remote_addr), ("ua_hash", user_agent)):
        if value:
            out[name] = hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]
    return out


def check_cast(rnd, on_roll: bool, now: datetime, choice: str, items: list[str] | None,
               rating: int | None) -> list[str]:
    """The checks of an online cast, in the order a voter should hear about them; returns the cleaned items."""
    if rnd is None:
        raise NotFound("找不到该表决")
    _window_check(rnd, now)
    if not on_roll:
        raise NotFound("本户不在该表决的名册范围内", code="unit_not_in_roll")
    return _check_choice(rnd, choice, items, rating)


def cast_online(rnd, unit_id: int, owner_id: int, choice: str, now: datetime, *, items: list[str],
                rating: int | None = None, comment: str = "", client: dict | None = None,
                defer_audit: bool = False) -> castpath.Written:
    """Write an online ballot that has passed check_cast (and whose owner has been checked)."""
    return castpath.write_online(rnd, unit_id, owner_id, choice=choice, items=items, rating=rating,
                                 comment=comment, now=now,
                                 actor=owner_actor(unit_id, owner_id), client=client, defer_audit=defer_audit)


def cast_known_round(unit_id: int, owner_id: int, link_id: int, token_hash: str, round_id: int, choice: str,
                     now: datetime, *, items: list[str], rating: int | None, comment: str,
                     client: dict | None) -> castpath.Written | None:
    """An online cast whose checks are the WHERE of its insert (a round this process has already seen open;
    PostgreSQL: one statement, the audit event deferred). None when that does not apply or a check failed:
    the caller then takes the checked path, which runs the checks in order and says which one failed."""
    rnd = castpath.known_round(round_id)
    if rnd is None:
        return None
    try:
        items = _check_choice(rnd, choice, items, rating)
    except ValidationFailed:
        return None
    return castpath.cast_in_one(rnd, unit_id, owner_id, link_id, token_hash, choice=choice, items=items,
                                rating=rating, comment=comment, now=now,
                                actor=owner_actor(unit_id, owner_id), client=client, defer_audit=True)


def cast_ballot(round_id: int, unit_id: int, owner_id: int, choice: str, now: datetime, *,
                items: list[str] | None = None, rating: int | None = None, comment: str = "",
                client: dict | None = None, defer_audit: bool = False) -> Ballot:
    """An owner (any co-owner) casts or changes the online ballot of their unit. Returns the ballot (persistent).

    `client` is client_fingerprint(...) of the request (the views pass it), kept in the audit event.
    `defer_audit`: the audit event waits in audit_pending for the sealer (views that call
    audit.sealer.after_commit() after their commit); otherwise it goes onto the chain in this transaction.
    """
    rnd, on_roll = _round_and_roll(round_id, unit_id)
    items = check_cast(rnd, on_roll, now, choice, items, rating)
    # Usually already in the identity map (the resident session loaded the unit's ownership).
    if db.session.get(Ownership, (unit_id, owner_id)) is None:
        raise DomainError("只有本户登记的业主可以投票", code="forbidden", status=403)
    written = cast_online(rnd, unit_id, owner_id, choice, now, items=items, rating=rating, comment=comment,
                          client=client, defer_audit=defer_audit)
    return db.session.get(Ballot, written.ballot_id)


def _round_and_roll(round_id: int, unit_id: int) -> tuple[castpath.CastRound | None, bool]:
    """The round (as read now) and whether the unit is on its frozen roll, in one query."""
    db.session.flush()  # pending changes first, as a session query would autoflush them
    row = db.session.connection().execute(_ROUND_AND_ROLL, {"p_round_id": round_id, "p_unit_id": unit_id}).first()
    if row is None:
        return None, False
    return castpath.CastRound(*row[:-1]), row[-1] is not None


_r, _e = Round.__table__.c, RollEntry.__table__.c
_ROUND_AND_ROLL = (
    sa.select(_r.id, _r.estate_id, _r.kind, _r.status, _r.opens_at, _r.closes_at, _r.options, _r.item_menu, _e.id)
    .outerjoin_from(Round.__table__, RollEntry.__table__,
                    sa.and_(_e.round_id == _r.id, _e.unit_id == sa.bindparam("p_unit_id")))
    .where(_r.id == sa.bindparam("p_round_id")))


def current_ballot_for(round_id: int, unit_id: int) -> Ballot | None:
    return db.session.execute(
        sa.select(Ballot).join(CurrentBallot, CurrentBallot.ballot_id == Ballot.id)
        .where(CurrentBallot.round_id == round_id, CurrentBallot.unit_id == unit_id)).scalar_one_or_none()


def ballot_history(round_id: int, unit_id: int | None = None) -> list[Ballot]:
    q = sa.select(Ballot).where(Ballot.round_id == round_id).order_by(Ballot.id.desc())
    if unit_id is not None:
        q = q.where(Ballot.unit_id == unit_id)
    return list(db.session.execute(q).scalars())


def check_receipt(code: str) -> dict:
    """What a voter sees when checking a receipt code (no names, no other unit)."""
    code = (code or "").strip().lower()
    if len(code) != 20 or any(ch not in "0123456789abcdef" for ch in code):
        raise ValidationFailed("回执码应为 20 位（数字 0-9 和字母 a-f）", code="invalid_receipt",
                               errors={"code": "回执码格式不正确"})
    ballot = db.session.execute(sa.select(Ballot).where(Ballot.receipt_code == code)).scalar_one_or_none()
    if ballot is None:
        raise NotFound("没有找到该回执码对应的投票", code="receipt_not_found")
    rnd = db.session.get(Round, ballot.round_id)
    return {"round_title": rnd.title, "choice": ballot.choice,
            "choice_label": rnd.option_labels.get(ballot.choice, ballot.choice),
            "cast_at": ballot.cast_at, "counted": ballot.status == "counted", "status": ballot.status,
            "status_label": ballot.status_label, "channel": ballot.channel}


# ---- paper ballots and proxies -----------------------------------------------------------------

def store_file(round_id: int, purpose: str, data: bytes, mime: str, now: datetime, user=None) -> RoundFile:
    f = RoundFile(round_id=round_id, purpose=purpose, mime=mime, size_bytes=len(data),
                  sha256=hashlib.sha256(data).hexdigest(), data=data, uploaded_at=now,
                  uploaded_by_id=getattr(user, "id", None))
    db.session.add(f)
    db.session.flush()
    return f


def enter_paper_ballot(round_id: int, unit_id: int, choice: str, scan: RoundFile, now: datetime, user,
                       items: list[str] | None = None) -> Ballot:
    """A committee member enters a signed paper form; it counts only after a second member confirms."""
    rnd = get_round(round_id)
    _window_check(rnd, now)
    if _roll_entry(round_id, unit_id) is None:
        raise NotFound("该房屋不在本表决的名册范围内", code="unit_not_in_roll")
    items = _check_choice(rnd, choice, items, None)
    ballot = Ballot(round_id=round_id, unit_id=unit_id, choice=choice, items=items, channel="paper",
                    status="pending", entered_by_id=user.id, scan_file_id=scan.id, cast_at=now)
    db.session.add(ballot)
    db.session.flush()
    record("ballot.paper_entered", chain=rnd.estate_id, actor=_actor(user), now=now, subject_type="ballot",
           subject_id=ballot.id, data={"round_id": round_id, "unit_id": unit_id, "choice": choice,
                                       "scan_sha256": scan.sha256})
    return ballot


def confirm_paper_ballot(ballot_id: int, now: datetime, user) -> Ballot:
    ballot = db.session.get(Ballot, ballot_id)
    if ballot is None or ballot.channel != "paper":
        raise NotFound("找不到该纸质票")
    rnd = get_round(ballot.round_id)
    _window_check(rnd, now)
    if ballot.status != "pending":
        raise Conflict("该纸质票已处理过", code="paper_not_pending")
    if ballot.entered_by_id == user.id:
        raise Conflict("录入人不能确认自己录入的纸质票，请由另一位业委会成员确认", code="same_user_confirm")
    ballot.confirmed_by_id, ballot.confirmed_at = user.id, now
    current = current_ballot_for(ballot.round_id, ballot.unit_id)
    if current is not None and current.channel != "paper":
        # One unit never has both counted: the committee decides explicitly, with a reason.
        ballot.status = "conflict"
        db.session.flush()
        record("ballot.paper_conflict", chain=rnd.estate_id, actor=_actor(user), now=now, subject_type="ballot",
               subject_id=ballot.id, data={"unit_id": ballot.unit_id, "counted_ballot_id": current.id})
        return ballot
    return _count(ballot, now, _actor(user))


def resolve_conflict(ballot_id: int, keep: str, reason: str, now: datetime, user) -> Ballot:
    """keep='paper': the paper ballot replaces the counted one; keep='online': the paper one is rejected."""
    ballot = db.session.get(Ballot, ballot_id)
    if ballot is None or ballot.status != "conflict":
        raise NotFound("找不到待处理的冲突")
    rnd = get_round(ballot.round_id)
    _window_check(rnd, now)
    if not (reason or "").strip():
        raise ValidationFailed("处理冲突必须填写理由", errors={"reason": "请填写理由"})
    if keep not in ("paper", "online"):
        raise ValidationFailed("请选择保留哪一张票", errors={"keep": "只能是 paper 或 online"})
    ballot.resolution_reason = reason.strip()[:500]
    record("ballot.conflict_resolved", chain=rnd.estate_id, actor=_actor(user), now=now, subject_type="ballot",
           subject_id=ballot.id, data={"keep": keep, "reason": ballot.resolution_reason})
    if keep == "paper":
        return _count(ballot, now, _actor(user))
    ballot.status = "rejected"
    db.session.flush()
    return ballot


def record_mandate(round_id: int, unit_id: int, owner_id: int, proxy_name: str, proxy_phone: str,
                   evidence: RoundFile, now: datetime, user) -> ProxyMandate:
    rnd = get_round(round_id)
    if rnd.status == "closed":
        raise Conflict("表决已结束", code="vote_window_closed")
    if _roll_entry(round_id, unit_id) is None:
        raise NotFound("该房屋不在本表决的名册范围内", code="unit_not_in_roll")
    if db.session.get(Ownership, (unit_id, owner_id)) is None:
        raise ValidationFailed("委托人必须是该户登记的业主", errors={"owner_id": "不是该户的业主"})
    if not proxy_name.strip():
        raise ValidationFailed("请填写受托人姓名", errors={"proxy_name": "请填写受托人姓名"})
    m = ProxyMandate(round_id=round_id, unit_id=unit_id, owner_id=owner_id, proxy_name=proxy_name.strip()[:60],
                     proxy_phone=proxy_phone.strip()[:20], evidence_file_id=evidence.id, recorded_at=now,
                     recorded_by_id=user.id)
    db.session.add(m)
    db.session.flush()
    record("proxy.mandate_recorded", chain=rnd.estate_id, actor=_actor(user), now=now, subject_type="mandate",
           subject_id=m.id, data={"unit_id": unit_id, "owner_id": owner_id, "evidence_sha256": evidence.sha256})
    return m


def cast_proxy_ballot(mandate_id: int, choice: str, now: datetime, user, items: list[str] | None = None) -> Ballot:
    m = db.session.get(ProxyMandate, mandate_id)
    if m is None:
        raise NotFound("找不到该委托书")
    rnd = get_round(m.round_id)
    _window_check(rnd, now)
    items = _check_choice(rnd, choice, items, None)
    ballot = Ballot(round_id=m.round_id, unit_id=m.unit_id, choice=choice, items=items, channel="proxy",
                    status="counted", cast_by_owner_id=m.owner_id, entered_by_id=user.id, mandate_id=m.id,
                    proxy_name=m.proxy_name, cast_at=now)
    db.session.add(ballot)
    db.session.flush()
    return _count(ballot, now, _actor(user))


# ---- links and identity ----------------------------------------------------------------------

def issue_links(estate_id: int, now: datetime, user=None, *, building_id: int | None = None,
                reissue: bool = False) -> list[tuple[Unit, str]]:
    """New links for the units (of a building) that have none; with reissue, every unit's link is
    replaced (the old printed codes stop working). Tokens are returned once, never stored."""
    from residents_app.auth.resident import hash_token, new_token

    q = sa.select(Unit).join(Building, Building.id == Unit.building_id).where(Unit.estate_id == estate_id)
    if building_id is not None:
        q = q.where(Unit.building_id == building_id)
    units = list(db.session.execute(q.order_by(Building.name, Unit.number)).scalars())
    active = {link.unit_id: link for link in db.session.execute(
        sa.select(UnitLink).where(UnitLink.unit_id.in_([u.id for u in units]), UnitLink.revoked_at.is_(None))
    ).scalars()} if units else {}
    out = []
    for unit in units:
        if unit.id in active:
            if not reissue:
                continue
            active[unit.id].revoked_at = now
        token = new_token()
        db.session.add(UnitLink(unit_id=unit.id, token_hash=hash_token(token), created_at=now))
        out.append((unit, token))
    db.session.flush()
    if out:
        record("links.issued", chain=estate_id, actor=_actor(user), now=now, subject_type="estate",
               subject_id=estate_id, data={"units": len(out), "building_id": building_id, "reissue": reissue})
    return out


def revoke_link(unit_id: int, now: datetime, user=None) -> int:
    unit = db.session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("找不到该房屋")
    links = list(db.session.execute(
        sa.select(UnitLink).where(UnitLink.unit_id == unit_id, UnitLink.revoked_at.is_(None))).scalars())
    for link in links:
        link.revoked_at = now
    db.session.flush()
    record("links.revoked", chain=unit.estate_id, actor=_actor(user), now=now, subject_type="unit",
           subject_id=unit_id, data={"count": len(links)})
    return len(links)


def reissue_link(unit_id: int, now: datetime, user=None) -> str:
    unit = db.session.get(Unit, unit_id)
    if unit is None:
        raise NotFound("找不到该房屋")
    revoke_link(unit_id, now, user)
    from residents_app.auth.resident import hash_token, new_token

    token = new_token()
    db.session.add(UnitLink(unit_id=unit_id, token_hash=hash_token(token), created_at=now))
    db.session.flush()
    return token


def link_status(estate_id: int) -> dict[int, UnitLink]:
    return {link.unit_id: link for link in db.session.execute(
        sa.select(UnitLink).join(Unit, Unit.id == UnitLink.unit_id)
        .where(Unit.estate_id == estate_id, UnitLink.revoked_at.is_(None))).scalars()}


def confirm_identity(link: UnitLink, name: str, phone_last4: str, now: datetime,
                     client: identity.Client | None = None) -> Owner:
    """Registered owner name + last 4 digits of the registered phone. Too many failures lock the client that made
    them out of the link (auth/identity.py), not the link itself."""
    client = client or identity.Client.of()
    identity.check_not_locked(link.id, client, now)
    name = (name or "").strip()
    phone_last4 = (phone_last4 or "").strip()
    errors = {}
    if not name:
        errors["name"] = "请填写登记的业主姓名"
    if len(phone_last4) != 4 or not phone_last4.isdigit():
        errors["phone_last4"] = "请填写登记手机号的后 4 位数字"
    if errors:
        raise ValidationFailed("请填写业主姓名和手机号后 4 位", errors=errors)
    for ownership in db.session.get(Unit, link.unit_id).ownerships:
        owner = ownership.owner
        if owner.name == name and owner.phone[-4:] == phone_last4:
            return owner
    left = identity.record_failure(link.id, client, now)
    log.warning("identity confirmation failed for link %s (unit %s), %s tries left", link.id, link.unit_id, left)
    raise ValidationFailed(identity.mismatch_message(left), code="identity_mismatch",
                           errors={"name": "与登记信息不符", "phone_last4": "与登记信息不符"})


def open_rounds_for_unit(unit_id: int, now: datetime) -> list[Round]:
    return list(db.session.execute(
        sa.select(Round).join(RollEntry, RollEntry.round_id == Round.id)
        .where(RollEntry.unit_id == unit_id, Round.status == "open", Round.opens_at <= now, Round.closes_at > now)
        .order_by(Round.closes_at)).scalars())


def rounds_of_estate(estate_id: int) -> list[Round]:
    return list(db.session.execute(
        sa.select(Round).where(Round.estate_id == estate_id).order_by(Round.id.desc())).scalars())


def pending_paper_ballots(round_id: int) -> list[Ballot]:
    return list(db.session.execute(
        sa.select(Ballot).where(Ballot.round_id == round_id, Ballot.status.in_(("pending", "conflict")))
        .order_by(Ballot.id)).scalars())
