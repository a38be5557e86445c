"""What a resident's phone shows when the database is down: a Chinese 503 page, no traceback."""

from __future__ import annotations

import os
import threading

import pytest
from werkzeug.serving import make_server

from tests.conftest import TEST_DB

from .conftest import create_schema, db_name, pg_admin


@pytest.mark.e2e
def test_phone_sees_a_clear_chinese_503_page(make_database_url, make_app, phone_page, screenshot_dir, tmp_path):
    url = make_database_url()
    app = make_app(url)
    create_schema(app)
    from residents_app.extensions import db
    from residents_app.registry.models import Estate, StreetOffice

    with app.app_context():
        office = StreetOffice(code="S9", name="五马街道", district="鹿城区")
        db.session.add(office)
        db.session.flush()
        db.session.add(Estate(code="WM01", name="五马小区", street_office_id=office.id))
        db.session.commit()
        db.engine.dispose()
    if TEST_DB == "postgresql":
        pg_admin(f'ALTER DATABASE "{db_name(url)}" ALLOW_CONNECTIONS false')
    else:
        path = url.removeprefix("sqlite:///")
        os.rename(path, path + ".away")
        os.makedirs(path)
    srv = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    try:
        resp = phone_page.goto(f"http://127.0.0.1:{srv.server_port}/p/WM01")
        assert resp.status == 503
        assert phone_page.inner_text("h1") == "服务暂时不可用，请稍后再试"
        # Issue 18: a resident's error page says what to do next and never shows a code.
        assert "系统暂时无法处理，请过几分钟再试" in phone_page.inner_text("main")
        assert "service_unavailable" not in phone_page.inner_text("main")
        body = phone_page.content()
        assert "Traceback" not in body and "OperationalError" not in body
        phone_page.screenshot(path=os.path.join(screenshot_dir, "ops_503_phone.png"), full_page=True)
    finally:
        srv.shutdown()
        thread.join(timeout=10)
    if TEST_DB == "postgresql":
        pg_admin(f'ALTER DATABASE "{db_name(url)}" ALLOW_CONNECTIONS true')
