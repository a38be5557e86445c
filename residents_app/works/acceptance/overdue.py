"""Overdue rectification items (整改逾期, issue 16): an item still open after its due day (Beijing) is overdue on
the next day. The scheduler reminds each item's owner once (an audit record on the estate's chain naming the
owner and its account, as for an overdue progress report); the acceptance page, the construction page and the
project timeline flag overdue items.

Both kinds of items: the construction's (a resident supervisor's finding, works.construction.models
.RectificationItem, owned by a party) and the acceptance's (AcceptanceIssue, owned by a party or named freely).
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from residents_app.audit.services import record
from residents_app.core.calendar import beijing_date
from residents_app.extensions import db
from residents_app.works.acceptance.models import Acceptance, AcceptanceIssue
from residents_app.works.construction.models import Party, RectificationItem

ACTOR = "system:scheduler"


def overdue_acceptance_issues(*, today: date, estate_id: int | None = None) -> list[AcceptanceIssue]:
    q = (sa.select(AcceptanceIssue).join(Acceptance, Acceptance.id == AcceptanceIssue.acceptance_id)
         .where(AcceptanceIssue.status == "open", AcceptanceIssue.due_on < today, Acceptance.status == "open"))
    if estate_id is not None:
        q = q.where(Acceptance.estate_id == estate_id)
    return list(db.session.execute(q.order_by(AcceptanceIssue.due_on, AcceptanceIssue.id)).scalars())


def overdue_construction_items(*, today: date) -> list[RectificationItem]:
    q = sa.select(RectificationItem).where(RectificationItem.state == "open", RectificationItem.due_on.is_not(None),
                                           RectificationItem.due_on < today)
    return list(db.session.execute(q.order_by(RectificationItem.due_on, RectificationItem.id)).scalars())


def _owner(party: Party | None, name: str) -> dict:
    return {"owner": party.name if party else name, "owner_party_id": party.id if party else None,
            "owner_account": party.user.username if party is not None and party.user is not None else None}


def remind_overdue_items(now: datetime) -> int:
    """Scheduler step: each overdue item's owner is reminded once (reminded_at, an audit record). Idempotent."""
    today = beijing_date(now)
    n = 0
    for issue in overdue_acceptance_issues(today=today):
        if issue.reminded_at is not None:
            continue
        issue.reminded_at = now
        record("acceptance.issue_overdue", chain=issue.acceptance.estate_id, actor=ACTOR, now=now,
               subject_type="acceptance", subject_id=issue.acceptance_id,
               data={"number": issue.number, "due_on": issue.due_on.isoformat(), "description": issue.description,
                     **_owner(issue.owner_party, issue.owner)})
        n += 1
    for item in overdue_construction_items(today=today):
        if item.reminded_at is not None:
            continue
        item.reminded_at = now
        record("construction.rectification_overdue", chain=item.estate_id, actor=ACTOR, now=now,
               subject_type="rectification_item", subject_id=item.id,
               data={"due_on": item.due_on.isoformat(), "description": item.description,
                     **_owner(item.owner_party, "")})
        n += 1
    db.session.flush()
    return n
