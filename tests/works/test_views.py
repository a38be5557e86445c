"""The start application page."""

from __future__ import annotations


def test_start_page_lists_reasons(client, login_as, world):
    world.plan()
    login_as(client, world.committee)
    page = client.get(f"/estates/{world.estate.id}/start").get_data(as_text=True)
    assert "第 1 版方案还没有已结束的方案表决" in page
    resp = client.post(f"/estates/{world.estate.id}/start")
    assert resp.status_code == 409
    data = client.get(f"/api/plans/estates/{world.estate.id}/start").get_json()
    assert [c["met"] for c in data["checks"]] == [False, False, False, False, True, False, False]
