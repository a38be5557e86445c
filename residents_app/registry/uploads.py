"""Roster files kept on the server between an import's preview and its confirmation (the commit step re-parses
the file kept here, not a second upload). They hold owners' names and phone numbers: private to the app's
user (0600 in 0700 directories), deleted on confirmation, and by the scheduler 24 hours after the upload
when never confirmed (scheduler.jobs.delete_stale_roster_uploads)."""

from __future__ import annotations

import hashlib
import logging
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from flask import current_app

from residents_app.files import private_dir, write_private

log = logging.getLogger(__name__)

KEPT_FOR = timedelta(hours=24)
NAME_RE = re.compile(r"^[0-9a-f]{64}\.(xlsx|csv)$")


def upload_root() -> Path:
    return Path(current_app.config.get("ROSTER_UPLOAD_DIR")
                or Path(current_app.instance_path) / "uploads" / "roster")


def upload_dir(estate_id: int) -> Path:
    return private_dir(upload_root() / str(estate_id))


def store(estate_id: int, ext: str, data: bytes) -> str:
    """Keep an uploaded roster; returns its token (the SHA-256 of the content)."""
    token = hashlib.sha256(data).hexdigest()
    write_private(upload_dir(estate_id) / f"{token}.{ext}", data)
    return token


def stale_uploads(now: datetime) -> list[Path]:
    """Kept rosters uploaded (last written) more than KEPT_FOR before `now`, oldest first."""
    root = upload_root()
    if not root.is_dir():
        return []
    found = []
    for estate_dir in root.iterdir():
        if not (estate_dir.is_dir() and estate_dir.name.isdigit()):
            continue
        for path in estate_dir.iterdir():
            if NAME_RE.match(path.name) and path.is_file():
                written = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                if now - written > KEPT_FOR:
                    found.append((written, str(path), path))
    return [path for _, _, path in sorted(found)]


def delete_stale(now: datetime) -> int:
    """Delete the rosters never confirmed within KEPT_FOR; returns how many were deleted (0 when run again)."""
    deleted = 0
    for path in stale_uploads(now):
        try:
            path.unlink()
        except FileNotFoundError:  # confirmed, or deleted by another scheduler, meanwhile
            continue
        deleted += 1
        log.info("deleted the unconfirmed roster upload %s/%s", path.parent.name, path.name[:12])
    return deleted
