"""Files on disk are private to the app's user: the secret key, the SQLite database and roster uploads are
0600 in 0700 directories whatever the umask; previewed rosters never confirmed are deleted by the scheduler
after 24 hours (issue 14, finding 8)."""

from __future__ import annotations

import io
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from residents_app.scheduler import jobs

CSV = "楼栋,房号,产权面积,业主姓名,手机号\n1幢,101,88.50,张三,13900000001\n".encode()
T0 = datetime(2026, 11, 12, 2, 0, tzinfo=UTC)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def usual_umask():
    """The umask most services run with (0022), which made every file 0644."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def upload_root(app, tmp_path):
    old = app.config.get("ROSTER_UPLOAD_DIR")
    app.config["ROSTER_UPLOAD_DIR"] = str(tmp_path / "uploads" / "roster")
    yield tmp_path / "uploads" / "roster"
    app.config["ROSTER_UPLOAD_DIR"] = old


def test_the_secret_key_is_0600_in_a_0700_instance_folder(tmp_path, monkeypatch, usual_umask):
    from residents_app.config import load_config

    monkeypatch.delenv("SECRET_KEY", raising=False)
    instance = tmp_path / "deploy" / "instance"
    key = load_config(instance)["SECRET_KEY"]
    assert len(key) == 64 and (instance / "secret_key").read_text() == key
    assert (mode(instance), mode(instance / "secret_key"), mode(tmp_path / "deploy")) == (0o700, 0o600, 0o700)
    assert sorted(os.listdir(instance)) == ["secret_key"]
    # a key written 0644 by an earlier version is kept, and narrowed
    os.chmod(instance / "secret_key", 0o644)
    os.chmod(instance, 0o755)  # noqa: S103 - the mode an earlier version left
    assert load_config(instance)["SECRET_KEY"] == key
    assert (mode(instance), mode(instance / "secret_key")) == (0o700, 0o600)


def test_the_sqlite_database_is_0600(tmp_path, usual_umask):
    from residents_app import create_app
    from residents_app.extensions import db

    path = tmp_path / "residents.db"
    old = tmp_path / "old.db"
    old.write_bytes(b"")
    os.chmod(old, 0o644)
    for file in (path, old):
        app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{file}"})
        with app.app_context():
            with db.engine.begin() as conn:
                conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
                conn.execute(sa.text("INSERT INTO t VALUES (1)"))
            written = sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(file.name))
            assert written == [file.name, file.name + "-shm", file.name + "-wal"]
            assert {name: mode(tmp_path / name) for name in written} == {name: 0o600 for name in written}
            db.engine.dispose()


def test_a_previewed_roster_is_0600_in_0700_folders(client, db, factory, login_as, upload_root, usual_umask):
    estate = factory.estate()
    committee = factory.user("committee", estate=estate)
    db.session.commit()
    login_as(client, committee)
    resp = client.post(f"/estates/{estate.id}/import", data={"file": (io.BytesIO(CSV), "名册.csv")},
                       content_type="multipart/form-data")
    assert resp.status_code == 200
    [stored] = list((upload_root / str(estate.id)).iterdir())
    assert stored.read_bytes() == CSV
    assert mode(stored) == 0o600
    assert [mode(d) for d in (upload_root.parent, upload_root, upload_root / str(estate.id))] == [0o700] * 3


def _kept(root, estate_id: int, name: str, written: datetime):
    folder = root / str(estate_id)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(CSV)
    os.utime(path, (written.timestamp(), written.timestamp()))
    return path


def test_the_scheduler_deletes_rosters_never_confirmed_after_24_hours(db, upload_root):
    old = _kept(upload_root, 7, "a" * 64 + ".csv", T0 - timedelta(hours=25))
    older = _kept(upload_root, 8, "b" * 64 + ".xlsx", T0 - timedelta(days=30))
    exactly = _kept(upload_root, 7, "c" * 64 + ".csv", T0 - timedelta(hours=24))
    fresh = _kept(upload_root, 7, "d" * 64 + ".csv", T0 - timedelta(hours=23))
    other = _kept(upload_root, 7, "notes.txt", T0 - timedelta(days=30))  # not an upload: left alone
    run = jobs.tick(T0)
    assert (run.status, run.actions, run.summary) == (
        "ok", [{"kind": "roster_uploads_deleted", "count": 2}], {"roster_uploads_deleted": 2})
    assert [p.exists() for p in (old, older, exactly, fresh, other)] == [False, False, True, True, True]
    again = jobs.tick(T0)
    assert (again.status, again.actions) == ("ok", [])
    later = jobs.tick(T0 + timedelta(hours=2))
    assert later.actions == [{"kind": "roster_uploads_deleted", "count": 2}]
    assert [p.exists() for p in (exactly, fresh, other)] == [False, False, True]


def test_the_scheduler_runs_without_an_upload_folder(db, upload_root):
    assert not upload_root.exists()
    assert jobs.tick(T0).actions == []


def test_a_preview_deleted_by_the_scheduler_must_be_uploaded_again(client, db, factory, login_as, upload_root):
    estate = factory.estate()
    committee = factory.user("committee", estate=estate)
    db.session.commit()
    login_as(client, committee)
    client.post(f"/estates/{estate.id}/import", data={"file": (io.BytesIO(CSV), "名册.csv")},
                content_type="multipart/form-data")
    [stored] = list((upload_root / str(estate.id)).iterdir())
    os.utime(stored, (T0.timestamp(), T0.timestamp()))
    assert jobs.tick(T0 + timedelta(hours=23)).actions == []
    assert stored.exists()
    assert jobs.tick(T0 + timedelta(hours=24, seconds=1)).actions == [{"kind": "roster_uploads_deleted", "count": 1}]
    resp = client.post(f"/estates/{estate.id}/import/commit", data={"token": stored.stem})
    assert resp.status_code == 422 and "上传的文件已失效，请重新上传" in resp.get_data(as_text=True)
