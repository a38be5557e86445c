"""The deployment of docs/DEPLOY.md on one machine, for tests/ops/test_multinode.py: nginx in front of two
gunicorn nodes, Redis, PostgreSQL, scheduler processes. Every process is started in its own process group and
stopped (SIGTERM, then SIGKILL) by Cluster.close(), whatever happened."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.processes import free_port, start_redis, stop, wait_for_port

ROOT = Path(__file__).resolve().parents[2]
NGINX = "/usr/sbin/nginx"
SECRET = "multinode-secret"

NGINX_CONF = """\
{user}worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/nginx-error.log warn;
daemon off;
events {{ worker_connections 1024; }}
http {{
    client_body_temp_path {d}/client_body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    log_format nodes '$msec $remote_addr $status "$upstream_addr" "$upstream_status" "$request"';
    access_log {d}/nginx-access.log nodes;
    upstream residents_app {{
        server 127.0.0.1:{a} max_fails=1 fail_timeout=30s;
        server 127.0.0.1:{b} max_fails=1 fail_timeout=30s;
    }}
    server {{
        listen 127.0.0.1:{port};
        client_max_body_size 20m;
        location / {{
            proxy_pass http://residents_app;
            proxy_set_header Host $host;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_connect_timeout 2s;
            proxy_read_timeout 60s;
            proxy_next_upstream error timeout http_502;
            proxy_next_upstream_tries 2;
        }}
    }}
}}
"""


def env_for(database_url: str, redis_url: str, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAPP_TEST", "PYTEST"))}
    env.update({"DATABASE_URL": database_url, "REDIS_URL": redis_url, "SECRET_KEY": SECRET, "PROXY_COUNT": "1",
                "FLASK_APP": "residents_app", "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", **extra})
    return env


def flask(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "flask", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


class Cluster:
    def __init__(self, workdir: Path, database_url: str):
        self.dir, self.database_url = workdir, database_url
        self.procs: dict[str, subprocess.Popen] = {}
        self.redis_url = ""
        self.ports: dict[str, int] = {}

    # ---- starting ----------------------------------------------------------------------------

    def start_redis(self) -> None:
        proc, self.redis_url = start_redis(self.dir / "redis")
        self.procs["redis"] = proc

    @property
    def env(self) -> dict:
        return env_for(self.database_url, self.redis_url)

    def start_node(self, name: str) -> None:
        port = self.ports[name] = free_port()
        log = self.dir / f"{name}.log"
        cmd = [sys.executable, "-m", "gunicorn", "-w", "2", "--threads", "4", "-b", f"127.0.0.1:{port}",
               "--graceful-timeout", "5", "--error-logfile", str(log), "--no-control-socket", "wsgi:app"]
        self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL, start_new_session=True)

    def wait_ready(self, name: str, timeout: float = 40.0) -> None:
        port, proc = self.ports[name], self.procs[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                conn.request("GET", "/readyz")
                if conn.getresponse().status == 200:
                    conn.close()
                    return
                conn.close()
            except OSError:
                pass
            time.sleep(0.1)
        log = self.dir / f"{name}.log"
        pytest.fail(f"node {name} not ready: {log.read_text(errors='replace')[-3000:] if log.exists() else ''}")

    def start_nginx(self) -> None:
        if not Path(NGINX).exists():
            pytest.fail("nginx is needed (apt-get install nginx; dev.py installs it)")
        port = self.ports["nginx"] = free_port()
        d = self.dir / "nginx"
        d.mkdir()
        # As root, nginx's workers would switch to "nobody", who cannot write to this private directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        conf = d / "nginx.conf"
        conf.write_text(NGINX_CONF.format(user=user, d=d, a=self.ports["a"], b=self.ports["b"], port=port))
        self.procs["nginx"] = subprocess.Popen([NGINX, "-p", str(d), "-c", str(conf), "-e", str(d / "nginx-error.log")],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                               start_new_session=True)
        wait_for_port(port, self.procs["nginx"], "nginx", log=d / "nginx-error.log")

    def start_scheduler(self, name: str) -> None:
        out = (self.dir / f"{name}.out").open("w")
        err = (self.dir / f"{name}.err").open("w")
        env = dict(self.env, SCHEDULER_TICK_SECONDS="1")
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "flask", "scheduler", "run"], cwd=ROOT, env=env,
                                            stdout=out, stderr=err, start_new_session=True)
        out.close()
        err.close()

    def scheduler_output(self, name: str) -> tuple[str, str]:
        return ((self.dir / f"{name}.out").read_text(errors="replace"),
                (self.dir / f"{name}.err").read_text(errors="replace"))

    def wait_output(self, names: tuple[str, ...], needle: str, stream: int = 0, timeout: float = 40.0) -> str:
        """The first of these processes whose stdout (stream 0) or stderr (1) shows `needle`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name in names:
                if needle in self.scheduler_output(name)[stream]:
                    return name
            if all(self.procs[n].poll() is not None for n in names):
                break
            time.sleep(0.05)
        pytest.fail(f"{names}: no {needle!r} in their output: {[self.scheduler_output(n) for n in names]}")

    # ---- faults and the end ------------------------------------------------------------------

    def kill(self, name: str) -> None:
        """SIGKILL to the whole process group: the node (master and workers) dies as with its machine."""
        proc = self.procs[name]
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)

    def close(self) -> None:
        """Everything this cluster started, at once (SIGKILL to each process group: nothing here needs a
        graceful end, and the database is dropped after)."""
        for proc in self.procs.values():
            stop(proc, signal.SIGKILL)

    def nginx_log(self) -> list[dict]:
        rows = []
        for line in (self.dir / "nginx" / "nginx-access.log").read_text().splitlines():
            msec, addr, status, rest = line.split(" ", 3)
            upstream, upstream_status, request = json.loads("[" + rest.replace('" "', '", "') + "]")
            rows.append({"at": float(msec), "client": addr, "status": int(status), "upstreams": upstream,
                         "upstream_status": upstream_status, "request": request})
        return rows


# ---- the residents' phones ---------------------------------------------------------------------

class Phone:
    """One resident's phone: its own loopback source address, one keep-alive connection, the session cookie."""

    def __init__(self, port: int, address: str, cookie: str | None = None):
        self.port, self.address, self.cookie, self.conn = port, address, cookie, None

    def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict | None]:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.cookie:
            headers["Cookie"] = self.cookie
        try:
            if self.conn is None:
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60,
                                                       source_address=(self.address, 0))
            self.conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
            resp = self.conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException):
            self.close()
            return 0, None
        for name, value in resp.getheaders():
            if name.lower() == "set-cookie" and value.startswith("session="):
                self.cookie = value.split(";", 1)[0]
        if resp.getheader("Connection", "").lower() == "close":
            self.close()
        try:
            return resp.status, (json.loads(data) if data else None)
        except ValueError:
            return resp.status, None

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.conn = None


class Tally:
    """What the residents were told, from every thread."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: list[tuple[str, int, float]] = []  # (kind, status, when)
        self.accepted: list[tuple[int, int, str]] = []  # (unit, k, receipt), in the order told
        self.gave_up: list[str] = []

    def add(self, kind: str, status: int) -> None:
        with self.lock:
            self.statuses.append((kind, status, time.time()))
