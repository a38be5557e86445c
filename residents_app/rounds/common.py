"""Small lookups every rounds module uses: the round by id (locked or not), actor strings, unit ordering."""

from __future__ import annotations

import functools
import re

import sqlalchemy as sa

from residents_app.errors import NotFound
from residents_app.extensions import db
from residents_app.rounds.models import Round

SYSTEM_ACTOR = "system:scheduler"


def get_round(round_id: int) -> Round:
    rnd = db.session.get(Round, round_id)
    if rnd is None:
        raise NotFound("找不到该表决")
    return rnd


def lock_round(round_id: int) -> Round | None:
    # FOR UPDATE on PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE already.
    return db.session.execute(
        sa.select(Round).where(Round.id == round_id).with_for_update().execution_options(populate_existing=True)
    ).scalar_one_or_none()


def dialect_name() -> str:
    return db.session.get_bind().dialect.name


def owner_actor(unit_id: int, owner_id: int) -> str:
    return f"unit:{unit_id}/owner:{owner_id}"


def actor_name(user) -> str:
    if user is None:
        return SYSTEM_ACTOR
    if isinstance(user, str):
        return user
    return f"user:{user.id}:{user.username}"


@functools.lru_cache(maxsize=65536)
def natural_key(text: str) -> tuple:
    """"2幢" before "10幢", "201" before "1001" (cached: a roll repeats its building names and unit numbers)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text))
