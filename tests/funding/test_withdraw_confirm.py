"""Withdrawing a pledge asks once more (issue 18 item 7): the page's first button only opens the confirmation."""

from __future__ import annotations


def test_pledge_withdrawal_is_behind_a_confirmation_step(client, world, resident_login, db):
    world.plan()
    resident_login(client, world.u102)
    assert client.post("/r/pledge", data={"confirm": "1"}).status_code == 302
    page = client.get("/r/pledge").get_data(as_text=True)
    step = page[page.index('<details class="confirm-step" id="withdraw-step">'):page.index("</details>")]
    assert '<summary class="button secondary">撤回承诺书…</summary>' in step
    assert "撤回后，本户的出资承诺不再计入。确定要撤回吗？" in step
    assert '<button type="submit" class="danger" id="withdraw">确认撤回</button>' in step
