"""The outbox: messages to residents are queued in the transaction that decided them and sent later.

Features call `queue` (rounds: closing reminders and the committee's canvass; publicity: posting notices); the
scheduler's send job calls `send_pending`.

When a message may go (notify/rules.py): never in quiet hours (21:00-08:00 Beijing: one queued at 21:30 waits for
08:00, and the send job sends nothing in them), after a transient failure only once its backoff has passed (1, 2,
4, ... minutes), and at most NOTIFY_DAILY_CAP messages per unit per Beijing day (the next one waits for the next
morning). A permanent failure (a wrong number, a user who refused the subscription) fails the message at once
and is recorded with the provider's code; a unit nobody can be reached at is `skipped` (the canvass lists it).

A `Sender` delivers one message. `LogSender` (default) writes it to the log; `notify.senders.ChannelSender`
sends WeChat subscribe messages and SMS (Tencent Cloud) to the unit's recipients. Choose with the setting
OUTBOX_SENDER ("log" or "channels") or name any class in RAPP_OUTBOX_SENDER ("package.module:ClassName").

Delivery: with a sender that can ask the provider what it accepted (`reconcile`, the SMS sender does:
PullSmsSendStatusByPhoneNumber returns each message's SessionContext), up to CLAIM_CHUNK messages are first
*claimed* in one committed transaction (one UPDATE: error_code "in_flight", held for IN_FLIGHT_LEASE so no other
sender takes them; PostgreSQL skips rows another sender has locked), then sent one provider call each, and their
outcomes (sent, failed, retry, deferred, skipped, delivery rows) are recorded in one commit per chunk. A sender
killed between the provider's answers and that commit leaves the claims behind; after the lease the next run asks
the provider first and records each message it accepted as sent instead of sending it again, and sends the others.
A chunk that takes longer than CHUNK_TIME_LIMIT_S (a slow provider) gives its unsent rest back before the lease
could run out. Without `reconcile` (log, WeChat) each message is locked, sent and recorded in its own transaction
and delivery is at-least-once: a crash in that window can resend one message, never lose one.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
from datetime import datetime, timedelta
from typing import Protocol

import sqlalchemy as sa
from flask import current_app, has_app_context

from residents_app.extensions import db
from residents_app.notify.models import OutboxMessage
from residents_app.notify.rules import backoff, beijing_day_start, in_quiet_hours, next_morning, release_time

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
DEFAULT_DAILY_CAP = 3
IN_FLIGHT = "in_flight"
# Long enough for a provider's delivery receipt to arrive before an in-doubt message is looked up.
IN_FLIGHT_LEASE = timedelta(minutes=10)
# Messages claimed at once by a sender that can reconcile: one claim commit and one outcome commit per chunk. A
# sender killed midway leaves at most this many claims to reconcile.
CLAIM_CHUNK = 100
# A claimed chunk is sent within this many seconds or its unsent rest is released: well inside the lease, whatever
# the provider's timeouts.
CHUNK_TIME_LIMIT_S = IN_FLIGHT_LEASE.total_seconds() / 2


class SendError(Exception):
    """The provider refused or failed. Transient (the default): the message is tried again after its backoff, until
    MAX_ATTEMPTS; permanent: it fails at once."""

    permanent = False

    def __init__(self, message: str = "", *, code: str = ""):
        super().__init__(message)
        self.code = code


class PermanentSendError(SendError):
    permanent = True


class NoRecipient(SendError):
    """Nobody to send to (no bound WeChat, every owner opted out): the message is skipped, the unit needs a visit."""

    permanent = True


class Sender(Protocol):
    """Delivers one message to a unit. Raise SendError on failure.

    A sender may instead define `deliver(message, now) -> channel` (it then records its deliveries itself, see
    notify/senders.py), `reconcile(message, now) -> channel | None` (was an in-doubt message accepted?) with
    `reconcilable_channels` (the channels reconcile can find; default all) and `prefetch(unit_ids)`."""

    channel: str

    def send(self, message: OutboxMessage) -> None: ...


class LogSender:
    channel = "log"

    def send(self, message: OutboxMessage) -> None:
        log.info("outbox message %s to unit %s: %s", message.id, message.unit_id, message.text)


def get_sender() -> Sender:
    spec = os.environ.get("RAPP_OUTBOX_SENDER", "")
    if spec:
        module, _, name = spec.partition(":")
        return getattr(importlib.import_module(module), name)()
    if has_app_context() and current_app.config.get("OUTBOX_SENDER") == "channels":
        from residents_app.notify.senders import ChannelSender

        return ChannelSender.from_config(current_app.config)
    return LogSender()


def queue(*, estate_id: int, unit_id: int, text: str, dedupe_key: str, now: datetime, channel: str = "log",
          title: str = "") -> OutboxMessage | None:
    """Queue a message unless one with the same dedupe key exists (then None). In quiet hours it is held until
    08:00 Beijing. Flushes, never commits."""
    exists = db.session.execute(
        sa.select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)).scalar_one_or_none()
    if exists is not None:
        return None
    msg = OutboxMessage(estate_id=estate_id, unit_id=unit_id, text=text, title=title[:60], dedupe_key=dedupe_key,
                        channel=channel, state="pending", attempts=0, last_error="", error_code="", created_at=now,
                        next_attempt_at=release_time(now) if in_quiet_hours(now) else None)
    db.session.add(msg)
    db.session.flush()
    return msg


def _daily_cap() -> int:
    if has_app_context():
        return int(current_app.config.get("NOTIFY_DAILY_CAP", DEFAULT_DAILY_CAP))
    return DEFAULT_DAILY_CAP


def _sent_today(unit_ids: list[int], now: datetime) -> dict[int, int]:
    return dict(db.session.execute(
        sa.select(OutboxMessage.unit_id, sa.func.count()).where(
            OutboxMessage.unit_id.in_(unit_ids), OutboxMessage.state == "sent",
            OutboxMessage.sent_at >= beijing_day_start(now)).group_by(OutboxMessage.unit_id)).all())


def _due(now: datetime):
    return sa.and_(OutboxMessage.state == "pending",
                   sa.or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now))


def send_pending(now: datetime, sender: Sender | None = None, *, batch: int = 200,
                 daily_cap: int | None = None) -> dict:
    """Send the pending messages that are due, in order. With a sender that can `reconcile`, CLAIM_CHUNK messages
    at a time: one committed claim, the provider calls, one commit recording every outcome; otherwise one
    transaction per message. Returns counts (`skipped`, `deferred` and `reconciled` appear when there were any)."""
    sender = sender or get_sender()
    cap = _daily_cap() if daily_cap is None else daily_cap
    counts = {"sent": 0, "failed": 0, "retry": 0}
    if in_quiet_hours(now):
        db.session.commit()
        return counts
    due = db.session.execute(
        sa.select(OutboxMessage.id, OutboxMessage.unit_id).where(_due(now)).order_by(OutboxMessage.id).limit(batch)
    ).all()
    unit_ids = sorted({r.unit_id for r in due})
    # Messages each unit received today, counted once per batch and kept up to date by this loop (several sender
    # processes at once may together exceed the cap by what the others sent during one batch).
    sent_today = _sent_today(unit_ids, now) if cap and unit_ids else {}
    prefetch = getattr(sender, "prefetch", None)
    if prefetch is not None and unit_ids:
        prefetch(unit_ids)
    db.session.commit()
    run = _Run(sender, now, cap, sent_today, counts)
    ids = [r.id for r in due]
    size = CLAIM_CHUNK if run.reconcile is not None else 1
    for start in range(0, len(ids), size):
        if not run.send_chunk(ids[start:start + size]):
            break  # the rest of the chunk was released: the next run takes it
    return counts


class _Run:
    """One send_pending call: the sender, the clock, the cap and the counts."""

    def __init__(self, sender: Sender, now: datetime, cap: int, sent_today: dict[int, int], counts: dict):
        self.sender, self.now, self.cap, self.sent_today, self.counts = sender, now, cap, sent_today, counts
        self.deliver = getattr(sender, "deliver", None)
        self.reconcile = getattr(sender, "reconcile", None)
        # Channels whose deliveries `reconcile` can find again (None: all). A delivery on another channel (WeChat) is
        # committed at once, so that a crash resends at most that one message.
        self.reconcilable = getattr(sender, "reconcilable_channels", None)
        self.pg = db.session.get_bind().dialect.name == "postgresql"

    def _lock(self, q):
        # another sender holds it: leave it to them
        return q.with_for_update(skip_locked=True) if self.pg else q

    def _claim(self, ids: list[int]) -> tuple[list[OutboxMessage], dict]:
        """The chunk's messages still due, locked (PostgreSQL skips those another sender holds) and, with a
        `reconcile` sender, claimed in a committed transaction: `in_flight` for IN_FLIGHT_LEASE, attempts counted.
        Returns the messages and what each was before (attempts, error_code, next_attempt_at)."""
        now = self.now
        if self.reconcile is None:
            msgs = db.session.execute(self._lock(sa.select(OutboxMessage).where(OutboxMessage.id.in_(ids), _due(now)))
                                      .order_by(OutboxMessage.id).execution_options(populate_existing=True)
                                      ).scalars().all()
            before = {m.id: (m.attempts, m.error_code, m.next_attempt_at) for m in msgs}
            for m in msgs:
                m.attempts += 1
            return msgs, before
        rows = db.session.execute(self._lock(
            sa.select(OutboxMessage.id, OutboxMessage.attempts, OutboxMessage.error_code,
                      OutboxMessage.next_attempt_at).where(OutboxMessage.id.in_(ids), _due(now)))).all()
        if not rows:
            db.session.commit()
            return [], {}
        # The due condition again: on SQLite (no row locks) another sender may have claimed some since the select.
        claimed = set(db.session.execute(
            sa.update(OutboxMessage).where(OutboxMessage.id.in_([r.id for r in rows]), _due(now))
            .values(attempts=OutboxMessage.attempts + 1, error_code=IN_FLIGHT, next_attempt_at=now + IN_FLIGHT_LEASE)
            .returning(OutboxMessage.id).execution_options(synchronize_session=False)).scalars())
        db.session.commit()  # the claims are on disk before the provider hears of any of these messages
        before = {r.id: (r.attempts, r.error_code, r.next_attempt_at) for r in rows if r.id in claimed}
        if not before:
            return [], {}
        msgs = db.session.execute(sa.select(OutboxMessage).where(OutboxMessage.id.in_(list(before)))
                                  .order_by(OutboxMessage.id).execution_options(populate_existing=True)
                                  ).scalars().all()
        return msgs, before

    def send_chunk(self, ids: list[int]) -> bool:
        """Send one chunk and record every outcome in one commit. False when time ran out and the unsent rest was
        released (its claims given back, as before the claim)."""
        msgs, before = self._claim(ids)
        started = time.monotonic()
        complete = True
        for msg in msgs:
            attempts, error_code, next_attempt_at = before[msg.id]
            if time.monotonic() - started > CHUNK_TIME_LIMIT_S:
                # A slow provider: stop well before the claims' lease ends (after it, another sender may take them).
                msg.attempts, msg.error_code, msg.next_attempt_at = attempts, error_code, next_attempt_at
                complete = False
                continue
            channel = self._send_one(msg, in_doubt=error_code == IN_FLIGHT, attempts_before=attempts)
            if channel is not None and self.reconcilable is not None and channel not in self.reconcilable:
                self._commit()
        self._commit()
        return complete

    def _commit(self) -> None:
        if self.reconcile is not None and self.pg:
            # The claims are durable; if the database loses these outcomes in a crash of its own, the messages are
            # still claimed and the next run asks the provider (reconcile), so this commit need not wait for disk.
            db.session.execute(sa.text("SET LOCAL synchronous_commit = off"))
        db.session.commit()

    def _send_one(self, msg: OutboxMessage, *, in_doubt: bool, attempts_before: int) -> str | None:
        """Send (or reconcile, or defer) one claimed message; the channel it went by, if it went."""
        counts, now = self.counts, self.now
        try:
            # A message claimed by a sender that died: ask the provider first (sent then, or not at all).
            channel = self.reconcile(msg, now) if in_doubt and self.reconcile is not None else None
            if channel is not None:
                counts["reconciled"] = counts.get("reconciled", 0) + 1
            else:
                if self.cap and self.sent_today.get(msg.unit_id, 0) >= self.cap:
                    msg.attempts, msg.next_attempt_at, msg.error_code = attempts_before, next_morning(now), "daily_cap"
                    counts["deferred"] = counts.get("deferred", 0) + 1
                    return None
                if self.deliver is not None:
                    channel = self.deliver(msg, now)
                else:
                    self.sender.send(msg)
                    channel = self.sender.channel
        except SendError as exc:
            _record_failure(msg, exc, now, counts)
            return None
        msg.state, msg.sent_at, msg.channel = "sent", now, channel
        msg.error_code, msg.next_attempt_at = "", None
        counts["sent"] += 1
        self.sent_today[msg.unit_id] = self.sent_today.get(msg.unit_id, 0) + 1
        return channel


def _record_failure(msg: OutboxMessage, exc: SendError, now: datetime, counts: dict) -> None:
    msg.last_error = str(exc)[:500]
    msg.error_code = (exc.code or "")[:80]
    if isinstance(exc, NoRecipient):
        msg.state, msg.next_attempt_at = "skipped", None
        counts["skipped"] = counts.get("skipped", 0) + 1
    elif exc.permanent or msg.attempts >= MAX_ATTEMPTS:
        msg.state, msg.next_attempt_at = "failed", None
        counts["failed"] += 1
    else:
        msg.next_attempt_at = release_time(now + backoff(msg.attempts))
        counts["retry"] += 1
