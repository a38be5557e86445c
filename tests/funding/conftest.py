"""Fixtures: a small estate with two buildings (tests/plan_world.py)."""

from tests.plan_world import resident_login, world  # noqa: F401
