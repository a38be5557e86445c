"""One scheduler among several: the leader lock of `flask scheduler run`.

Every app node may start a scheduler process; only the one holding the leader lock (a PostgreSQL session
advisory lock, held on its own connection for the life of the process) runs the jobs. The others stand by
and try the lock every STANDBY_POLL_SECONDS; when the leader ends, even by SIGKILL or a lost machine, its
connection closes, the server releases the lock and a standby takes over (catching up first, as after any
downtime). Before each job the leader checks that its lock connection is still alive: a connection lost
(a database restart) means the lock may be someone else's, so the job is skipped until the lock is taken
again. Each tick also takes the tick lock (jobs.advisory_lock): even two leaders could never run a tick at
once. On SQLite (one machine, one scheduler) there is no lock to take.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

log = logging.getLogger(__name__)

LEADER_LOCK_KEY = 73_010_002  # pg advisory lock id of the scheduler leader (jobs.TICK_LOCK_KEY is the tick's)
STANDBY_POLL_SECONDS = 1.0


class LeaderLock:
    def __init__(self, engine: sa.Engine, key: int = LEADER_LOCK_KEY):
        self.engine, self.key, self.conn = engine, key, None

    @property
    def needed(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def held(self) -> bool:
        """True while this process is the leader: it holds the lock, or takes it now (False: another does)."""
        if not self.needed:
            return True
        if self.conn is not None:
            try:
                self.conn.execute(sa.text("SELECT 1"))
                self.conn.commit()
                return True  # the connection that took the session lock is alive: the lock is still ours
            except sa.exc.DBAPIError:
                log.warning("scheduler: the leader lock's connection was lost; taking the lock again")
                self._close()
        try:
            conn = self.engine.connect()
        except sa.exc.DBAPIError:
            return False
        try:
            got = conn.execute(sa.text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar_one()
            conn.commit()
        except sa.exc.DBAPIError:
            conn.close()
            return False
        if not got:
            conn.close()
            return False
        self.conn = conn
        log.info("scheduler: leader lock taken; this process runs the jobs")
        return True

    def release(self) -> None:
        if self.conn is not None:
            try:
                self.conn.execute(sa.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                self.conn.commit()
            except sa.exc.DBAPIError:
                pass
            self._close()

    def _close(self) -> None:
        try:
            self.conn.invalidate()  # never back to the pool: a session lock must not outlive its holder's wish
        finally:
            self.conn = None
