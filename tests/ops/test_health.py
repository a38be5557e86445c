"""/healthz answers while the process lives; /readyz only when the database and schema are right."""

from __future__ import annotations

from flask_migrate import upgrade

from residents_app.extensions import db
from residents_app.ops.services import migration_heads
from tests.conftest import TEST_DB

from .conftest import create_schema, db_name, pg_admin


def test_healthz_is_ok_without_touching_the_database(make_app, tmp_path):
    app = make_app(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")
    resp = app.test_client().get("/healthz")
    assert resp.status_code == 200
    assert resp.get_json() == {"status": "ok"}
    assert resp.headers["Cache-Control"] == "no-store"


def test_readyz_ok_after_migrations(make_database_url, make_app):
    app = make_app(make_database_url())
    with app.app_context():
        upgrade()
        heads = migration_heads()
    assert len(heads) == 1
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"status": "ok", "revision": next(iter(heads))}
    with app.app_context():
        db.engine.dispose()


def test_readyz_refuses_a_database_that_was_never_migrated(make_database_url, make_app):
    app = make_app(make_database_url())
    create_schema(app)  # tables exist but no alembic_version: `flask db upgrade` was not run
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    with app.app_context():
        head = next(iter(migration_heads()))
    problem = f"数据库结构版本 无（未迁移） 不是最新版本 {head}；请运行 flask db upgrade"
    assert resp.get_json() == {"code": "not_ready", "status": 503, "message": "服务尚未就绪：" + problem,
                               "errors": {"migrations": problem}}
    assert resp.headers["Retry-After"] == "10"


def test_readyz_refuses_an_unreachable_database(make_database_url, make_app, tmp_path):
    if TEST_DB == "postgresql":
        url = make_database_url()
        pg_admin(f'ALTER DATABASE "{db_name(url)}" ALLOW_CONNECTIONS false')
    else:
        url = f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}"
    app = make_app(url)
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    body = resp.get_json()
    assert body["code"] == "not_ready"
    assert body["errors"] == {"database": "数据库无法连接（OperationalError）"}
    assert app.test_client().get("/healthz").status_code == 200
