"""Ballots: online casts, receipts, paper ballots and proxies, conflicts between channels."""

from __future__ import annotations

import functools
import hashlib
import hmac
from datetime import datetime

import sqlalchemy as sa
from flask import current_app

from residents_app.audit.chain import new_receipt
from residents_app.audit.services import record, seal_chain
from residents_app.core.thresholds import AGREE
from residents_app.errors import Conflict, DomainError, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.registry.models import Ownership
from residents_app.rounds import castpath, counters
from residents_app.rounds.common import (
    actor_name,
    get_round,
    owner_actor,
)
from residents_app.rounds.models import (
    Ballot,
    BallotLabels,
    CurrentBallot,
    ProxyMandate,
    RollEntry,
    Round,
    RoundCount,
    RoundFile,
)

SCAN_MAX_BYTES = 10 * 1024 * 1024


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
    if items and choice != AGREE:
        # 改什么 is asked of the owners who want the renovation: one who does not agree picks no item.
        raise ValidationFailed("只有选择同意的业主才填写希望改造的项目", code="items_need_agree",
                               errors={"items": "选择“同意”以外的选项时，不能勾选改造项目"})
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
    # The chain's lock before the counter rows (the audit event below needs it anyway): every committee path
    # (confirmations, a conflict resolved after its own audit entry) takes them in this order, so two of them
    # on one person's units (one round_person row) never wait for each other in a cycle.
    seal_chain(rnd.estate_id)
    conn = db.session.connection()
    params = {"round_id": ballot.round_id, "unit_id": ballot.unit_id, "ballot_id": ballot.id,
              "choice": ballot.choice, "channel": ballot.channel, "cast_at": ballot.cast_at}
    conn.execute(_UPSERT, params)
    counters.move_unit(ballot.round_id, ballot.unit_id, persons=rnd.counting_mode == "person")
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
    sa.select(_r.id, _r.estate_id, _r.kind, _r.status, _r.opens_at, _r.closes_at, _r.options, _r.item_menu,
              _r.counting_mode, _e.id)
    .outerjoin_from(Round.__table__, RollEntry.__table__,
                    sa.and_(_e.round_id == _r.id, _e.unit_id == sa.bindparam("p_unit_id")))
    .where(_r.id == sa.bindparam("p_round_id")))


def current_ballot_for(round_id: int, unit_id: int) -> Ballot | None:
    return db.session.execute(
        sa.select(Ballot).join(CurrentBallot, CurrentBallot.ballot_id == Ballot.id)
        .where(CurrentBallot.round_id == round_id, CurrentBallot.unit_id == unit_id)).scalar_one_or_none()


def ballot_history(round_id: int, unit_id: int | None = None, limit: int | None = None) -> list[Ballot]:
    """Newest first; `limit`: only that many (in the query)."""
    q = sa.select(Ballot).where(Ballot.round_id == round_id).order_by(Ballot.id.desc())
    if unit_id is not None:
        q = q.where(Ballot.unit_id == unit_id)
    if limit is not None:
        q = q.limit(limit)
    return list(db.session.execute(q).scalars())


class LatestBallot(BallotLabels):
    """One of the round page's latest ballots: a plain row (no ORM object) with its unit's roll label."""

    __slots__ = ("id", "unit_id", "choice", "channel", "status", "proxy_name", "cast_at", "label")

    def __init__(self, row):
        (self.id, self.unit_id, self.choice, self.channel, self.status, self.proxy_name, self.cast_at,
         self.label) = row


@functools.cache
def _latest_query():
    """Built once: the round page runs it on every view (on the index (round_id, id))."""
    return (sa.select(Ballot.id, Ballot.unit_id, Ballot.choice, Ballot.channel, Ballot.status, Ballot.proxy_name,
                      Ballot.cast_at, RollEntry.label)
            .outerjoin(RollEntry, sa.and_(RollEntry.round_id == Ballot.round_id, RollEntry.unit_id == Ballot.unit_id))
            .where(Ballot.round_id == sa.bindparam("p_round_id")).order_by(Ballot.id.desc())
            .limit(sa.bindparam("p_limit")))


def latest_ballots(round_id: int, limit: int = 20) -> list[LatestBallot]:
    """The round's `limit` latest ballots, newest first, each with its unit's label on the frozen roll, in one
    query."""
    return [LatestBallot(r) for r in db.session.execute(_latest_query(), {"p_round_id": round_id, "p_limit": limit})
            .all()]


@functools.cache
def _counts_and_latest_query():
    """Built once: the round page's stored counters (k = 0: round, building, choice, units, area in hundredths, as
    counters.stored_select sums them over the slots) and its latest ballots (k = 1, as _latest_query), in one
    statement."""
    def none(type_):
        return sa.type_coerce(sa.null(), type_)

    counts = counters.stored_select(RoundCount.round_id == sa.bindparam("p_round_id"), sa.literal(0).label("k")) \
        .add_columns(none(sa.Integer), none(sa.Integer), none(sa.String), none(sa.String), none(sa.String),
                     none(Ballot.__table__.c.cast_at.type), none(sa.String))
    latest = _latest_query().subquery()
    ballots = sa.select(sa.literal(1), none(sa.Integer), none(sa.Integer), latest.c.choice, none(sa.Integer),
                        none(sa.BigInteger), latest.c.id, latest.c.unit_id, latest.c.channel, latest.c.status,
                        latest.c.proxy_name, latest.c.cast_at, latest.c.label)
    return sa.union_all(counts, ballots)


def counts_and_latest(round_id: int, limit: int = 20) -> tuple[counters.Counts, list[LatestBallot]]:
    """counters.stored_counts(round_id) and latest_ballots(round_id, limit) in one statement (the round page)."""
    stored: dict[int, counters.Counts] = {round_id: {}}
    latest = []
    for k, rid, building_id, choice, units, area, *ballot in db.session.execute(
            _counts_and_latest_query(), {"p_round_id": round_id, "p_limit": limit}).all():
        if k == 1:
            ballot.insert(2, choice)
            latest.append(LatestBallot(ballot))
        else:
            counters.add_stored(stored, rid, building_id, choice, units, area)
    latest.sort(key=lambda b: b.id, reverse=True)
    return stored[round_id], latest


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
    if rnd.results_hidden:
        # Until the close of a round with hidden results a receipt says "recorded", never "counted" or
        # "superseded" (which would tell whether this unit changed its vote).
        return {"round_title": rnd.title, "choice": ballot.choice,
                "choice_label": rnd.option_labels.get(ballot.choice, ballot.choice), "cast_at": ballot.cast_at,
                "counted": False, "status": "recorded", "status_label": "已记录", "channel": ballot.channel}
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
    record("ballot.paper_entered", chain=rnd.estate_id, actor=actor_name(user), now=now, subject_type="ballot",
           subject_id=ballot.id, data={"round_id": round_id, "unit_id": unit_id, "choice": choice,
                                       "scan_sha256": scan.sha256})
    return ballot


def confirm_paper_ballot(ballot_id: int, now: datetime, user) -> Ballot:
    return confirm_ballot(ballot_id, now, user, channel="paper")


def confirm_proxy_ballot(ballot_id: int, now: datetime, user) -> Ballot:
    return confirm_ballot(ballot_id, now, user, channel="proxy")


# What a confirmed ballot conflicts with: a paper form with any ballot not on paper; a proxy ballot with the
# owner's own ballot (online or paper). One unit never has both counted: the committee decides, with a reason.
_CONFLICTS_WITH = {"paper": ("online", "proxy"), "proxy": ("online", "paper")}
_NOUN = {"paper": "纸质票", "proxy": "委托代理票"}


def confirm_ballot(ballot_id: int, now: datetime, user, *, channel: str) -> Ballot:
    """A second committee member (not the one who entered it) confirms a paper or proxy ballot: it counts, or,
    if the unit's counted ballot is the owner's own (_CONFLICTS_WITH), it becomes a conflict to resolve."""
    ballot = db.session.get(Ballot, ballot_id)
    noun = _NOUN[channel]
    if ballot is None or ballot.channel != channel:
        raise NotFound(f"找不到该{noun}")
    rnd = get_round(ballot.round_id)
    _window_check(rnd, now)
    if ballot.status != "pending":
        raise Conflict(f"该{noun}已处理过", code=f"{channel}_not_pending")
    if ballot.entered_by_id == user.id:
        raise Conflict(f"录入人不能确认自己录入的{noun}，请由另一位业委会成员确认", code="same_user_confirm")
    ballot.confirmed_by_id, ballot.confirmed_at = user.id, now
    current = current_ballot_for(ballot.round_id, ballot.unit_id)
    if current is not None and current.channel in _CONFLICTS_WITH[channel]:
        ballot.status = "conflict"
        db.session.flush()
        record(f"ballot.{channel}_conflict", chain=rnd.estate_id, actor=actor_name(user), now=now,
               subject_type="ballot", subject_id=ballot.id,
               data={"unit_id": ballot.unit_id, "counted_ballot_id": current.id})
        return ballot
    return _count(ballot, now, actor_name(user))


def resolve_conflict(ballot_id: int, keep: str, reason: str, now: datetime, user) -> Ballot:
    """keep='paper' / 'proxy' (the conflicting ballot's channel): it replaces the counted one; keep='online': the
    counted ballot (the owner's own) stays and the conflicting one is rejected."""
    ballot = db.session.get(Ballot, ballot_id)
    if ballot is None or ballot.status != "conflict":
        raise NotFound("找不到待处理的冲突")
    rnd = get_round(ballot.round_id)
    _window_check(rnd, now)
    if not (reason or "").strip():
        raise ValidationFailed("处理冲突必须填写理由", errors={"reason": "请填写理由"})
    if keep not in (ballot.channel, "online"):
        raise ValidationFailed("请选择保留哪一张票", errors={"keep": f"只能是 {ballot.channel} 或 online"})
    ballot.resolution_reason = reason.strip()[:500]
    record("ballot.conflict_resolved", chain=rnd.estate_id, actor=actor_name(user), now=now, subject_type="ballot",
           subject_id=ballot.id, data={"keep": keep, "reason": ballot.resolution_reason})
    if keep == ballot.channel:
        return _count(ballot, now, actor_name(user))
    ballot.status = "rejected"
    db.session.flush()
    return ballot


def record_mandate(round_id: int, unit_id: int, owner_id: int, proxy_name: str, proxy_phone: str,
                   evidence: RoundFile, now: datetime, user) -> ProxyMandate:
    rnd = get_round(round_id)
    _window_check(rnd, now)
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
    record("proxy.mandate_recorded", chain=rnd.estate_id, actor=actor_name(user), now=now, subject_type="mandate",
           subject_id=m.id, data={"unit_id": unit_id, "owner_id": owner_id, "evidence_sha256": evidence.sha256})
    return m


def cast_proxy_ballot(mandate_id: int, choice: str, now: datetime, user, items: list[str] | None = None) -> Ballot:
    """A committee member enters the proxy's vote under a recorded mandate; like a paper form it counts only after
    a second member confirms it (confirm_proxy_ballot), and against the owner's own ballot it is a conflict."""
    m = db.session.get(ProxyMandate, mandate_id)
    if m is None:
        raise NotFound("找不到该委托书")
    rnd = get_round(m.round_id)
    _window_check(rnd, now)
    items = _check_choice(rnd, choice, items, None)
    ballot = Ballot(round_id=m.round_id, unit_id=m.unit_id, choice=choice, items=items, channel="proxy",
                    status="pending", cast_by_owner_id=m.owner_id, entered_by_id=user.id, mandate_id=m.id,
                    proxy_name=m.proxy_name, cast_at=now)
    db.session.add(ballot)
    db.session.flush()
    record("ballot.proxy_entered", chain=rnd.estate_id, actor=actor_name(user), now=now, subject_type="ballot",
           subject_id=ballot.id, data={"round_id": m.round_id, "unit_id": m.unit_id, "choice": choice,
                                       "mandate_id": m.id})
    return ballot


def pending_paper_ballots(round_id: int) -> list[Ballot]:
    return list(db.session.execute(
        sa.select(Ballot).where(Ballot.round_id == round_id, Ballot.status.in_(("pending", "conflict")))
        .order_by(Ballot.id)).scalars())
