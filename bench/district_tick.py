"""The tick row of bench_district.py: the scheduler's tick closing the data set's 300 open rounds (the issue's table:
"scheduler tick closing 300 rounds"), next to its one-query floor, on the issue's data set.

The tick runs at a time when every open round is due (a minute after the last one's end) on a database of its
own (a copy: it closes the rounds, and the pages, or a later --use, want them open). The floor is the statement
the tick itself reads every due round's figures with (rounds.closing.FIGURES_SQL: per round its counters by
building and choice and its agreeing units, the chains' heads, the building names), run alone (median of 5).
Then the closed rounds' stored results and the counters are checked against a recount.
"""

from __future__ import annotations

import statistics
import time
from datetime import timedelta

import sqlalchemy as sa
from common import make_app
from sqlalchemy import event


def tick_row(url: str, kind: str = "postgresql", runs: int = 1) -> None:
    """Print the tick's row, `runs` times (each on a fresh copy of the database at `url`, which is left as it is)."""
    import psycopg
    from common import PG_ADMIN
    from psycopg import sql

    name = url.rsplit("/", 1)[1]
    measured = []
    for i in range(runs):
        copy = f"{name}_tick_{i}"
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy)))
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(copy), sql.Identifier(name)))
        try:
            measured.append(_tick_once(url.rsplit("/", 1)[0] + "/" + copy, kind, check=i == runs - 1))
        finally:
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(copy)))
    if runs > 1:  # as the pages' rows: the median (each run's tick and floor are one measurement each)
        took, floor = statistics.median(t for t, _ in measured), statistics.median(f for _, f in measured)
        print(f"[{kind}] tick      median of {runs} runs {took * 1000:.1f} ms; one query {floor * 1000:.2f} ms; "
              f"ratio {took / floor:.2f} (goal <= 2); runs' ratios "
              + ", ".join(f"{t / f:.2f}" for t, f in measured))


def figures_floor(engine, due: list[int], runs: int = 5) -> tuple[float, list]:
    """The tick's floor: its read of every due round's figures (rounds.closing.FIGURES_SQL, one statement) run
    alone, `runs` times on a pooled connection; the median (seconds) and the rows."""
    from residents_app.rounds import closing

    times = []
    for _ in range(runs):
        raw = engine.raw_connection()
        try:
            cur = raw.cursor()
            t0 = time.perf_counter()
            cur.execute(closing.FIGURES_SQL, {"ids": due})
            rows = cur.fetchall()
            times.append(time.perf_counter() - t0)
            raw.rollback()
        finally:
            raw.close()
    return statistics.median(times), rows


def _tick_once(url: str, kind: str, check: bool) -> tuple[float, float]:
    from residents_app.extensions import db
    from residents_app.rounds import closing
    from residents_app.rounds.counters import check_counters
    from residents_app.rounds.models import Round
    from residents_app.rounds.recount import recount_closed_rounds
    from residents_app.rounds.services import rounds_due_to_close
    from residents_app.scheduler.jobs import tick

    app = make_app(url, AUDIT_SEALER="inline")
    with app.app_context():
        last = db.session.execute(sa.select(sa.func.max(Round.closes_at)).where(Round.status == "open")).scalar_one()
        now = last + timedelta(minutes=1)
        due = rounds_due_to_close(now)
        db.session.rollback()
        floor, _ = figures_floor(db.engine, due)
        statements: list[str] = []

        def count(conn, cursor, statement, *args):
            statements.append(statement)

        before = closing.STATS["statements"]
        event.listen(db.engine, "before_cursor_execute", count)
        t0 = time.perf_counter()
        run = tick(now)
        took = time.perf_counter() - t0
        event.remove(db.engine, "before_cursor_execute", count)
        n = len(statements) + closing.STATS["statements"] - before
        closed = sum(1 for a in run.actions if a["kind"] == "round_closed" and "error" not in a)
        errors = sum(1 for a in run.actions if "error" in a)
        print(f"[{kind}] tick      {took * 1000:8.1f} ms; one query {floor * 1000:7.2f} ms; ratio {took / floor:.2f} "
              f"(goal <= 2); statements {n}; {closed} of {len(due)} due rounds closed, errors {errors}", flush=True)
        if check:
            t0 = time.perf_counter()
            problems = check_counters() + recount_closed_rounds(None)
            print(f"[{kind}]   after the tick: counters and stored results against a recount: {len(problems)} "
                  f"differences ({time.perf_counter() - t0:.1f} s)")
        db.session.remove()
        db.engine.dispose()
    return took, floor
