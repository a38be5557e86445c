"""Documents on the public notice board: served only once their publicity is posted (the server's clock),
addressed by a random token, never by the sequential id (issue 14, finding 5)."""

from __future__ import annotations

import os
import re
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from residents_app.publicity import services, views

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
BEFORE = datetime(2026, 9, 29, 2, 0, tzinfo=UTC)  # Tue 2026-09-29 10:00 Beijing
POSTED_ON = date(2026, 10, 8)
POSTING_STARTS = datetime(2026, 10, 7, 16, 0, tzinfo=UTC)  # 2026-10-08 00:00 Beijing


@pytest.fixture
def clock(monkeypatch):
    class Clock:
        now = BEFORE

    c = Clock()
    monkeypatch.setattr(views, "utcnow", lambda: c.now)
    return c


@pytest.fixture
def posted_later(db, factory):
    """A publicity posted on 2026-10-08 with one document, prepared on 2026-09-29."""
    estate = factory.estate(code="DOCS", buildings={"1幢": [("101", "90.00")]})
    pub = services.post_publicity(estate, subject_type="hardship_list", subject_id=estate.id,
                                  title="困难群众名单公示", notice_text="请核对", posted_on=POSTED_ON, working_days=5,
                                  actor="t", now=BEFORE)
    doc = services.add_document(pub, "名单.pdf", PDF, actor="t", now=BEFORE)
    db.session.commit()
    return estate, pub, doc


def test_a_document_is_not_served_before_its_publicity_is_posted(client, clock, posted_later):
    estate, pub, doc = posted_later
    url = f"/p/{estate.code}/documents/{doc.token}"
    resp = client.get(url)
    assert resp.status_code == 404 and "找不到该文件" in resp.get_data(as_text=True)
    assert doc.token not in client.get(f"/p/{estate.code}").get_data(as_text=True)
    clock.now = POSTING_STARTS - timedelta(seconds=1)
    assert client.get(url).status_code == 404
    clock.now = POSTING_STARTS
    resp = client.get(url)
    assert (resp.status_code, resp.data, resp.mimetype) == (200, PDF, "application/pdf")
    assert url in client.get(f"/p/{estate.code}").get_data(as_text=True)


def test_staff_still_preview_a_document_before_posting(client, clock, posted_later, factory, login_as, db):
    estate, pub, doc = posted_later
    committee = factory.user("committee", estate=estate)
    db.session.commit()
    login_as(client, committee)
    resp = client.get(f"/publicity/{pub.id}/documents/{doc.id}")
    assert (resp.status_code, resp.data) == (200, PDF)


def test_documents_are_addressed_by_an_unguessable_token(client, clock, posted_later, db):
    estate, pub, doc = posted_later
    other = services.add_document(pub, "附件.pdf", PDF, actor="t", now=BEFORE)
    db.session.commit()
    clock.now = POSTING_STARTS
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", doc.token) and doc.token != other.token
    board = client.get(f"/p/{estate.code}").get_data(as_text=True)
    assert re.findall(r"/p/DOCS/documents/([^\"]+)\"", board) == [doc.token, other.token]
    # the old sequential URLs answer nothing, even once the publicity is posted
    for document_id in (doc.id, other.id):
        assert client.get(f"/p/{estate.code}/documents/{document_id}").status_code == 404
    assert client.get(f"/p/{estate.code}/documents/{doc.token[:-1]}").status_code == 404


def test_a_token_of_another_estate_is_refused(client, clock, posted_later, factory, db):
    estate, pub, doc = posted_later
    other = factory.estate(code="OTHER", buildings={"1幢": [("101", "90.00")]})
    db.session.commit()
    clock.now = POSTING_STARTS
    assert client.get(f"/p/{other.code}/documents/{doc.token}").status_code == 404
    assert client.get(f"/p/{estate.code}/documents/{doc.token}").status_code == 200


# ---- the migration gives every existing document its own token --------------------------------------

PREVIOUS = "7c2d91a4b3e0"


@pytest.fixture
def empty_database_url(tmp_path):
    from ..conftest import PG_ADMIN, TEST_DB

    if TEST_DB != "postgresql":
        yield f"sqlite:///{tmp_path / 'documents.db'}"
        return
    import psycopg
    from psycopg import sql

    name = f"rapp_doc_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_migration_backfills_a_distinct_token_for_existing_documents(empty_database_url):
    from flask_migrate import downgrade, upgrade

    from residents_app import create_app
    from residents_app.extensions import db

    from ..conftest import Factory

    app = create_app({"TESTING": True, "SQLALCHEMY_DATABASE_URI": empty_database_url})
    with app.app_context():
        upgrade(revision=PREVIOUS)
        estate = Factory(db).estate(code="MIG", buildings={"1幢": [("101", "88.50")]})
        pub = services.post_publicity(estate, subject_type="hardship_list", subject_id=estate.id, title="公示",
                                      notice_text="请核对", posted_on=date(2026, 9, 29), working_days=5, actor="t",
                                      now=BEFORE)
        db.session.commit()
        publicity_id = pub.id
        db.session.remove()
        with db.engine.begin() as conn:  # the model already has the token column: plain SQL, as before
            for n in (1, 2, 3):
                conn.execute(sa.text(
                    "INSERT INTO publicity_document (id, publicity_id, filename, content_type, size_bytes, sha256,"
                    " data, uploaded_by, uploaded_at) VALUES (:n, :pub, 'a.pdf', 'application/pdf', 1, 'x', :data,"
                    " 'a', :at)"), {"n": n, "pub": publicity_id, "data": PDF, "at": BEFORE})
        upgrade()
        with db.engine.connect() as conn:
            tokens = conn.execute(sa.text("SELECT token FROM publicity_document ORDER BY id")).scalars().all()
            data = conn.execute(sa.text("SELECT data FROM publicity_document ORDER BY id")).scalars().all()
        assert len(set(tokens)) == 3 and all(re.fullmatch(r"[A-Za-z0-9_-]{32}", t) for t in tokens)
        assert [bytes(d) for d in data] == [PDF] * 3
        with pytest.raises(sa.exc.IntegrityError), db.engine.begin() as conn:
            conn.execute(sa.text("UPDATE publicity_document SET token = :t"), {"t": tokens[0]})
        downgrade(revision=PREVIOUS)
        with db.engine.connect() as conn:
            assert "token" not in {c["name"] for c in sa.inspect(conn).get_columns("publicity_document")}
            assert conn.execute(sa.text("SELECT count(*) FROM publicity_document")).scalar_one() == 3
        downgrade(revision="base")
        db.engine.dispose()
