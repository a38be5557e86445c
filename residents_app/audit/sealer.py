"""Moving deferred audit events (audit_pending) onto their chains after the casting transaction commits.

A cast writes its event to audit_pending and commits without the chain's lock; then the view calls
after_commit(chain). With AUDIT_SEALER = "thread" (production) a sealer thread of this process seals the
chain's pending events in batches while the request returns; "inline" seals in the request, after the commit
(the tests, where results must be deterministic). Several processes may seal at once: the chain lock is taken
with a try (audit.services.seal_pending(wait=False)); a process that finds it busy retries shortly, so an event
committed while another sealer was at work is never left behind. Whatever is still pending after a crash is
sealed by the scheduler's next tick (scheduler.jobs.seal_audit) and by any record() on the same chain, which
seals the chain's pending events before its own.
"""

from __future__ import annotations

import logging
import os
import threading
import time

from flask import current_app, g

from residents_app.extensions import db

log = logging.getLogger(__name__)
BUSY_RETRY_SECONDS = 0.005
# After a wake-up the thread lets more casts commit before sealing: one sealing transaction then carries many
# events (a voter's receipt page says "being written" for that long at most).
BATCH_DELAY_SECONDS = 0.5
ERROR_RETRY_SECONDS = 1.0


def deferred(chain: int) -> None:
    """A write of this app context left an event of `chain` in audit_pending (castpath.write_online)."""
    g.setdefault("audit_deferred_chains", set()).add(chain)


def after_commit() -> None:
    """Call after committing: seals (or has the sealer thread seal) the chains this app context deferred events
    of; nothing when it deferred none. Never raises: the ballot is committed; sealing problems are logged and
    retried (here, or by the scheduler)."""
    chains = g.pop("audit_deferred_chains", None)
    if not chains:
        return
    app = current_app._get_current_object()
    if app.config.get("AUDIT_SEALER", "thread") == "inline":
        from residents_app.audit.services import seal_pending

        try:
            seal_pending(chains)
        except Exception:  # noqa: BLE001  (the cast has committed; the scheduler seals what is left)
            log.exception("audit sealer: sealing chains %s after commit failed", sorted(chains))
            db.session.rollback()
        return
    sealer = _sealer_for(app)
    for chain in chains:
        sealer.notify(chain)


class Sealer:
    """One daemon thread per process (started on first use, and again after a fork)."""

    def __init__(self, app):
        self.app = app
        self._cv = threading.Condition()
        self._chains: set[int] = set()
        self._thread: threading.Thread | None = None

    def notify(self, chain: int) -> None:
        with self._cv:
            self._chains.add(chain)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="audit-sealer", daemon=True)
                self._thread.start()
            self._cv.notify()

    def idle(self) -> bool:
        with self._cv:
            return not self._chains

    def _run(self) -> None:
        from residents_app.audit.services import seal_pending

        while True:
            with self._cv:
                while not self._chains:
                    self._cv.wait()
            time.sleep(BATCH_DELAY_SECONDS)
            with self._cv:
                chains, self._chains = self._chains, set()
            with self.app.app_context():
                try:
                    while chains:
                        chains = seal_pending(chains, wait=False).busy
                        if chains:
                            time.sleep(BUSY_RETRY_SECONDS)
                except Exception:  # noqa: BLE001  (keep the thread alive; retry the chains later)
                    log.exception("audit sealer: sealing chains %s failed; retrying", sorted(chains))
                    db.session.rollback()
                    time.sleep(ERROR_RETRY_SECONDS)
                    with self._cv:
                        self._chains |= set(chains)
                finally:
                    db.session.remove()


_SEALERS: dict[tuple[int, int], Sealer] = {}
_SEALERS_LOCK = threading.Lock()


def _sealer_for(app) -> Sealer:
    key = (id(app), os.getpid())  # a forked worker starts its own thread
    with _SEALERS_LOCK:
        sealer = _SEALERS.get(key)
        if sealer is None:
            sealer = _SEALERS[key] = Sealer(app)
        return sealer


def wait_idle(app, timeout: float = 10.0) -> bool:
    """Until this process's sealer has nothing queued and no pending events remain (tests, benchmarks)."""
    from residents_app.audit.services import pending_count

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with app.app_context():
            try:
                if _sealer_for(app).idle() and pending_count() == 0:
                    return True
            finally:
                db.session.remove()
        time.sleep(0.01)
    return False
