"""Local fakes of Tencent Cloud SMS and WeChat, each in a thread, and a sender wired to them."""

from __future__ import annotations

import pytest

from residents_app.auth.wechat_client import WechatClient, forget_tokens
from residents_app.notify.fakes import FakeServer, FakeTencentSms, FakeWechat
from residents_app.notify.senders import ChannelSender
from residents_app.notify.tencent_sms import TencentSmsClient


@pytest.fixture
def fake_sms():
    fake = FakeTencentSms()
    with FakeServer(fake) as srv:
        fake.url = srv.url
        yield fake


@pytest.fixture
def fake_wechat():
    forget_tokens()
    fake = FakeWechat()
    with FakeServer(fake) as srv:
        fake.url = srv.url
        yield fake
    forget_tokens()


class Clock:
    def __init__(self, t: float = 1_790_000_000.0):
        self.t = t

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def wechat_clock():
    return Clock()


@pytest.fixture
def make_sender(fake_sms, fake_wechat, wechat_clock):
    def make(*, sms=True, wechat=True, secret_key=None):
        sms_client = TencentSmsClient(fake_sms.secret_id, secret_key or fake_sms.secret_key,
                                      sdk_app_id=fake_sms.sdk_app_id, sign_name="某某小区业委会",
                                      base_url=fake_sms.url) if sms else None
        wx = WechatClient(fake_wechat.app_id, fake_wechat.app_secret, fake_wechat.url,
                          clock=wechat_clock) if wechat else None
        return ChannelSender(wechat=wx, wechat_template_id="TPL-notice", wechat_page="pages/home/index?unit={unit_id}",
                             sms=sms_client, sms_template_id="2100001")

    return make
