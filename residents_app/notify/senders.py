"""The real senders behind the outbox: WeChat subscribe messages to the openids bound to a unit, then SMS (Tencent
Cloud) to the owners' phones, each recipient recorded in `outbox_delivery`.

A unit is reached when one recipient accepted the message. WeChat goes first (free, and the resident chose it by
binding); when no openid takes it, SMS. A retry skips the recipients already reached. Permanent refusals (a
wrong number, a user who never subscribed, an unsubscribed number: that one becomes an opt-out) are final for that
recipient; if nobody took the message and some refusal was transient, the outbox tries again after its backoff.
"""

from __future__ import annotations

import logging
from datetime import datetime

import sqlalchemy as sa

from residents_app.auth.wechat_client import WechatClient, WechatError
from residents_app.extensions import db
from residents_app.notify import services as reach_svc
from residents_app.notify.models import OutboxDelivery, OutboxMessage
from residents_app.notify.outbox import NoRecipient, PermanentSendError, SendError
from residents_app.notify.tencent_sms import UNSUBSCRIBED_CODES, SmsApiError, TencentSmsClient

log = logging.getLogger(__name__)

THING_MAX = 20  # characters of a subscribe message's `thing` value


def _thing(text: str) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= THING_MAX else text[:THING_MAX - 1] + "…"


class ChannelSender:
    channel = "wechat+sms"
    # `reconcile` finds SMS deliveries again (their receipts); a WeChat delivery the outbox commits at once.
    reconcilable_channels = frozenset({"sms"})

    def __init__(self, *, wechat: WechatClient | None, wechat_template_id: str = "", wechat_page: str = "",
                 sms: TencentSmsClient | None, sms_template_id: str = ""):
        self.wechat = wechat
        self.wechat_template_id = wechat_template_id
        self.wechat_page = wechat_page
        self.sms = sms
        self.sms_template_id = sms_template_id

    @classmethod
    def from_config(cls, config) -> ChannelSender:
        wechat = WechatClient.from_config(config) if config.get("WECHAT_APP_ID") else None
        sms = TencentSmsClient.from_config(config) if config.get("TENCENT_SECRET_ID") else None
        if wechat is None and sms is None:
            # Otherwise every message would be "skipped" (nobody reachable) without a word.
            raise RuntimeError("OUTBOX_SENDER=channels needs WECHAT_APP_ID or TENCENT_SECRET_ID")
        return cls(wechat=wechat, wechat_template_id=config.get("WECHAT_TEMPLATE_ID", ""),
                   wechat_page=config.get("WECHAT_PAGE", ""), sms=sms,
                   sms_template_id=config.get("TENCENT_SMS_TEMPLATE_ID", ""))

    def prefetch(self, unit_ids: list[int]) -> None:
        """Who each unit of the coming batch reaches, in three queries (the outbox calls this per batch)."""
        self._reach = reach_svc.reach_for_units(unit_ids)

    def _reach_of(self, unit_id: int) -> reach_svc.Reach:
        cached = getattr(self, "_reach", {}).get(unit_id)
        return cached if cached is not None else reach_svc.reach_for_units([unit_id])[unit_id]

    # -- recording -----------------------------------------------------------------------------------------
    @staticmethod
    def _previous(message: OutboxMessage) -> dict[tuple[str, str], OutboxDelivery]:
        rows = db.session.execute(sa.select(OutboxDelivery).where(OutboxDelivery.message_id == message.id)).scalars()
        return {(d.channel, d.recipient): d for d in rows}

    @staticmethod
    def _record(previous, message, channel, recipient, owner_id, state, now, ref="", code="") -> None:
        row = previous.get((channel, recipient))
        if row is None:
            row = OutboxDelivery(message_id=message.id, channel=channel, recipient=recipient, owner_id=owner_id)
            db.session.add(row)
            previous[(channel, recipient)] = row
        row.state, row.provider_ref, row.error_code, row.at = state, ref[:80], code[:80], now

    # -- sending -------------------------------------------------------------------------------------------
    def deliver(self, message: OutboxMessage, now: datetime) -> str:
        reach = self._reach_of(message.unit_id)
        usable_wechat = reach.openids if self.wechat is not None else []
        usable_sms = reach.phones if self.sms is not None else []
        if not usable_wechat and not usable_sms:
            raise NoRecipient("本户没有可用的微信或短信渠道", code="no_channel")
        # A first attempt has no deliveries yet (the outbox counts the attempt before calling).
        previous = self._previous(message) if message.attempts > 1 else {}
        if any(d.state == "sent" for d in previous.values()):
            return next(d.channel for d in previous.values() if d.state == "sent")
        transient: list[tuple[str, str]] = []  # (code, message) of refusals worth another try
        if usable_wechat and self._send_wechat(message, usable_wechat, previous, now, transient):
            return "wechat"
        if usable_sms and self._send_sms(message, usable_sms, previous, now, transient):
            return "sms"
        if transient:
            raise SendError("；".join(f"{c}: {m}" for c, m in transient)[:500], code=transient[0][0])
        codes = sorted({d.error_code for d in previous.values() if d.state == "failed"})
        raise PermanentSendError("所有接收人都拒收：" + "、".join(codes), code=codes[0] if codes else "refused")

    def reconcile(self, message: OutboxMessage, now: datetime) -> str | None:
        """A message claimed by a sender that died before recording the answer: did the SMS provider accept it?
        Its delivery receipts carry the SessionContext "outbox:<id>". Returns "sms" (recorded, not to be sent
        again) or None (send it). WeChat has no such lookup: an in-doubt WeChat message is sent again."""
        if self.sms is None:
            return None
        reach = reach_svc.reach_for_units([message.unit_id])[message.unit_id]
        previous = self._previous(message)
        since = int(message.created_at.timestamp()) - 300
        until = int(self.sms.clock()) + 300
        context = f"outbox:{message.id}"
        found = False
        for owner_id, phone in reach.phones:
            try:
                receipts = self.sms.pull_status(phone, since, until)
            except SmsApiError as exc:
                raise SendError(f"sms:{exc.code}: {exc.message}", code=f"sms:{exc.code}") from None
            for r in receipts:
                if r.get("SessionContext") == context:
                    self._record(previous, message, "sms", phone, owner_id, "sent", now, ref=str(r.get("SerialNo")))
                    found = True
        return "sms" if found else None

    def _send_wechat(self, message, openids, previous, now, transient) -> bool:
        data = {"thing1": {"value": _thing(message.title or message.text)}, "thing2": {"value": _thing(message.text)}}
        page = self.wechat_page.format(unit_id=message.unit_id) if self.wechat_page else ""
        reached = False
        for owner_id, openid in openids:
            if previous.get(("wechat", openid)) is not None and previous[("wechat", openid)].state == "failed":
                continue  # refused for good before
            try:
                msgid = self.wechat.send_subscribe_message(openid, self.wechat_template_id, data, page)
            except WechatError as exc:
                code = f"wechat:{exc.errcode}"
                state = "retry" if exc.transient else "failed"
                self._record(previous, message, "wechat", openid, owner_id, state, now, code=code)
                if exc.transient:
                    transient.append((code, exc.errmsg))
                continue
            self._record(previous, message, "wechat", openid, owner_id, "sent", now, ref=msgid)
            reached = True
        return reached

    def _send_sms(self, message, phones, previous, now, transient) -> bool:
        todo = [(o, p) for o, p in phones
                if previous.get(("sms", p)) is None or previous[("sms", p)].state != "failed"]
        if not todo:
            return False
        owner_of = {p: o for o, p in todo}
        try:
            results = self.sms.send([p for _, p in todo], self.sms_template_id, [message.text],
                                    session_context=f"outbox:{message.id}")
        except SmsApiError as exc:
            if not exc.transient:
                # Credentials, signature, account: nothing goes until someone fixes the settings. Not the resident's
                # fault, so the message is kept (retried after its backoff) rather than failed.
                log.error("SMS provider refused the request: %s", exc)
            transient.append((f"sms:{exc.code}", exc.message))
            return False
        reached = False
        for res in results:
            owner_id = owner_of.get(res.phone)
            if res.ok:
                self._record(previous, message, "sms", res.phone, owner_id, "sent", now, ref=res.serial_no)
                reached = True
                continue
            state = "retry" if res.transient else "failed"
            self._record(previous, message, "sms", res.phone, owner_id, state, now, code=f"sms:{res.code}")
            if res.transient:
                transient.append((f"sms:{res.code}", res.message))
            elif res.code in UNSUBSCRIBED_CODES and owner_id is not None:
                reach_svc.opt_out(owner_id, "sms", now, source="operator")
        return reached
