"""Shared helpers for the rounds benchmarks: scratch databases, gunicorn, a threaded HTTP load.

Benchmarks are not tests: they print figures and ratios measured in the same run.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PG_ADMIN = os.environ.get("RAPP_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")
SECRET = "bench-secret-key"


@contextlib.contextmanager
def scratch_database(kind: str):
    """Yield a SQLAlchemy URL of an empty database: a temporary SQLite file or a scratch PostgreSQL db."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/bench.db"
        return
    import psycopg
    from psycopg import sql

    name = f"rapp_bench_{os.getpid()}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def make_app(url: str, **config):
    from residents_app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": SECRET, "RATELIMIT_ENABLED": False,
                       **config})


def create_schema(app) -> None:
    from residents_app.audit import db_guards
    from residents_app.extensions import db

    with app.app_context():
        db.create_all()
        db_guards.install(db.engine)


# ---- a minimal Flask endpoint: insert one row and commit (the floor) ---------------------------

def minimal_app():
    """gunicorn 'bench.common:minimal_app()': POST /insert adds one row to bench_row and commits."""
    import sqlalchemy as sa
    from flask import Flask, jsonify

    import residents_app.db  # noqa: F401  (the same SQLite pragmas and BEGIN IMMEDIATE as the app)
    from residents_app.config import engine_options, normalise_database_url

    url = normalise_database_url(os.environ["DATABASE_URL"])
    engine = sa.create_engine(url, **engine_options(url))
    meta = sa.MetaData()
    rows = sa.Table("bench_row", meta, sa.Column("id", sa.Integer, primary_key=True),
                    sa.Column("payload", sa.String(200)), sa.Column("created_at", sa.DateTime(timezone=True)))
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Every gunicorn worker runs this at boot: one at a time, or two CREATE TABLEs race (the loser
            # fails with a duplicate pg_class row and the worker does not boot).
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7302, 1)"))
        meta.create_all(conn)
    app = Flask("minimal")

    @app.post("/insert")
    def insert():
        from datetime import UTC, datetime

        with engine.begin() as conn:
            new_id = conn.execute(rows.insert().values(payload="agree", created_at=datetime.now(UTC))
                                  .returning(rows.c.id)).scalar_one()
        return jsonify({"id": new_id}), 201

    return app


# ---- gunicorn and load -------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Several workers need shared rate-limit counters (the app refuses memory:// then): Redis, as in production.
RATELIMIT_STORAGE = os.environ.get("RATELIMIT_STORAGE_URI", "redis://127.0.0.1:6379")


@contextlib.contextmanager
def gunicorn(app_spec: str, db_url: str, workers: int = 2, threads: int = int(os.environ.get("BENCH_THREADS", "4"))):
    port = free_port()
    env = {**os.environ, "DATABASE_URL": db_url, "SECRET_KEY": SECRET, "PYTHONPATH": str(ROOT),
           "RATELIMIT_STORAGE_URI": RATELIMIT_STORAGE}
    cmd = [str(ROOT / ".venv" / "bin" / "gunicorn"), "-w", str(workers), "-k", "gthread", "--threads",
           str(threads), "-b", f"127.0.0.1:{port}", "--log-level", "warning", app_spec]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"gunicorn did not start: {app_spec}")
        time.sleep(0.5)  # let every worker boot
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def run_load(port: int, requests: list[tuple[str, str, dict | None, dict]], concurrency: int = 8):
    """Send every (method, path, json body, headers) once over `concurrency` keep-alive connections.

    Returns (seconds, {status: count}).
    """
    lock = threading.Lock()
    queue = list(reversed(requests))
    statuses: dict[int, int] = {}

    def worker():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while True:
            with lock:
                if not queue:
                    break
                method, path, body, headers = queue.pop()
            data = json.dumps(body).encode() if body is not None else None
            hdrs = {"Content-Type": "application/json", **headers}
            try:
                conn.request(method, path, body=data, headers=hdrs)
                resp = conn.getresponse()
                resp.read()
                status = resp.status
                if resp.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            except (http.client.HTTPException, OSError):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                status = 599
            with lock:
                statuses[status] = statuses.get(status, 0) + 1
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start, statuses
