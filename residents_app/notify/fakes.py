"""Local fakes of the providers, for the tests, the bench and a demo without credentials. Each follows the
documented request and response shapes, errors included, and records what it accepted.

- FakeTencentSms: POST / with X-TC-Action SendSms, checks the TC3-HMAC-SHA256 signature with the secret it knows,
  answers {"Response": {"SendStatusSet": [...], "RequestId": ...}} or {"Response": {"Error": {...}}}.
- FakeWechat: GET /cgi-bin/token, POST /cgi-bin/message/subscribe/send, GET /sns/jscode2session, answering
  {"errcode": ..., "errmsg": ...} on errors (40001 invalid token, 40029 invalid code, 45011 rate limit, 43101 not
  subscribed, ...).

`FakeServer(app)` runs one in a thread on 127.0.0.1 and a free port (werkzeug's server).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import uuid
from collections import deque

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from residents_app.notify import tencent_sms


def _json(body: dict, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, mimetype="application/json")


class FakeTencentSms:
    def __init__(self, secret_id: str = "AKIDfake", secret_key: str = "fake-secret",  # noqa: S107 - a fake's own
                 sdk_app_id: str = "1400000000", *, clock=time.time):
        self.secret_id, self.secret_key, self.sdk_app_id = secret_id, secret_key, sdk_app_id
        self.clock = clock
        self.sent: list[dict] = []  # accepted: phone, template_id, params, session_context, serial_no
        self.invalid_numbers: set[str] = set()
        self.blacklisted: set[str] = set()
        self.limited_numbers: set[str] = set()  # answer LimitExceeded.PhoneNumberThirtySecondLimit
        self.fail_next: deque[str] = deque()  # request-level error codes to answer next, in order
        self.requests = 0
        self._serial = itertools.count(1)
        self._lock = threading.Lock()

    def _error(self, code: str, message: str) -> Response:
        return _json({"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}})

    def __call__(self, environ, start_response):
        request = Request(environ)
        return self.handle(request)(environ, start_response)

    def handle(self, request: Request) -> Response:
        with self._lock:
            self.requests += 1
            injected = self.fail_next.popleft() if self.fail_next else None
        if request.method == "GET" and request.path == "/_fake/stats":
            return self.stats()
        if request.method == "POST" and request.path == "/_fake/reset":
            with self._lock:
                self.sent.clear()
                self.requests = 0
            return _json({"ok": True})
        action = request.headers.get("X-TC-Action")
        if request.method != "POST" or action not in ("SendSms", "PullSmsSendStatusByPhoneNumber"):
            return self._error("InvalidAction", "only SendSms and PullSmsSendStatusByPhoneNumber are faked")
        if request.headers.get("X-TC-Version") != tencent_sms.VERSION:
            return self._error("InvalidParameter", "X-TC-Version")
        payload = request.get_data(as_text=True)
        try:
            timestamp = int(request.headers.get("X-TC-Timestamp", ""))
        except ValueError:
            return self._error("MissingParameter", "X-TC-Timestamp")
        if abs(self.clock() - timestamp) > 300:
            return self._error("AuthFailure.SignatureExpire", "signature expired")
        expected = tencent_sms.authorization(self.secret_id, self.secret_key, timestamp=timestamp, service="sms",
                                             host=request.headers.get("Host", ""), payload=payload)
        if request.headers.get("Authorization") != expected:
            if f"Credential={self.secret_id}/" not in request.headers.get("Authorization", ""):
                return self._error("AuthFailure.SecretIdNotFound", "SecretId not found")
            return self._error("AuthFailure.SignatureFailure", "The provided credentials could not be validated.")
        if injected:
            return self._error(injected, "injected by the test")
        body = json.loads(payload)
        if action == "PullSmsSendStatusByPhoneNumber":
            return self.pull_status(body)
        if body.get("SmsSdkAppId") != self.sdk_app_id:
            return self._error("FailedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId")
        statuses = []
        for number in body.get("PhoneNumberSet", []):
            phone = number[3:] if number.startswith("+86") else number
            if phone in self.invalid_numbers or not (phone.isdigit() and len(phone) == 11):
                code, msg = "InvalidParameterValue.IncorrectPhoneNumber", "incorrect phone number"
            elif phone in self.blacklisted:
                code, msg = "FailedOperation.PhoneNumberInBlacklist", "phone number in blacklist"
            elif phone in self.limited_numbers:
                code, msg = "LimitExceeded.PhoneNumberThirtySecondLimit", "30 second limit"
            else:
                code, msg = "Ok", "send success"
            serial = f"2433:{next(self._serial):016d}" if code == "Ok" else ""
            if code == "Ok":
                with self._lock:
                    self.sent.append({"phone": phone, "template_id": body.get("TemplateId"), "at": int(self.clock()),
                                      "params": body.get("TemplateParamSet"), "sign": body.get("SignName"),
                                      "session_context": body.get("SessionContext", ""), "serial_no": serial})
            statuses.append({"SerialNo": serial, "PhoneNumber": number, "Fee": 1 if code == "Ok" else 0,
                             "SessionContext": body.get("SessionContext", ""), "Code": code, "Message": msg,
                             "IsoCode": "CN"})
        return _json({"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}})


    def pull_status(self, body: dict) -> Response:
        """Delivery receipts of one number (every accepted message is delivered at once here; the real operator
        reports within seconds to minutes)."""
        if body.get("SmsSdkAppId") != self.sdk_app_id:
            return self._error("FailedOperation.SmsSdkAppIdVerifyFail", "SmsSdkAppId")
        number = str(body.get("PhoneNumber", ""))
        phone = number[3:] if number.startswith("+86") else number
        start, end = int(body.get("SendDateTime", 0)), int(body.get("EndDateTime") or 2**40)
        limit = min(int(body.get("Limit", 100)), 100)
        with self._lock:
            rows = [r for r in self.sent if r["phone"] == phone and start <= r["at"] <= end][:limit]
        return _json({"Response": {"PullSmsSendStatusSet": [
            {"UserReceiveTime": r["at"], "CountryCode": "86", "SubscriberNumber": phone, "PhoneNumber": "+86" + phone,
             "SerialNo": r["serial_no"], "ReportStatus": "SUCCESS", "Description": "DELIVRD",
             "SessionContext": r["session_context"]} for r in rows], "RequestId": str(uuid.uuid4())}})

    def stats(self) -> Response:
        """Not Tencent's: what the fake accepted, for a bench in another process."""
        with self._lock:
            contexts: dict[str, int] = {}
            for r in self.sent:
                contexts[r["session_context"]] = contexts.get(r["session_context"], 0) + 1
            return _json({"accepted": len(self.sent), "requests": self.requests,
                          "duplicates": sorted(c for c, n in contexts.items() if n > 1), "distinct": len(contexts)})


class FakeWechat:
    def __init__(self, app_id: str = "wxfakeappid", app_secret: str = "fake-app-secret",  # noqa: S107 - a fake's own
                 *, expires_in: int = 7200):
        self.app_id, self.app_secret, self.expires_in = app_id, app_secret, expires_in
        self.codes: dict[str, str] = {}  # wx.login code -> openid (each usable once)
        self.used_codes: set[str] = set()
        self.subscribed: dict[str, int] = {}  # openid -> subscribe quota left (1 per accepted subscription)
        self.templates: set[str] = {"TPL-notice"}
        self.valid_tokens: set[str] = set()
        self.tokens_issued = 0
        self.sent: list[dict] = []
        self.rate_limited = False  # jscode2session answers 45011
        self._msgid = itertools.count(1_000_001)
        self._lock = threading.Lock()

    def issue_code(self, openid: str) -> str:
        code = "code-" + uuid.uuid4().hex[:12]
        self.codes[code] = openid
        return code

    def invalidate_tokens(self) -> None:
        """As when another server fetched a new token: the old ones answer 40001."""
        self.valid_tokens.clear()

    def __call__(self, environ, start_response):
        request = Request(environ)
        return self.handle(request)(environ, start_response)

    def _credentials_ok(self, args) -> Response | None:
        if args.get("appid") != self.app_id:
            return _json({"errcode": 40013, "errmsg": "invalid appid"})
        if args.get("secret") != self.app_secret:
            return _json({"errcode": 40125, "errmsg": "invalid appsecret"})
        return None

    def handle(self, request: Request) -> Response:
        path = request.path
        if path == "/cgi-bin/token" and request.method == "GET":
            if request.args.get("grant_type") != "client_credential":
                return _json({"errcode": 40002, "errmsg": "invalid grant_type"})
            bad = self._credentials_ok(request.args)
            if bad:
                return bad
            with self._lock:
                self.tokens_issued += 1
                token = f"ACCESS_TOKEN_{self.tokens_issued}_{uuid.uuid4().hex[:8]}"
                self.valid_tokens.add(token)
            return _json({"access_token": token, "expires_in": self.expires_in})
        if path == "/cgi-bin/message/subscribe/send" and request.method == "POST":
            if request.args.get("access_token") not in self.valid_tokens:
                return _json({"errcode": 40001,
                              "errmsg": "invalid credential, access_token is invalid or not latest"})
            body = request.get_json(silent=True) or {}
            openid = body.get("touser", "")
            if body.get("template_id") not in self.templates:
                return _json({"errcode": 40037, "errmsg": "invalid template_id"})
            if not isinstance(body.get("data"), dict) or not body["data"]:
                return _json({"errcode": 47003, "errmsg": "argument invalid! data is empty"})
            for value in body["data"].values():
                if not isinstance(value, dict) or len(str(value.get("value", ""))) > 20:
                    return _json({"errcode": 47003, "errmsg": "argument invalid! data.thing.value exceeds limit"})
            with self._lock:
                if openid not in self.subscribed:
                    return _json({"errcode": 40003, "errmsg": "invalid openid"})
                if self.subscribed[openid] <= 0:
                    return _json({"errcode": 43101, "errmsg": "user refuse to accept the msg"})
                self.subscribed[openid] -= 1
                msgid = next(self._msgid)
                self.sent.append({"touser": openid, "template_id": body["template_id"], "data": body["data"],
                                  "page": body.get("page", ""), "msgid": msgid})
            return _json({"errcode": 0, "errmsg": "ok", "msgid": msgid})
        if path == "/sns/jscode2session" and request.method == "GET":
            bad = self._credentials_ok(request.args)
            if bad:
                return bad
            if self.rate_limited:
                return _json({"errcode": 45011,
                              "errmsg": "api minute-quota reach limit  mustslower  retry next minute"})
            code = request.args.get("js_code", "")
            with self._lock:
                if code in self.used_codes:
                    return _json({"errcode": 40163, "errmsg": "code been used"})
                openid = self.codes.get(code)
                if openid is None:
                    return _json({"errcode": 40029, "errmsg": "invalid code"})
                self.used_codes.add(code)
            return _json({"openid": openid, "session_key": uuid.uuid4().hex})
        return _json({"errcode": 404, "errmsg": "not faked"}, status=404)


class FakeServer:
    """Runs a WSGI app on 127.0.0.1:<free port> in a daemon thread; `url` is its base URL."""

    def __init__(self, app):
        self.app = app
        self._srv = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self._srv.server_port}"
        self._thread = threading.Thread(target=self._srv.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._srv.shutdown()
        self._srv.server_close()
