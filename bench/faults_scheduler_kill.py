#!/usr/bin/env python3
"""Fault drill: the scheduler is killed (SIGKILL) in the middle of a job; the next start finishes
the work, once.

    .venv/bin/python bench/faults_scheduler_kill.py --db both   (or sqlite / postgresql)

It builds --rounds open rounds (one estate, --units units, ballots on half of them) that are all due
to close, runs `flask scheduler run-once --now T` in a subprocess and kills it with SIGKILL as soon
as some rounds are closed, then starts it again (as systemd would), and a third time. Passes when:
the kill really happened mid-job (some but not all rounds closed), afterwards every round is closed
exactly once (one stored result, one `round.closed` audit event each), the audit chain verifies,
the second run closed exactly the rest and the third run did nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import load_vote as lv  # noqa: E402

ROOT = lv.ROOT
FLASK = ROOT / ".venv" / "bin" / "flask"


def seed_rounds(url: str, units: int, rounds: int):
    import sqlalchemy as sa

    from residents_app.db import utcnow
    from residents_app.extensions import db
    from residents_app.registry.models import Estate, Unit
    from residents_app.rounds import ballots as ballots_svc
    from residents_app.rounds import services as rs

    app, first_round, residents, closes_at = lv.seed(url, units)
    with app.app_context():
        now = utcnow()
        estate_id = db.session.scalar(sa.select(Estate.id))
        unit_ids = list(db.session.scalars(sa.select(Unit.id).order_by(Unit.id)))
        owners = {u.id: u.ownerships[0].owner_id for u in db.session.scalars(sa.select(Unit))}
        round_ids = [first_round]
        for i in range(rounds - 1):
            data = rs.RoundInput(kind="general", matter_item=7, title=f"演练表决 {i + 2}",
                                 opens_at=now - timedelta(hours=1), closes_at=closes_at)
            rnd = rs.create_round(estate_id, data, now)
            rs.open_round(rnd.id, now)
            round_ids.append(rnd.id)
        for rid in round_ids:
            for uid in unit_ids[: len(unit_ids) // 2]:
                ballots_svc.cast_ballot(rid, uid, owners[uid], "agree" if uid % 3 else "disagree", now)
        db.session.commit()
    return app, round_ids, closes_at


def counts(app, round_ids) -> dict:
    import sqlalchemy as sa

    from residents_app.audit.models import AuditEvent
    from residents_app.extensions import db
    from residents_app.rounds.models import Round, RoundResult

    with app.app_context():
        db.session.remove()
        closed = db.session.scalar(sa.select(sa.func.count()).select_from(Round)
                                   .where(Round.id.in_(round_ids), Round.status == "closed"))
        results = db.session.scalar(sa.select(sa.func.count()).select_from(RoundResult))
        events = db.session.execute(sa.select(AuditEvent.subject_id, sa.func.count())
                                    .where(AuditEvent.kind == "round.closed").group_by(AuditEvent.subject_id)).all()
        db.session.remove()
    return {"closed": closed, "results": results, "closed_events": {int(s): n for s, n in events}}


def scheduler(url: str, now_iso: str) -> subprocess.Popen:
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY=lv.SECRET, FLASK_APP="wsgi:app")
    return subprocess.Popen([str(FLASK), "scheduler", "run-once", "--now", now_iso, "--no-send"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def run(kind: str, args) -> bool:
    from residents_app.extensions import db
    from residents_app.ops.services import audit_chain_problems

    workdir = Path(tempfile.mkdtemp(prefix=f"schedkill_{kind}_"))
    url, drop = lv.make_database(kind, workdir)
    app = None
    try:
        t = time.perf_counter()
        app, round_ids, closes_at = seed_rounds(url, args.units, args.rounds)
        seed_seconds = time.perf_counter() - t
        now_iso = (closes_at + timedelta(minutes=1)).isoformat()
        first = scheduler(url, now_iso)
        before_kill = {"closed": 0}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            before_kill = counts(app, round_ids)
            if before_kill["closed"] >= args.kill_after:
                first.send_signal(signal.SIGKILL)
                break
            time.sleep(0.02)
        first.wait()
        killed = first.returncode == -signal.SIGKILL
        after_kill = counts(app, round_ids)
        second = scheduler(url, now_iso)
        out2, _ = second.communicate(timeout=600)
        after_second = counts(app, round_ids)
        third = scheduler(url, now_iso)
        out3, _ = third.communicate(timeout=600)
        after_third = counts(app, round_ids)
        with app.app_context():
            from residents_app.rounds.recount import recount_problems

            checked, problems = audit_chain_problems()
            # Counters against the ballots, each stored result against its chain: any difference fails the drill.
            recounts = [f"{p.describe()} ({p.code})" for p in recount_problems()]
            db.session.remove()
    finally:
        lv.with_app_dispose(app)
        drop()
    import json

    run2 = json.loads(out2.strip().splitlines()[-1])
    run3 = json.loads(out3.strip().splitlines()[-1])
    closed2 = [a for a in run2["actions"] if a["kind"] == "round_closed" and "error" not in a]
    closed3 = [a for a in run3["actions"] if a["kind"] == "round_closed"]
    n = len(round_ids)
    once = all(after_third["closed_events"].get(r) == 1 for r in round_ids)
    ok = (killed and 0 < after_kill["closed"] < n and after_second["closed"] == n
          and after_second["results"] == n and len(closed2) == n - after_kill["closed"]
          and not closed3 and after_third == after_second and once and not problems and not recounts)
    print(f"\n== scheduler kill drill on {kind}: {n} rounds due to close ({args.units} units each; seeded in "
          f"{seed_seconds:.1f} s)")
    print(f"first run killed with SIGKILL: {killed}; rounds closed when killed: {after_kill['closed']} of {n}")
    print(f"second run closed {len(closed2)} (status {run2['status']}); now closed {after_second['closed']}, "
          f"stored results {after_second['results']}")
    print(f"third run closed {len(closed3)} (status {run3['status']}); each round closed exactly once "
          f"(one result, one round.closed audit event): {once}")
    print(f"audit chain: {checked} entries verified, problems {problems[:3]}")
    print(f"counters and stored results against a recount: {len(recounts)} differences {recounts[:3]}")
    print("RESULT:", "OK" if ok else "FAILED")
    return ok


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--db", choices=("sqlite", "postgresql", "both"), default="both")
    p.add_argument("--rounds", type=int, default=60)
    p.add_argument("--units", type=int, default=60)
    p.add_argument("--kill-after", type=int, default=5, help="kill once this many rounds are closed")
    args = p.parse_args()
    kinds = ("sqlite", "postgresql") if args.db == "both" else (args.db,)
    return 0 if all([run(k, args) for k in kinds]) else 1


if __name__ == "__main__":
    sys.exit(main())
