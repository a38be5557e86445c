"""The platform's client of WeChat's server API (the mini-program's back end): `sns/jscode2session` for login,
`cgi-bin/token` for the access token (cached per app and refreshed before it expires or when WeChat answers
40001/42001), `cgi-bin/message/subscribe/send` for subscribe messages (notify/ sends those).

It lives in auth/ because the login binding is the lowest layer that talks to WeChat; notify/ (above) uses it too.
The base URL is a setting (WECHAT_API_BASE) so the tests and the bench talk to a local fake
(residents_app/notify/fakes.py) that follows the documented request and response shapes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import requests

DEFAULT_BASE = "https://api.weixin.qq.com"
TIMEOUT_S = 10
# Refresh this long before WeChat's expires_in runs out (it is 7200 s; a token in flight must not expire).
TOKEN_MARGIN_S = 300
TOKEN_INVALID = {40001, 42001, 40014}
# Worth another try later: system busy, API quota or frequency limits.
TRANSIENT = {-1, 45009, 45011, 45047}
ERRMSG_ZH = {
    40029: "登录凭证无效或已过期，请重新打开小程序",
    40163: "登录凭证已使用过，请重新打开小程序",
    40226: "微信账号存在风险，暂不能登录",
    45011: "登录过于频繁，请稍后再试",
    -1: "微信服务繁忙，请稍后再试",
}


class WechatError(Exception):
    def __init__(self, errcode: int, errmsg: str):
        super().__init__(f"wechat {errcode}: {errmsg}")
        self.errcode = errcode
        self.errmsg = errmsg

    @property
    def transient(self) -> bool:
        return self.errcode in TRANSIENT

    @property
    def message_zh(self) -> str:
        return ERRMSG_ZH.get(self.errcode, "微信登录失败，请稍后再试")


@dataclass(frozen=True)
class CodeSession:
    openid: str
    unionid: str | None


_TOKENS: dict[tuple[str, str], tuple[str, float]] = {}
_TOKENS_LOCK = threading.Lock()


class WechatClient:
    def __init__(self, app_id: str, app_secret: str, base_url: str = DEFAULT_BASE, *,
                 clock: Callable[[], float] = time.time, http: requests.Session | None = None):
        self.app_id = app_id
        self.app_secret = app_secret
        self.base_url = base_url.rstrip("/")
        self.clock = clock
        self.http = http or requests.Session()

    @classmethod
    def from_config(cls, config) -> WechatClient:
        return cls(config.get("WECHAT_APP_ID", ""), config.get("WECHAT_APP_SECRET", ""),
                   config.get("WECHAT_API_BASE") or DEFAULT_BASE)

    def _get(self, path: str, params: dict) -> dict:
        try:
            resp = self.http.get(self.base_url + path, params=params, timeout=TIMEOUT_S)
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise WechatError(-1, f"network: {type(exc).__name__}") from exc
        return body

    def _post(self, path: str, params: dict, payload: dict) -> dict:
        try:
            resp = self.http.post(self.base_url + path, params=params, json=payload, timeout=TIMEOUT_S)
            body = resp.json()
        except (requests.RequestException, ValueError) as exc:
            raise WechatError(-1, f"network: {type(exc).__name__}") from exc
        return body

    @staticmethod
    def _check(body: dict) -> dict:
        code = int(body.get("errcode") or 0)
        if code:
            raise WechatError(code, str(body.get("errmsg", "")))
        return body

    def code_to_session(self, js_code: str) -> CodeSession:
        """wx.login's code -> the user's openid (GET sns/jscode2session). The session_key is not kept: the server
        decrypts nothing the mini-program sends."""
        body = self._check(self._get("/sns/jscode2session", {
            "appid": self.app_id, "secret": self.app_secret, "js_code": js_code, "grant_type": "authorization_code"}))
        openid = body.get("openid")
        if not openid:
            raise WechatError(-1, "no openid in the answer")
        return CodeSession(openid=str(openid), unionid=body.get("unionid"))

    def access_token(self, *, refresh: bool = False) -> str:
        key = (self.base_url, self.app_id)
        with _TOKENS_LOCK:
            cached = _TOKENS.get(key)
            if cached and not refresh and cached[1] > self.clock():
                return cached[0]
            body = self._check(self._get("/cgi-bin/token", {
                "grant_type": "client_credential", "appid": self.app_id, "secret": self.app_secret}))
            token = str(body["access_token"])
            _TOKENS[key] = (token, self.clock() + int(body.get("expires_in", 7200)) - TOKEN_MARGIN_S)
            return token

    def send_subscribe_message(self, openid: str, template_id: str, data: dict, page: str = "",
                               state: str = "formal") -> str:
        """POST cgi-bin/message/subscribe/send; returns WeChat's msgid. A token WeChat calls invalid or expired is
        fetched again once and the message re-sent."""
        payload = {"touser": openid, "template_id": template_id, "data": data, "miniprogram_state": state,
                   "lang": "zh_CN"}
        if page:
            payload["page"] = page
        for attempt in (0, 1):
            token = self.access_token(refresh=attempt == 1)
            body = self._post("/cgi-bin/message/subscribe/send", {"access_token": token}, payload)
            code = int(body.get("errcode") or 0)
            if code in TOKEN_INVALID and attempt == 0:
                continue
            self._check(body)
            return str(body.get("msgid", ""))
        raise WechatError(40001, "access_token still invalid after a refresh")  # pragma: no cover


def forget_tokens() -> None:
    """Drop cached access tokens (tests)."""
    with _TOKENS_LOCK:
        _TOKENS.clear()
