"""Closing the tick's due rounds on several connections at once (PostgreSQL, issue 19).

Each round closes in its own transaction, whichever connection it is on; what costs a round's close is mostly the
wait for its commit to reach the disk, and commits of different connections wait together (the server flushes
them as a group). So the chains (one per estate) are dealt out to SCHEDULER_CLOSE_CONNECTIONS threads, each with
a connection of its own from the engine's pool; a thread sends its chains' rounds in closing order, all in one
pipeline (psycopg; the server runs them one after the other): per round BEGIN, its close as planned by
rounds.closing.CloseBatch.plan (its row lock and its chain's lock, the write that checks nothing changed since the
plan: the chain's head included, as the previous round of the chain leaves it if that one closes), COMMIT. A chain
stops at its first round that is not planned; a round whose plan was out of date writes nothing, and neither do
the chain's later ones (their head is not there); a round whose close fails leaves the rest of the pipeline
unrun. Those rounds are left to the per-round path on the scheduler's own session, in closing order, so every
chain gets its entries in the order closing the rounds one by one gives them.

The lanes begin together, once each has its connection (a thread started while the others already compute would
first wait for the interpreter's lock). Per round the lane's Python (the result, its JSON, the chain entry's hash,
psycopg's sending) and the server's work (the write, the commit) cost about the same: 300 rounds ≈ 0.12 s of this
process's CPU and ≈ 0.14 s of the server's on the bench's machine (bench/bench_tick_verify.py), so on 2 cores the
lanes are bound by CPU more than by the commits' waits.

Before the lanes, plan_meanwhile reads the due rounds' figures (CloseBatch.plan, one statement) on a connection of
its own, in a thread, while the tick's later steps run in the tick's own thread: the server answers the read
meanwhile. The tick lock (jobs.advisory_lock) and the leader lock (leader.py) are held on their own connections
meanwhile, as for any step of the tick; these threads only ever run inside it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

import psycopg
import sqlalchemy as sa
from flask import current_app

from residents_app.extensions import db
from residents_app.rounds import closing as round_closing

log = logging.getLogger(__name__)

CONNECTIONS = 4  # default of SCHEDULER_CLOSE_CONNECTIONS


def connections_to_use(batch) -> int:
    """How many connections close the batch: 0 (the per-round path only) on SQLite (one writer at a time), with no
    planned round, or when the session is bound to one given connection (a test's transaction rolled back at its
    end: other connections would not see its data)."""
    n = int(current_app.config.get("SCHEDULER_CLOSE_CONNECTIONS", CONNECTIONS))
    return n if n >= 2 and batch.planned and _own_connections() else 0


def _own_connections() -> bool:
    """Whether work may go to connections of its own: PostgreSQL, and the session not bound to one given
    connection (a test's transaction rolled back at its end: other connections would not see its data)."""
    return db.engine.dialect.name == "postgresql" and not isinstance(db.session.get_bind(), sa.engine.Connection)


def plan_meanwhile(batch, now: datetime, actor: str, meanwhile: Callable[[], None]) -> None:
    """`batch.plan(now, actor)`, and `meanwhile()` run here at the same time: on PostgreSQL (a session not bound to
    one given connection) the read goes to a connection of its own, in a thread, and the server answers it while
    this thread runs `meanwhile` (the tick's other steps); otherwise one after the other. Raises what the read
    raised, once both are over (`meanwhile` runs in any case)."""
    if not _own_connections():
        try:
            batch.plan(now, actor)
            db.session.commit()  # the read's transaction ends before the other steps' own
        except Exception:
            db.session.rollback()
            meanwhile()
            raise
        meanwhile()
        return
    app = current_app._get_current_object()
    failed: list[BaseException] = []

    def read() -> None:
        try:
            with app.app_context():
                raw = db.engine.raw_connection()
                try:
                    batch.plan(now, actor, dbapi=raw.driver_connection)
                finally:
                    raw.close()  # back to the pool, its transaction rolled back (it only read)
        except BaseException as exc:  # noqa: BLE001 - raised again in the tick's thread below
            failed.append(exc)

    reader = threading.Thread(target=read, name="plan-rounds")
    reader.start()
    try:
        meanwhile()
    finally:
        reader.join()
    if failed:
        raise failed[0]


def close_on_connections(batch, items: list[tuple[int, datetime]], now: datetime, actor: str, n: int) -> set[int]:
    """The rounds of `items` (in closing order) closed and committed here, on `n` connections of their own."""
    chains: dict[int, list[int]] = {}
    for rid, _ in items:
        if rid in batch.chains:
            chains.setdefault(batch.chains[rid], []).append(rid)
    lanes: list[list[list[int]]] = [[] for _ in range(n)]
    loads = [0] * n
    for rids in sorted(chains.values(), key=len, reverse=True):  # the longest chains first, each to the least loaded
        i = loads.index(min(loads))
        lanes[i].append(rids)
        loads[i] += len(rids)
    closed: set[int] = set()
    engine = db.engine
    lanes = [lane for lane in lanes if lane]
    # The lanes begin together once each has its connection: a thread started while the others already compute
    # would first wait for the interpreter's lock, and its connection would idle meanwhile.
    ready = threading.Barrier(len(lanes) + 1)
    threads = [threading.Thread(target=_close_lane, args=(engine, batch, lane, now, actor, closed, ready),
                                name=f"close-rounds-{i}") for i, lane in enumerate(lanes)]
    for t in threads:
        t.start()
    ready.wait()
    for t in threads:
        t.join()
    return closed


def _close_lane(engine, batch, lane: list[list[int]], now: datetime, actor: str, closed: set[int],
                ready: threading.Barrier) -> None:
    try:
        raw = engine.raw_connection()
    finally:
        ready.wait()
    conn = raw.driver_connection
    try:
        conn.autocommit = True  # each round's transaction is the BEGIN ... COMMIT sent with its statements
        queued = []
        try:
            with conn.pipeline():
                cur = conn.cursor()  # BEGIN, the locks, COMMIT: their results are not read
                for rids in lane:
                    head = None  # the chain's head after the closes queued before, if they close
                    for rid in rids:
                        if not batch.can_close_fast(rid) or not _prepared(batch, rid, now):
                            break  # this round and the chain's later ones: the per-round path
                        cur.execute("BEGIN")
                        q = batch.queue_fast(conn, rid, now, actor, head, cur)
                        cur.execute("COMMIT")
                        queued.append(q)
                        head = q.head
            round_closing.count_statements(2 * len(queued), 1)  # BEGIN and COMMIT of each, one round trip
        except psycopg.Error:  # a close failed: the ones before it committed, the ones after it did not run
            log.exception("closing rounds: a round failed on its own connection; it is retried one by one")
            conn.execute("ROLLBACK")
        for q in queued:
            try:
                if batch.done(q):
                    closed.add(q.round_id)
            except psycopg.Error:  # failed or not run: left to the per-round path, with the lane's later ones
                break
    except Exception:  # noqa: BLE001 - the connection is unusable: its rounds are left to the per-round path
        log.exception("closing rounds: a connection failed")
        raw.invalidate()
    else:
        conn.autocommit = False
    finally:
        raw.close()


def _prepared(batch, rid: int, now: datetime) -> bool:
    try:
        batch.prepare(rid, now)  # computed here, while the other connections wait for their commits
    except Exception:  # noqa: BLE001 - the per-round path computes it again, and reports it if it fails again
        log.exception("closing rounds: computing round %s failed", rid)
        return False
    return True
