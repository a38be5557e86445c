"""Fixtures for the audit tests: a small chain, and tampering with the guard lifted."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest

from residents_app.audit.services import record


@pytest.fixture
def chain5(db, factory, now):
    """An estate with five events on its chain: seq 1..5."""
    estate = factory.estate(code="AUD1", buildings={"1幢": [("101", "88.50")]})
    events = [
        record(kind, chain=estate.id, actor="user:1:tester", now=now + timedelta(minutes=i),
               subject_type="round", subject_id=7, data={"i": i, "备注": "测试"})
        for i, kind in enumerate(["round.opened", "ballot.cast", "ballot.cast", "ballot.changed", "round.closed"])
    ]
    db.session.flush()
    # Plain values: a CLI invocation closes the test's session and detaches ORM objects.
    return (SimpleNamespace(id=estate.id, name=estate.name, code=estate.code),
            [SimpleNamespace(id=e.id, seq=e.seq, kind=e.kind, hash=e.hash) for e in events])
from tests.voted import tamper  # noqa: E402,F401
