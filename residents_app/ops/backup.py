"""Backup and restore of the whole database: SQLite online backup API, pg_dump/pg_restore.

A backup is written to PATH.partial, checked, then renamed, so PATH is either complete or absent.
The PostgreSQL password travels in PGPASSWORD, never on a command line (visible in `ps`) or in logs.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
REQUIRED_TABLES = ("estate", "audit_event")


class BackupError(Exception):
    """A backup or restore that cannot be done; the message is Chinese, for the operator."""


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size_bytes: int
    dialect: str


def backup_database(engine: sa.Engine, path: Path, *, overwrite: bool = False) -> BackupResult:
    path = Path(path)
    if path.exists() and not overwrite:
        raise BackupError(f"备份文件 {path} 已存在；换一个文件名，或加 --force 覆盖")
    if not path.parent.is_dir():
        raise BackupError(f"目录 {path.parent} 不存在")
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if engine.dialect.name == "sqlite":
            _sqlite_backup(_sqlite_path(engine), partial)
        elif engine.dialect.name == "postgresql":
            _pg_dump(engine, partial)
        else:
            raise BackupError(f"不支持的数据库类型 {engine.dialect.name}")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return BackupResult(path=path, size_bytes=path.stat().st_size, dialect=engine.dialect.name)


def restore_database(engine: sa.Engine, path: Path) -> None:
    """Replace the database's content with the backup. Stop the app (and scheduler) first."""
    path = Path(path)
    if not path.is_file():
        raise BackupError(f"找不到备份文件 {path}")
    with path.open("rb") as fh:
        head = fh.read(16)
    kind = "sqlite" if head.startswith(SQLITE_MAGIC) else "postgresql" if head.startswith(PGDUMP_MAGIC) else None
    names = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
    if kind is None:
        raise BackupError(f"{path} 不是本系统的备份文件（既不是 SQLite 数据库，也不是 pg_dump 自定义格式）")
    if kind != engine.dialect.name:
        raise BackupError(f"备份文件是 {names[kind]} 格式，当前数据库是 {names.get(engine.dialect.name, '?')}；"
                          "不同数据库之间不能直接恢复")
    engine.dispose()  # pooled connections would hold locks and stale schema caches
    if kind == "sqlite":
        _sqlite_restore(path, _sqlite_path(engine))
    else:
        _pg_restore(engine, path)
    engine.dispose()


# ---- SQLite -------------------------------------------------------------------------------------

def _sqlite_path(engine: sa.Engine) -> str:
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        raise BackupError("内存数据库或 URI 形式的 SQLite 无法备份；请使用文件数据库")
    return database


def _sqlite_check(conn: sqlite3.Connection, label: str) -> None:
    result = conn.execute("PRAGMA integrity_check").fetchone()[0]
    if result != "ok":
        raise BackupError(f"{label}完整性检查失败：{result}")
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    missing = [t for t in REQUIRED_TABLES if t not in tables]
    if missing:
        raise BackupError(f"{label}缺少数据表 {', '.join(missing)}，不是本系统的数据库")


def _sqlite_backup(source: str, target: Path) -> None:
    # The online backup API copies a consistent snapshot while the app keeps writing (WAL).
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(str(target))
    try:
        src.backup(dst, pages=1024)
        _sqlite_check(dst, "备份")
    finally:
        dst.close()
        src.close()


def _sqlite_restore(backup: Path, target: str) -> None:
    src = sqlite3.connect(f"file:{backup}?mode=ro", uri=True)
    try:
        _sqlite_check(src, "备份文件")
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


# ---- PostgreSQL ---------------------------------------------------------------------------------

def _pg_env(engine: sa.Engine) -> dict[str, str]:
    url = engine.url
    env = dict(os.environ)
    env.update({"PGHOST": url.host or "localhost", "PGPORT": str(url.port or 5432),
                "PGUSER": url.username or "postgres", "PGDATABASE": url.database or ""})
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env


def _pg_tool(name: str) -> str:
    exe = os.environ.get(name.upper().replace("_", ""), "") or shutil.which(name)
    if not exe:
        raise BackupError(f"找不到 {name}；请安装 postgresql-client（与服务器相同的大版本）")
    return exe


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if proc.returncode != 0:
        raise BackupError(f"{what}失败（退出码 {proc.returncode}）：{proc.stderr.strip()[-2000:]}")


def _pg_dump(engine: sa.Engine, target: Path) -> None:
    env = _pg_env(engine)
    # Custom format: compressed, restorable table by table, checked below with --list.
    _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", "--file", str(target)],
         env, "pg_dump")
    _run([_pg_tool("pg_restore"), "--list", str(target)], env, "检查备份文件")


def _pg_restore(engine: sa.Engine, backup: Path) -> None:
    env = _pg_env(engine)
    # One transaction: a failed restore leaves the database as it was.
    _run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges",
          "--single-transaction", "--exit-on-error", "--dbname", env["PGDATABASE"], str(backup)],
         env, "pg_restore")
