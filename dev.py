#!/usr/bin/env python3
"""One entry point for a fresh machine with only Python 3.11.

    python3 dev.py demo    install what is needed, migrate SQLite, load the demo, serve on :5000
    python3 dev.py test    install what is needed, run the whole test suite on SQLite and PostgreSQL

It creates .venv, installs the pinned requirements, and installs the system packages the tests
need (Chromium, a CJK font, poppler) with apt-get when they are missing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
PY = VENV / "bin" / "python"
APT_PACKAGES = {
    # package: a file that shows it is installed
    "chromium": "/usr/bin/chromium",
    "fonts-wqy-zenhei": "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "poppler-utils": "/usr/bin/pdftoppm",
    "zbar-tools": "/usr/bin/zbarimg",  # decodes the printed QR codes in the tests
    "nginx": "/usr/sbin/nginx",  # the reverse proxy of the multi-node test (tests/ops/test_multinode.py)
    "redis-server": "/usr/bin/redis-server",  # shared sessions and rate limits (tests start their own server)
}
PG_ADMIN = os.environ.get("RAPP_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/test")


def say(msg: str) -> None:
    print(f"[dev] {msg}", flush=True)


def run(cmd: list[str], **kw) -> None:
    subprocess.run(cmd, check=True, cwd=ROOT, **kw)


def ensure_venv(requirements: str) -> None:
    if not PY.exists():
        say("creating .venv")
        venv.EnvBuilder(with_pip=True).create(VENV)
    req = ROOT / requirements
    digest = hashlib.sha256(b"".join((ROOT / f).read_bytes() for f in ("requirements.txt", requirements))).hexdigest()
    stamp = VENV / f".installed-{requirements}"
    if stamp.exists() and stamp.read_text() == digest:
        return
    say(f"installing {requirements}")
    run([str(PY), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(req)])
    stamp.write_text(digest)


def ensure_system_packages(packages: list[str]) -> None:
    missing = [p for p in packages if not Path(APT_PACKAGES[p]).exists()]
    if not missing:
        return
    prefix = [] if os.geteuid() == 0 else (["sudo", "-n"] if shutil.which("sudo") else None)
    if prefix is None or not shutil.which("apt-get"):
        say(f"WARNING: missing system packages {missing}; install them with apt-get")
        return
    say(f"apt-get install {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run([*prefix, "apt-get", "update", "-qq"], env=env)
    run([*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing], env=env)


def postgres_reachable() -> bool:
    code = ("import psycopg,sys\n"
            "try:\n psycopg.connect(sys.argv[1], connect_timeout=3).close()\n"
            "except Exception as e:\n print(e); sys.exit(1)\n")
    if subprocess.run([str(PY), "-c", code, PG_ADMIN], cwd=ROOT).returncode == 0:
        return True
    if shutil.which("pg_ctlcluster") and Path("/etc/postgresql").exists():
        say("PostgreSQL is down; trying to start the local cluster")
        for version in os.listdir("/etc/postgresql"):
            subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"], check=False)
        return subprocess.run([str(PY), "-c", code, PG_ADMIN], cwd=ROOT).returncode == 0
    return False


def cmd_test(args: list[str]) -> int:
    ensure_venv("requirements-test.txt")
    ensure_system_packages(list(APT_PACKAGES))
    base = [str(PY), "-m", "pytest", *args]
    say("test suite on SQLite")
    rc = subprocess.run(base, cwd=ROOT, env=dict(os.environ, RAPP_TEST_DB="sqlite")).returncode
    if rc:
        return rc
    if not postgres_reachable():
        if os.environ.get("CI") == "true":
            say("ERROR: PostgreSQL unreachable in CI")
            return 3
        say("WARNING: PostgreSQL unreachable; the PostgreSQL pass was NOT run")
        return 0
    say("test suite on PostgreSQL (scratch database)")
    return subprocess.run(base, cwd=ROOT, env=dict(os.environ, RAPP_TEST_DB="postgresql")).returncode


def lan_address() -> str:
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.connect(("10.255.255.255", 1))  # no packet is sent; picks the outgoing interface
            return s.getsockname()[0]
    except OSError:
        return "127.0.0.1"


def cmd_demo(args: list[str]) -> int:
    ensure_venv("requirements.txt")
    ensure_system_packages(["fonts-wqy-zenhei"])  # the PDF reports embed this CJK font
    env = dict(os.environ, FLASK_APP="wsgi:app", RAPP_DEMO="1")
    port = os.environ.get("PORT", "5000")
    if "PUBLIC_BASE_URL" not in env:
        # QR links must point at an address a phone on the same network can reach.
        env["PUBLIC_BASE_URL"] = f"http://{lan_address()}:{port}"
    flask = [str(PY), "-m", "flask"]
    run([*flask, "db", "upgrade"], env=env)
    run([*flask, "demo", "load"], env=env)
    say(f"serving on http://0.0.0.0:{port} (Ctrl+C to stop)")
    return subprocess.run([*flask, "run", "--host", "0.0.0.0", "--port", port], cwd=ROOT, env=env).returncode


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("demo", "test"):
        print(__doc__)
        return 2
    return {"demo": cmd_demo, "test": cmd_test}[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    sys.exit(main())
