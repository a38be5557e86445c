"""Canvassing the units that have not voted: the committee reminds them all (or one building) through the outbox,
sees per unit what became of each reminder, prints a door-to-door list of the units no channel reaches, and
records each contact attempt (visit, call, message).

A unit is reminded at most once per Beijing day per round (the dedupe key carries the day), so a second click
queues nothing; the outbox's own rules (quiet hours, daily cap, opt-outs) apply on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa

from residents_app.audit.services import record
from residents_app.core.calendar import beijing_date
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.formatting import format_local_dt
from residents_app.notify import services as reach_svc
from residents_app.notify.models import OutboxDelivery, OutboxMessage
from residents_app.notify.outbox import queue
from residents_app.registry.models import Estate, Owner
from residents_app.rounds.canvass_models import CONTACT_KIND_LABELS, CONTACT_KINDS, CanvassContact
from residents_app.rounds.common import get_round, lock_round, natural_key
from residents_app.rounds.models import CurrentBallot, RollEntry, Round

STATE_LABELS = {"pending": "待发送", "sent": "已送达", "failed": "发送失败", "skipped": "无可用渠道"}
CHANNEL_LABELS = {"sms": "短信", "wechat": "微信", "log": "日志"}


def mask_phone(phone: str) -> str:
    return phone[:3] + "****" + phone[-4:] if len(phone) >= 8 else "****"


@dataclass
class NonVoter:
    unit_id: int
    building_id: int
    building: str
    unit: str
    label: str
    owners: list[tuple[str, str]] = field(default_factory=list)  # (name, masked phone)
    has_channel: bool = False
    channels: list[str] = field(default_factory=list)
    delivery: dict | None = None  # the latest reminder of this round: state, channel, at, error
    contacts: list[CanvassContact] = field(default_factory=list)
    last_contact_at: datetime | None = None
    last_contact: str = ""


def _prefix(round_id: int) -> str:
    return f"round:{round_id}:"


def _missing(round_id: int, building_id: int | None = None) -> list[RollEntry]:
    q = (sa.select(RollEntry)
         .outerjoin(CurrentBallot, sa.and_(CurrentBallot.round_id == RollEntry.round_id,
                                           CurrentBallot.unit_id == RollEntry.unit_id))
         .where(RollEntry.round_id == round_id, CurrentBallot.unit_id.is_(None)))
    if building_id is not None:
        q = q.where(RollEntry.building_id == building_id)
    rows = list(db.session.execute(q).scalars())
    rows.sort(key=lambda e: (natural_key(e.building_name), natural_key(e.unit_number)))
    return rows


def _check_open(rnd: Round, now: datetime) -> None:
    if rnd.status != "open" or now >= rnd.closes_at:
        raise Conflict("只能在表决进行中提醒未投票的住户", code="round_not_open")


def queue_reminders(round_id: int, now: datetime, *, building_id: int | None = None, actor: str = "") -> dict:
    """Queue a reminder to every unit of the round (or of one building) that has not voted and can be reached.
    Returns {"queued", "already", "no_channel"}; a click that queued something is logged on the audit chain.
    Flushes, never commits."""
    get_round(round_id)
    rnd = lock_round(round_id)  # two clicks at once: the second waits, then finds the first one's messages
    _check_open(rnd, now)
    if building_id is not None and building_id not in {b for b, _ in buildings(round_id)}:
        raise NotFound("该楼栋不在本次表决范围内")
    missing = _missing(round_id, building_id)
    reach = reach_svc.reach_for_units([e.unit_id for e in missing])
    estate = db.session.get(Estate, rnd.estate_id)
    day = beijing_date(now).isoformat()
    counts = {"queued": 0, "already": 0, "no_channel": 0}
    for entry in missing:
        if not reach[entry.unit_id].has_channel:
            counts["no_channel"] += 1
            continue
        text = (f"【{estate.name}】“{rnd.title}”将于 {format_local_dt(rnd.closes_at)} 截止，"
                f"您家（{entry.label}）尚未表决。请扫描本户二维码或在小程序中参与。")
        msg = queue(estate_id=rnd.estate_id, unit_id=entry.unit_id, text=text, title="表决提醒：" + rnd.title,
                    now=now, dedupe_key=f"{_prefix(round_id)}canvass:{day}:{entry.unit_id}")
        counts["queued" if msg is not None else "already"] += 1
    if counts["queued"] and actor:
        record("round.canvass_reminders_queued", chain=rnd.estate_id, actor=actor, now=now, subject_type="round",
               subject_id=rnd.id, data={**counts, "building_id": building_id})
    return counts


def buildings(round_id: int) -> list[tuple[int, str]]:
    rows = db.session.execute(sa.select(RollEntry.building_id, RollEntry.building_name).where(
        RollEntry.round_id == round_id).distinct()).all()
    return sorted({(r[0], r[1]) for r in rows}, key=lambda r: natural_key(r[1]))


def record_contact(round_id: int, unit_id: int, kind: str, note: str, actor: str, now: datetime) -> CanvassContact:
    rnd = get_round(round_id)
    if rnd.status == "draft":
        raise Conflict("表决尚未开始", code="round_not_open")
    errors = {}
    if kind not in CONTACT_KINDS:
        errors["kind"] = "应为上门、电话或留言"
    note = (note or "").strip()
    if len(note) > 300:
        errors["note"] = "备注不超过 300 字"
    if errors:
        raise ValidationFailed("联系记录有误", errors=errors)
    on_roll = db.session.execute(sa.select(RollEntry.id).where(
        RollEntry.round_id == round_id, RollEntry.unit_id == unit_id)).scalar_one_or_none()
    if on_roll is None:
        raise NotFound("该户不在本次表决名册中")
    contact = CanvassContact(round_id=round_id, unit_id=unit_id, kind=kind, note=note, actor=actor[:120], at=now)
    db.session.add(contact)
    db.session.flush()
    return contact


def non_voters(round_id: int, *, building_id: int | None = None) -> list[NonVoter]:
    """The units that have not voted, each with its owners (phones masked), its channels, the latest reminder of
    this round and what became of it, and the committee's contact attempts (newest first)."""
    missing = _missing(round_id, building_id)
    unit_ids = [e.unit_id for e in missing]
    reach = reach_svc.reach_for_units(unit_ids)
    owners = {o.id: o for o in db.session.execute(sa.select(Owner).where(
        Owner.id.in_({oid for e in missing for oid in (e.owner_ids or [])}))).scalars()} if missing else {}
    latest: dict[int, OutboxMessage] = {}
    if unit_ids:
        for msg in db.session.execute(sa.select(OutboxMessage).where(
                OutboxMessage.unit_id.in_(unit_ids), OutboxMessage.dedupe_key.like(_prefix(round_id) + "%"))
                .order_by(OutboxMessage.id)).scalars():
            latest[msg.unit_id] = msg
    refs = {}
    if latest:
        for d in db.session.execute(sa.select(OutboxDelivery).where(
                OutboxDelivery.message_id.in_([m.id for m in latest.values()]), OutboxDelivery.state == "sent")
                .order_by(OutboxDelivery.id)).scalars():
            refs.setdefault(d.message_id, d)
    contacts: dict[int, list[CanvassContact]] = {}
    if unit_ids:
        for c in db.session.execute(sa.select(CanvassContact).where(
                CanvassContact.round_id == round_id, CanvassContact.unit_id.in_(unit_ids))
                .order_by(CanvassContact.at.desc(), CanvassContact.id.desc())).scalars():
            contacts.setdefault(c.unit_id, []).append(c)
    out = []
    for e in missing:
        r = reach[e.unit_id]
        nv = NonVoter(unit_id=e.unit_id, building_id=e.building_id, building=e.building_name, unit=e.unit_number,
                      label=e.label, has_channel=r.has_channel,
                      channels=(["wechat"] if r.openids else []) + (["sms"] if r.phones else []),
                      contacts=contacts.get(e.unit_id, []))
        for oid in e.owner_ids or []:
            o = owners.get(oid)
            if o is not None:
                nv.owners.append((o.name, mask_phone(o.phone)))
        msg = latest.get(e.unit_id)
        if msg is not None:
            nv.delivery = {"state": msg.state, "state_label": STATE_LABELS[msg.state],
                           "channel": msg.channel if msg.state == "sent" else "",
                           "channel_label": CHANNEL_LABELS.get(msg.channel, msg.channel) if msg.state == "sent"
                           else "", "queued_at": msg.created_at, "sent_at": msg.sent_at,
                           "next_attempt_at": msg.next_attempt_at, "error_code": msg.error_code,
                           "provider_ref": refs[msg.id].provider_ref if msg.id in refs else ""}
        candidates = []
        if nv.contacts:
            c = nv.contacts[0]
            candidates.append((c.at, f"{CONTACT_KIND_LABELS[c.kind]} {format_local_dt(c.at)}"
                               + (f"（{c.note}）" if c.note else "")))
        if msg is not None and msg.sent_at is not None:
            candidates.append((msg.sent_at, f"{CHANNEL_LABELS.get(msg.channel, msg.channel)}提醒 "
                               f"{format_local_dt(msg.sent_at)}"))
        if candidates:
            nv.last_contact_at, nv.last_contact = max(candidates, key=lambda c: c[0])
        out.append(nv)
    return out


def door_list(round_id: int, *, building_id: int | None = None) -> list[NonVoter]:
    """The non-voters no channel reaches (no bound WeChat, no owner who accepts SMS): to visit door to door."""
    return [nv for nv in non_voters(round_id, building_id=building_id) if not nv.has_channel]
