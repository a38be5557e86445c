#!/usr/bin/env python3
"""Outbox throughput and crash safety against the local fake of Tencent Cloud SMS.

    /work/main/.venv/bin/python bench/bench_outbox.py [--db sqlite|postgresql] [--messages 10000]

1. The fake SMS server (residents_app/notify/fakes.py) runs in its own process.
2. The fake alone: signed SendSms calls, one after another, straight from a client (messages per second).
3. --messages reminders are queued (one per unit, through notify.outbox.queue) and a sender process sends them
   through the real pipeline (ChannelSender: claim, reach lookup, the signed HTTP call, delivery row, commit).
   Printed: both rates and `ratio R (goal >= 0.5)`.
4. Crash drill: as many reminders again (the next day); the sender process is killed (SIGKILL) once the fake has
   accepted about a third of them, then started again after the claim lease. Passes when every message is sent
   exactly once: none lost (all `sent` in the database, every SessionContext at the fake) and none twice (no
   SessionContext accepted twice).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import scratch_database  # noqa: E402

SECRET_ID, SECRET_KEY, SDK_APP_ID = "AKIDbench", "bench-secret", "1400000001"
# A working day, 10:00 Beijing: outside quiet hours (the clock of the fake's signature check is the real one).
DAY = datetime(2026, 9, 1, 2, 0, tzinfo=UTC)


def serve_fake() -> None:
    import logging

    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.WARNING)

    from residents_app.notify.fakes import FakeTencentSms

    srv = make_server("127.0.0.1", 0, FakeTencentSms(SECRET_ID, SECRET_KEY, SDK_APP_ID), threaded=True)
    print(f"http://127.0.0.1:{srv.server_port}", flush=True)
    srv.serve_forever()


def fake_call(url: str, path: str, method: str = "GET") -> dict:
    req = urllib.request.Request(url + path, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read())


def sms_client(url: str):
    from residents_app.notify.tencent_sms import TencentSmsClient

    return TencentSmsClient(SECRET_ID, SECRET_KEY, sdk_app_id=SDK_APP_ID, sign_name="幸福小区业委会", base_url=url)


def fake_alone(url: str, n: int) -> float:
    client = sms_client(url)
    text = "【幸福小区】“是否同意改造”将于 2026-09-15 20:00 截止，您家（12幢-1203）尚未表决。请扫描本户二维码参与。"
    started = time.perf_counter()
    for i in range(n):
        [res] = client.send([f"138{i:08d}"], "2100001", [text], session_context=f"base:{i}")
        assert res.ok, res
    return n / (time.perf_counter() - started)


def make_app(url: str):
    from residents_app import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": url, "SECRET_KEY": "bench", "RATELIMIT_ENABLED": False})


def seed(url: str, units: int) -> None:
    """One estate, `units` units in buildings of 100, one owner each (a distinct mobile number)."""
    from decimal import Decimal

    import sqlalchemy as sa

    from residents_app.audit import db_guards
    from residents_app.extensions import db
    from residents_app.registry.models import Building, Estate, Owner, Ownership, StreetOffice, Unit

    app = make_app(url)
    with app.app_context():
        db.create_all()
        db_guards.install(db.engine)
        office = StreetOffice(code="S1", name="测试街道", district="测试区")
        db.session.add(office)
        db.session.flush()
        estate = Estate(code="E1", name="幸福小区", street_office_id=office.id)
        db.session.add(estate)
        db.session.flush()
        per = 100
        buildings = []
        for b in range((units + per - 1) // per):
            building = Building(estate_id=estate.id, name=f"{b + 1}幢")
            db.session.add(building)
            buildings.append(building)
        db.session.flush()
        db.session.execute(sa.insert(Unit), [
            {"estate_id": estate.id, "building_id": buildings[i // per].id, "number": f"{i % per + 101}",
             "title_area_m2": Decimal("80.00"), "kind": "residential", "is_hardship": False} for i in range(units)])
        db.session.execute(sa.insert(Owner), [
            {"estate_id": estate.id, "name": f"业主{i}", "phone": f"139{i:08d}"} for i in range(units)])
        unit_ids = db.session.execute(sa.select(Unit.id).order_by(Unit.id)).scalars().all()
        owner_ids = db.session.execute(sa.select(Owner.id).order_by(Owner.id)).scalars().all()
        db.session.execute(sa.insert(Ownership), [{"unit_id": u, "owner_id": o} for u, o in zip(unit_ids, owner_ids,
                                                                                               strict=True)])
        db.session.commit()


def queue_all(url: str, now: datetime, tag: str) -> float:
    import sqlalchemy as sa

    from residents_app.extensions import db
    from residents_app.notify.outbox import queue
    from residents_app.registry.models import Unit

    app = make_app(url)
    with app.app_context():
        started = time.perf_counter()
        rows = db.session.execute(sa.select(Unit.id, Unit.estate_id, Unit.number).order_by(Unit.id)).all()
        for uid, estate_id, number in rows:
            text = (f"【幸福小区】“是否同意改造”将于 2026-09-15 20:00 截止，您家（{number}）尚未表决。"
                    "请扫描本户二维码参与。")
            queue(estate_id=estate_id, unit_id=uid, title="表决提醒", now=now, dedupe_key=f"bench:{tag}:{uid}",
                  text=text)
        db.session.commit()
        return time.perf_counter() - started


def worker(url: str, fake_url: str, now: str) -> None:
    """The sender process: send everything due at `now`, print counts and the time spent sending."""
    from residents_app.extensions import db
    from residents_app.notify.outbox import send_pending
    from residents_app.notify.senders import ChannelSender

    app = make_app(url)
    at = datetime.fromisoformat(now)
    with app.app_context():
        sender = ChannelSender(wechat=None, sms=sms_client(fake_url), sms_template_id="2100001")
        totals: dict[str, int] = {}
        started = time.perf_counter()
        while True:
            counts = send_pending(at, sender, batch=500)
            for k, v in counts.items():
                totals[k] = totals.get(k, 0) + v
            if not any(counts.values()):
                break
        elapsed = time.perf_counter() - started
        db.session.remove()
    print(json.dumps({"elapsed": elapsed, **totals}), flush=True)


def run_worker(url: str, fake_url: str, now: datetime, *, wait: bool = True):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", url, fake_url, now.isoformat()]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, cwd=ROOT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    if not wait:
        return proc
    out, _ = proc.communicate(timeout=3600)
    if proc.returncode != 0:
        raise RuntimeError(f"sender exited with {proc.returncode}")
    return json.loads(out.strip().splitlines()[-1])


def db_states(url: str, tag: str) -> dict[str, int]:
    import sqlalchemy as sa

    from residents_app.extensions import db
    from residents_app.notify.models import OutboxMessage

    app = make_app(url)
    with app.app_context():
        rows = db.session.execute(sa.select(OutboxMessage.state, sa.func.count()).where(
            OutboxMessage.dedupe_key.like(f"bench:{tag}:%")).group_by(OutboxMessage.state)).all()
        db.session.remove()
        return dict(rows)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--baseline", type=int, default=3_000, help="calls for the fake-alone rate")
    args = parser.parse_args()
    n = args.messages
    fake = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), "--serve-fake"], stdout=subprocess.PIPE,
                            text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        fake_url = fake.stdout.readline().strip()
        base_rate = fake_alone(fake_url, args.baseline)
        print(f"fake SMS server alone: {args.baseline} signed SendSms calls, {base_rate:.0f} messages/s")
        with scratch_database(args.db) as url:
            seed(url, n)
            fake_call(fake_url, "/_fake/reset", "POST")
            queued_s = queue_all(url, DAY, "day1")
            print(f"{args.db}: {n} reminders queued in {queued_s:.1f} s")
            run = run_worker(url, fake_url, DAY)
            rate = run["sent"] / run["elapsed"]
            stats = fake_call(fake_url, "/_fake/stats")
            print(f"through the outbox: {run['sent']} sent in {run['elapsed']:.1f} s, {rate:.0f} messages/s "
                  f"(fake accepted {stats['accepted']}, duplicates {len(stats['duplicates'])})")
            # The machine may be shared: the fake alone is measured again right after, and the mean is the base.
            fake_call(fake_url, "/_fake/reset", "POST")
            after_rate = fake_alone(fake_url, args.baseline)
            fake_call(fake_url, "/_fake/reset", "POST")
            base_rate = (base_rate + after_rate) / 2
            print(f"fake SMS server alone again: {after_rate:.0f} messages/s; mean {base_rate:.0f} messages/s")
            ratio = rate / base_rate
            print(f"ratio {ratio:.2f} (goal >= 0.5)")
            ok_run = run["sent"] == n and stats["accepted"] == n and not stats["duplicates"]

            # crash drill
            day2 = DAY + timedelta(days=1)
            fake_call(fake_url, "/_fake/reset", "POST")
            queue_all(url, day2, "day2")
            proc = run_worker(url, fake_url, day2, wait=False)
            target = n // 3
            deadline = time.monotonic() + 600
            while fake_call(fake_url, "/_fake/stats")["accepted"] < target and time.monotonic() < deadline:
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            at_kill = fake_call(fake_url, "/_fake/stats")["accepted"]
            before = db_states(url, "day2")
            print(f"sender killed (SIGKILL) after the fake accepted {at_kill}; database: {before}")
            # systemd restarts it; the claims of the dead process are leased for IN_FLIGHT_LEASE
            from residents_app.notify.outbox import IN_FLIGHT_LEASE

            rerun = run_worker(url, fake_url, day2 + IN_FLIGHT_LEASE + timedelta(minutes=1))
            stats = fake_call(fake_url, "/_fake/stats")
            after = db_states(url, "day2")
            print(f"restarted: {rerun}; database: {after}")
            lost = n - stats["distinct"]
            twice = len(stats["duplicates"])
            print(f"after the kill: {stats['distinct']} of {n} delivered, lost {lost}, sent twice {twice}, "
                  f"reconciled from the provider's receipts {rerun.get('reconciled', 0)}")
            ok_drill = (0 < at_kill < n and after == {"sent": n} and lost == 0 and twice == 0
                        and stats["accepted"] == n)
            print("PASS" if ok_run and ok_drill else "FAIL", f"(throughput ok: {ok_run}, crash drill ok: {ok_drill})")
            return 0 if ok_run and ok_drill else 1
    finally:
        fake.terminate()
        fake.wait(10)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve-fake":
        serve_fake()
    elif len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker(*sys.argv[2:5])
    else:
        sys.exit(main())
