"""`flask audit verify --jobs N`: the chains (one per estate, keyed by estate id; 0 is the system's) verified by N
worker processes, each walking whole chains (streamed, verify._walk) and running the extra checks for one estate at
a time. The reports and problems come back in the order one process gives them, so the output is the same.

Workers are forked from the command's process (they inherit the app, and drop the parent's pooled connections
without closing them); each opens its own connection, so they only see what is committed. On SQLite every
transaction is BEGIN IMMEDIATE (residents_app/db.py), so readers in several processes would only wait for each
other: there the work runs in this process (same output).
"""

from __future__ import annotations

import multiprocessing

from flask import current_app

from residents_app.audit.verify import EXTRA_CHECKS, ChainReport, Problem, verify_chain
from residents_app.extensions import db

_APP = None  # the app the workers run in (set before forking)


def _init() -> None:
    with _APP.app_context():
        db.engine.dispose(close=False)  # the parent's connections stay the parent's


def _verify(chain: int) -> ChainReport:
    with _APP.app_context():
        try:
            return verify_chain(chain)
        finally:
            db.session.remove()


def _checks(estate_id: int) -> list[list[Problem]]:
    """Each extra check's problems for one estate (in EXTRA_CHECKS order)."""
    with _APP.app_context():
        try:
            return [check([estate_id]) for check in EXTRA_CHECKS]
        finally:
            db.session.remove()


def _parallel(jobs: int, tasks: int) -> bool:
    return jobs > 1 and tasks > 1 and db.engine.dialect.name == "postgresql"


def _pool(jobs: int):
    global _APP
    _APP = current_app._get_current_object()
    db.session.commit()  # nothing of this process's transaction is held while the workers read
    return multiprocessing.get_context("fork").Pool(jobs, initializer=_init)


def verify_chains(chains: list[int], jobs: int = 1) -> list[ChainReport]:
    """verify_chain for each chain, in `jobs` processes (in this one when jobs <= 1); reports in chain order."""
    if not _parallel(jobs, len(chains)):
        return [verify_chain(c) for c in chains]
    with _pool(jobs) as pool:
        return pool.map(_verify, chains, chunksize=1)


def extra_checks(estate_ids: list[int], jobs: int = 1) -> list[Problem]:
    """run_extra_checks over these estates, one estate per task in `jobs` processes, in the order one process
    gives (each check's problems by estate, then the next check's)."""
    from residents_app.audit.verify import run_extra_checks

    if not _parallel(jobs, len(estate_ids)):
        return run_extra_checks(estate_ids)
    with _pool(jobs) as pool:
        per_estate = pool.map(_checks, sorted(estate_ids), chunksize=1)
    return [p for i in range(len(EXTRA_CHECKS)) for found in per_estate for p in found[i]]
