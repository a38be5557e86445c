"""The application shell: error shape, scoping, login, security headers."""

from residents_app.audit.services import record


def test_unknown_api_route_gives_json_error_shape(client):
    resp = client.get("/api/nope")
    assert resp.status_code == 404
    assert resp.get_json() == {"code": "not_found", "status": 404, "message": "找不到该页面或内容", "errors": {}}


def test_method_not_allowed_is_json_on_api(client):
    resp = client.get("/api/auth/login")
    assert resp.status_code == 405
    assert resp.get_json()["code"] == "method_not_allowed"


def test_unknown_page_is_chinese_html(client):
    resp = client.get("/no-such-page")
    assert resp.status_code == 404
    assert "找不到该页面或内容" in resp.get_data(as_text=True)


def test_login_validation_error_names_the_field(client):
    resp = client.post("/api/auth/login", json={"username": "x"})
    body = resp.get_json()
    assert resp.status_code == 422
    assert body["code"] == "validation_failed"
    assert "password" in body["errors"]["json"]


def test_login_rejects_unknown_field(client):
    resp = client.post("/api/auth/login", json={"username": "x", "password": "y", "admin": True})
    assert resp.status_code == 422
    assert "admin" in resp.get_json()["errors"]["json"]


def test_login_is_rate_limited(client, factory):
    office = factory.street_office()
    user = factory.user("street", office=office)
    for _ in range(10):
        assert client.post("/api/auth/login", json={"username": user.username, "password": "wrong"}).status_code == 401
    resp = client.post("/api/auth/login", json={"username": user.username, "password": "correct-horse-1"})
    assert resp.status_code == 429
    assert resp.get_json()["code"] == "rate_limited"


def test_chinese_json_is_not_escaped(client):
    resp = client.get("/api/nope")
    assert "找不到".encode() in resp.data


def test_security_headers(client):
    resp = client.get("/")
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]


def test_csrf_missing_on_form_is_refused(csrf_app, client):
    resp = client.post("/login", data={"username": "a", "password": "b"})
    assert resp.status_code == 400
    assert "表单校验失败" in resp.get_data(as_text=True)


def test_audit_chain_links_entries(db, factory, now):
    estate = factory.estate()
    a = record("test.one", chain=estate.id, actor="system", now=now, data={"x": 1})
    b = record("test.two", chain=estate.id, actor="system", now=now, data={"名": "值"})
    assert (a.seq, b.seq) == (1, 2)
    assert b.prev_hash == a.hash
    assert a.prev_hash == "0" * 64
