"""The outbox: messages to residents are queued in the transaction that decided them and sent later.

Features call `queue` (rounds: closing reminders; publicity: posting notices); the scheduler's send job
calls `send_pending`.

A `Sender` delivers one message. `LogSender` (default) writes it to the log. SMS and WeChat template
messages plug in by implementing the same interface and naming the class in RAPP_OUTBOX_SENDER
("package.module:ClassName"); see docs/SCHEDULER.md.

Delivery is at-least-once: a message is marked sent in its own transaction right after the
provider accepted it, so a crash in between can resend one message, never lose one.
"""

from __future__ import annotations

import importlib
import logging
import os
from datetime import datetime
from typing import Protocol

import sqlalchemy as sa

from residents_app.extensions import db
from residents_app.notify.models import OutboxMessage

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5


class SendError(Exception):
    """The provider refused or failed; the message stays pending until MAX_ATTEMPTS."""


class Sender(Protocol):
    """Delivers one message to a unit. Raise SendError on failure.

    SMS: look up the unit's owners' phones (registry.Owner.phone), call the provider's API with an
    approved template and `text` as its parameter. WeChat: send a template message
    (订阅消息/模板消息) to the openids bound to the unit. Both must be idempotent per `message_id`
    where the provider supports a client reference.
    """

    channel: str

    def send(self, message: OutboxMessage) -> None: ...


class LogSender:
    channel = "log"

    def send(self, message: OutboxMessage) -> None:
        log.info("outbox message %s to unit %s: %s", message.id, message.unit_id, message.text)


def get_sender() -> Sender:
    spec = os.environ.get("RAPP_OUTBOX_SENDER", "")
    if not spec:
        return LogSender()
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)()


def queue(*, estate_id: int, unit_id: int, text: str, dedupe_key: str, now: datetime, channel: str = "log"
          ) -> OutboxMessage | None:
    """Queue a message unless one with the same dedupe key exists (then None). Flushes, never commits."""
    exists = db.session.execute(
        sa.select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)).scalar_one_or_none()
    if exists is not None:
        return None
    msg = OutboxMessage(estate_id=estate_id, unit_id=unit_id, text=text, dedupe_key=dedupe_key, channel=channel,
                        state="pending", attempts=0, last_error="", created_at=now)
    db.session.add(msg)
    db.session.flush()
    return msg


def send_pending(now: datetime, sender: Sender | None = None, *, batch: int = 200) -> dict:
    """Send pending messages in order; one transaction per message. Returns counts."""
    sender = sender or get_sender()
    sent = failed = retry = 0
    ids = db.session.execute(
        sa.select(OutboxMessage.id).where(OutboxMessage.state == "pending").order_by(OutboxMessage.id).limit(batch)
    ).scalars().all()
    db.session.commit()
    for mid in ids:
        q = sa.select(OutboxMessage).where(OutboxMessage.id == mid, OutboxMessage.state == "pending")
        if db.session.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)  # another sender has it: leave it to them
        msg = db.session.execute(q.execution_options(populate_existing=True)).scalar_one_or_none()
        if msg is None:
            db.session.commit()
            continue
        msg.attempts += 1
        try:
            sender.send(msg)
        except SendError as exc:
            msg.last_error = str(exc)[:500]
            if msg.attempts >= MAX_ATTEMPTS:
                msg.state = "failed"
                failed += 1
            else:
                retry += 1
        else:
            msg.state, msg.sent_at, msg.channel = "sent", now, sender.channel
            sent += 1
        db.session.commit()
    return {"sent": sent, "failed": failed, "retry": retry}
