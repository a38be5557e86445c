"""End to end in headless Chromium on a laptop: estate overview, unit search and edit, roster import
with errors, then a preview and its confirmation. Screenshots go to docs/screenshots/registry-*.png."""

from __future__ import annotations

import os
import re
from decimal import Decimal
from pathlib import Path

import pytest

from residents_app.db import utcnow
from residents_app.extensions import db as _db
from residents_app.registry.roster import import_roster
from residents_app.registry.services import register_summary
from tests.conftest import Factory, browser_login
from tests.registry.conftest import csv_bytes

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.e2e
def test_committee_register_pages(live_server, live_app, laptop_page, screenshot_dir, tmp_path, roster_upload_dir):
    with live_app.app_context():
        f = Factory(_db)
        office = f.street_office(name="五马街道")
        estate = f.estate(office=office, code="SHOW", name="示范小区")
        f.user("committee", estate=estate, username="chen")
        import_roster(estate, "roster.csv", (EXAMPLES / "roster.csv").read_bytes(), actor="system:test", now=utcnow())
        estate_id = estate.id
        _db.session.commit()
        _db.session.remove()

    page = laptop_page
    browser_login(page, live_server, "chen")
    # Issue 18 item 8: the committee lands on its estate's dashboard; the estate list is under 工作台.
    page.wait_for_url(re.compile(rf".*/estates/{estate_id}/dashboard$"))
    page.click("nav >> text=工作台")
    page.click("text=示范小区")
    page.wait_for_url(re.compile(rf".*/estates/{estate_id}$"))
    total = page.inner_text("#summary-total")
    assert "10" in total and "11" in total and "928.08" in total
    page.screenshot(path=os.path.join(screenshot_dir, "registry-1-overview.png"), full_page=True)

    page.click("text=房号与业主")
    page.fill("#q", "张志强")
    page.click("button:has-text('查找')")
    assert page.inner_text("#result-count") == "共 2 户"
    page.screenshot(path=os.path.join(screenshot_dir, "registry-2-units.png"), full_page=True)

    page.click("#units >> text=编辑 >> nth=0")
    page.fill("#title_area_m2", "88.555")
    page.click("button:has-text('保存')")
    assert "面积「88.555」超过两位小数" in page.inner_text("#errors")
    page.fill("#title_area_m2", "88.10")
    page.click("button:has-text('保存')")
    assert "已保存 1幢-202" in page.inner_text(".flash-success")
    page.screenshot(path=os.path.join(screenshot_dir, "registry-3-unit.png"), full_page=True)

    bad = tmp_path / "名册-有错.csv"
    bad.write_bytes(csv_bytes([["1幢", "401", "0.1", "赵六", "1385770", "", "", ""],
                               ["1幢", "402", "66.666", "钱七", "13857700402", "", "也许", ""]], encoding="gb18030"))
    page.goto(f"{live_server}/estates/{estate_id}/import")
    page.set_input_files("#file", str(bad))
    page.click("#upload")
    assert "名册有 3 处错误，未导入任何数据" in page.inner_text("#import-errors")
    page.screenshot(path=os.path.join(screenshot_dir, "registry-4-import-errors.png"), full_page=True)

    good = tmp_path / "名册-更正.csv"
    good.write_bytes(csv_bytes([["1幢", "401", "90.12", "赵六", "13857700601", "", "否", "住宅"]]))
    page.set_input_files("#file", str(good))
    page.click("#upload")
    assert page.inner_text("#units-added") == "1"
    assert page.inner_text("#units-missing") == "10"
    page.screenshot(path=os.path.join(screenshot_dir, "registry-5-import-preview.png"), full_page=True)
    page.click("#confirm-import")
    page.wait_for_url(re.compile(rf".*/estates/{estate_id}$"))
    assert "新增 1 户" in page.inner_text(".flash-success")

    with live_app.app_context():
        s = register_summary(estate_id)
        assert (s.unit_count, s.owner_count, s.title_area_m2) == (11, 12, Decimal("1018.25"))
