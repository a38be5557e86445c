"""Tencent Cloud SMS (API 3.0, action SendSms, version 2021-01-11), signed with TC3-HMAC-SHA256 exactly as
documented (https://cloud.tencent.com/document/api/382/52072 "签名方法 v3"; tests check the documented example).

The base URL is a setting (TENCENT_SMS_BASE) so the tests and the bench talk to a local fake (notify/fakes.py);
the signed Host is that URL's host.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

import requests

DEFAULT_BASE = "https://sms.tencentcloudapi.com"
SERVICE = "sms"
VERSION = "2021-01-11"
ACTION = "SendSms"
ALGORITHM = "TC3-HMAC-SHA256"
CONTENT_TYPE = "application/json; charset=utf-8"
TIMEOUT_S = 10
# Per-number codes worth another try later (limits per number and time); everything else but "Ok" is final.
TRANSIENT_CODES = {
    "LimitExceeded.PhoneNumberThirtySecondLimit", "LimitExceeded.PhoneNumberOneHourLimit",
    "LimitExceeded.PhoneNumberDailyLimit", "LimitExceeded.DeliveryFrequencyLimit", "RequestLimitExceeded",
    "InternalError", "InternalError.Timeout", "InternalError.RequestTimeException", "FailedOperation.JsonParseFail",
}
# The user replied TD (unsubscribed) at the operator: record an opt-out.
UNSUBSCRIBED_CODES = {"FailedOperation.PhoneNumberInBlacklist", "FailedOperation.PhoneNumberOnBlacklist"}


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def canonical_request(host: str, payload: str, content_type: str = CONTENT_TYPE) -> str:
    """POST, URI "/", no query string, signed headers content-type and host, the payload's SHA-256."""
    return "\n".join(["POST", "/", "", f"content-type:{content_type}\nhost:{host}\n", "content-type;host",
                      sha256_hex(payload)])


def string_to_sign(timestamp: int, service: str, canonical: str) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")  # the UTC date, as documented
    return "\n".join([ALGORITHM, str(timestamp), f"{date}/{service}/tc3_request", sha256_hex(canonical)])


def signature(secret_key: str, timestamp: int, service: str, canonical: str) -> str:
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    secret_date = _hmac(("TC3" + secret_key).encode("utf-8"), date)
    secret_service = _hmac(secret_date, service)
    secret_signing = _hmac(secret_service, "tc3_request")
    return hmac.new(secret_signing, string_to_sign(timestamp, service, canonical).encode("utf-8"),
                    hashlib.sha256).hexdigest()


def authorization(secret_id: str, secret_key: str, *, timestamp: int, service: str, host: str, payload: str) -> str:
    canonical = canonical_request(host, payload)
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    return (f"{ALGORITHM} Credential={secret_id}/{date}/{service}/tc3_request, SignedHeaders=content-type;host, "
            f"Signature={signature(secret_key, timestamp, service, canonical)}")


@dataclass(frozen=True)
class SmsResult:
    phone: str
    code: str  # "Ok" or Tencent's error code
    message: str
    serial_no: str = ""

    @property
    def ok(self) -> bool:
        return self.code == "Ok"

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES


class SmsApiError(Exception):
    """The whole request failed (signature, credentials, limits, network): no number was sent to."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message

    @property
    def transient(self) -> bool:
        return self.code in TRANSIENT_CODES or self.code.startswith(("InternalError", "Network"))


class TencentSmsClient:
    def __init__(self, secret_id: str, secret_key: str, *, sdk_app_id: str, sign_name: str,
                 base_url: str = DEFAULT_BASE, region: str = "ap-guangzhou",
                 clock: Callable[[], float] = time.time, http: requests.Session | None = None):
        self.secret_id = secret_id
        self.secret_key = secret_key
        self.sdk_app_id = sdk_app_id
        self.sign_name = sign_name
        self.base_url = base_url.rstrip("/")
        self.host = urlsplit(self.base_url).netloc
        self.region = region
        self.clock = clock
        self.http = http or requests.Session()

    @classmethod
    def from_config(cls, config) -> TencentSmsClient:
        return cls(config.get("TENCENT_SECRET_ID", ""), config.get("TENCENT_SECRET_KEY", ""),
                   sdk_app_id=config.get("TENCENT_SMS_SDK_APP_ID", ""), sign_name=config.get("TENCENT_SMS_SIGN", ""),
                   base_url=config.get("TENCENT_SMS_BASE") or DEFAULT_BASE,
                   region=config.get("TENCENT_SMS_REGION") or "ap-guangzhou")

    def call(self, action: str, body: dict) -> dict:
        """One signed API 3.0 call; the `Response` object, or SmsApiError."""
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        timestamp = int(self.clock())
        headers = {
            "Authorization": authorization(self.secret_id, self.secret_key, timestamp=timestamp, service=SERVICE,
                                           host=self.host, payload=payload),
            "Content-Type": CONTENT_TYPE, "Host": self.host, "X-TC-Action": action, "X-TC-Version": VERSION,
            "X-TC-Timestamp": str(timestamp), "X-TC-Region": self.region,
        }
        try:
            resp = self.http.post(self.base_url + "/", data=payload.encode("utf-8"), headers=headers,
                                  timeout=TIMEOUT_S)
            answer = resp.json().get("Response", {})
        except (requests.RequestException, ValueError, AttributeError) as exc:
            raise SmsApiError("Network", type(exc).__name__) from exc
        if "Error" in answer:
            raise SmsApiError(str(answer["Error"].get("Code", "")), str(answer["Error"].get("Message", "")))
        return answer

    def pull_status(self, phone: str, since: int, until: int) -> list[dict]:
        """Delivery receipts of one number in a time window (PullSmsSendStatusByPhoneNumber): each carries the
        SessionContext the message was sent with."""
        answer = self.call("PullSmsSendStatusByPhoneNumber", {
            "SendDateTime": since, "EndDateTime": until, "Offset": 0, "Limit": 100,
            "PhoneNumber": phone if phone.startswith("+") else "+86" + phone, "SmsSdkAppId": self.sdk_app_id})
        return list(answer.get("PullSmsSendStatusSet", []))

    def send(self, phones: list[str], template_id: str, params: list[str], session_context: str = ""
             ) -> list[SmsResult]:
        """One SendSms call (at most 200 numbers). Numbers are sent as +86...; results come back per number."""
        answer = self.call(ACTION, {
            "PhoneNumberSet": [p if p.startswith("+") else "+86" + p for p in phones],
            "SmsSdkAppId": self.sdk_app_id, "SignName": self.sign_name, "TemplateId": template_id,
            "TemplateParamSet": params, "SessionContext": session_context})
        out = []
        for item in answer.get("SendStatusSet", []):
            phone = str(item.get("PhoneNumber", ""))
            out.append(SmsResult(phone=phone[3:] if phone.startswith("+86") else phone, code=str(item.get("Code")),
                                 message=str(item.get("Message", "")), serial_no=str(item.get("SerialNo", ""))))
        return out
