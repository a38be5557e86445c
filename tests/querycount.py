"""Count the SQL statements a block of code runs (issue 19: no N+1), through SQLAlchemy's engine events.

    with count_statements(db.engine) as counted:
        client.get("/district")
    assert counted.total <= 20, counted.report()

Transaction control (BEGIN, SAVEPOINT, RELEASE, ROLLBACK, COMMIT) is not counted: the test fixtures add those.
Statements run straight on the DB-API cursor (rounds/castpath.py) are invisible here; the cast path has its own
spy (tests/rounds/test_cast_path.py).
"""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import event

_CONTROL = ("BEGIN", "SAVEPOINT", "RELEASE", "ROLLBACK", "COMMIT")


@dataclass
class Counted:
    statements: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.statements)

    def report(self) -> str:
        """The statements by their first 80 characters, most frequent first (what a failing bound prints)."""
        lines = Counter(" ".join(s.split())[:80] for s in self.statements).most_common()
        return f"{self.total} statements:\n" + "\n".join(f"{n:5d}  {s}" for s, n in lines)


@contextlib.contextmanager
def count_statements(engine):
    counted = Counted()

    def before(conn, cursor, statement, parameters, context, executemany):
        if statement.split(None, 1)[0].upper() not in _CONTROL:
            counted.statements.append(statement)

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield counted
    finally:
        event.remove(engine, "before_cursor_execute", before)
