#!/usr/bin/env python3
"""Fault drill: PostgreSQL restarts in the middle of voting.

    .venv/bin/python bench/faults_pg_restart.py                 (a private PostgreSQL cluster)
    .venv/bin/python bench/faults_pg_restart.py --shared-cluster (pg_ctlcluster 15 main restart)

By default the drill runs its own PostgreSQL 15 cluster (initdb in a temporary directory, port
55432) so that restarting it does not break anyone else's work on the shared server; with
--shared-cluster it restarts the machine's cluster exactly as the issue describes
(`pg_ctlcluster --skip-systemctl-redirect 15 main restart`).

Residents vote through gunicorn as in bench/load_vote.py; after --restart-after seconds the
server is restarted (fast shutdown: open transactions are aborted). Residents treat 503 and dropped
connections as "try again a little later" (as a person would). Passes when: no accepted ballot
is missing afterwards, no response was a 500, every resident's casts were finally accepted, the app
served again after the restart without being restarted itself (the pool replaced its dead connections),
and tally = recount.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load_vote as lv  # noqa: E402

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PORT = 55432


def as_postgres(*cmd: str, check: bool = True) -> subprocess.CompletedProcess:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return subprocess.run([*prefix, *cmd], check=check, capture_output=True, text=True)


class PrivateCluster:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="pgdrill_"))
        self.data = self.dir / "data"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        as_postgres(str(PG_BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")
        self.admin = f"postgresql://postgres@127.0.0.1:{PORT}/postgres"

    def ctl(self, action: str, *extra: str) -> None:
        as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "server.log"), "-w",
                    "-o", f"-p {PORT} -k {self.dir} -c max_connections=200", action, *extra)

    def start(self):
        self.ctl("start")

    def restart(self):
        self.ctl("restart", "-m", "fast")

    def stop(self):
        self.ctl("stop", "-m", "fast")
        shutil.rmtree(self.dir, ignore_errors=True)


class SharedCluster:
    admin = lv.PG_ADMIN

    def start(self):
        pass

    def restart(self):
        subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", "15", "main", "restart"], check=True)

    def stop(self):
        pass


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shared-cluster", action="store_true")
    p.add_argument("--units", type=int, default=300)
    p.add_argument("--changes", type=int, default=3)
    p.add_argument("--concurrency", type=int, default=32)
    p.add_argument("--restart-after", type=float, default=4.0)
    p.add_argument("--retries", type=int, default=10)
    args = p.parse_args()

    cluster = SharedCluster() if args.shared_cluster else PrivateCluster()
    cluster.start()
    workdir = Path(tempfile.mkdtemp(prefix="pgdrill_run_"))
    url, drop = lv.make_database("postgresql", workdir, admin=cluster.admin)
    proc = app = None
    try:
        app, round_id, residents, closes_at = lv.seed(url, args.units)
        port = lv.free_port()
        proc = lv.start_gunicorn(url, port, 2, 8, workdir)
        box: dict = {}

        def vote():
            box["out"], box["seconds"] = lv.run_residents(port, residents, round_id, args.changes,
                                                          args.concurrency, retries=args.retries)

        voters = threading.Thread(target=vote)
        voters.start()
        time.sleep(args.restart_after)
        t0 = time.perf_counter()
        cluster.restart()
        restart_seconds = time.perf_counter() - t0
        restarted_at = time.perf_counter()
        voters.join()
        out = box["out"]
        after_restart = [c for c in out.calls if c.status in (200, 201) and c.at > restarted_at]
        stats = lv.summarise(out, box["seconds"])
        result = lv.verify(app, round_id, residents, out, closes_at, allow_unacknowledged=True)
        gunicorn_alive = proc.poll() is None
    finally:
        if proc is not None:
            lv.stop_gunicorn(proc)
        lv.with_app_dispose(app)
        drop()
        cluster.stop()
    statuses = Counter(c.status for c in out.calls)
    ok = (result["lost"] == 0 and result["duplicated"] == 0 and not out.gave_up
          and statuses.get(500, 0) == 0 and gunicorn_alive and len(after_restart) > 0
          and not [x for x in result["problems"] if "tally" in x or "stored result" in x or "counted" in x
                   or x.startswith("recount:")])
    print(f"\n== PostgreSQL restart drill ({'shared cluster' if args.shared_cluster else 'private cluster'}): "
          f"{args.units} residents x {args.changes} casts, restart after {args.restart_after} s")
    print(f"restart took {restart_seconds:.2f} s; {len(after_restart)} requests succeeded after it "
          "(same gunicorn workers, pooled connections replaced)")
    print(f"requests {stats['requests']} in {stats['seconds']} s; statuses {stats['statuses']} "
          "(0 = connection dropped, 503 = database unavailable: both retried)")
    print(f"ballots: accepted {result['accepted']}, stored {result['ballot_rows']}, lost {result['lost']}, "
          f"duplicated {result['duplicated']}, committed but reply lost in the restart {result['unacknowledged']}")
    print(f"residents who gave up: {len(out.gave_up)}; 500 responses: {statuses.get(500, 0)}; "
          f"gunicorn never restarted: {gunicorn_alive}")
    print(f"tally = recount: {result['recount']}")
    recounts = [x for x in result["problems"] if x.startswith("recount:")]
    print(f"counters and stored results against a recount: {len(recounts)} differences (any fails the drill)")
    other = [x for x in result["problems"] if "acknowledged" not in x and "last told" not in x]
    if other:
        print("PROBLEMS:", other[:10])
    print("RESULT:", "OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
