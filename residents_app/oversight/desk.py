"""The verification desk's roll table, one page of it at a time (issue 19): the units of the page with all their
ballots, the counted one and its proxy mandate, in one statement whatever the roll's size.

A district-sized roll has thousands of units; the desk shows its figures, flags and chain status for the whole
round and the roll PAGE_SIZE units at a time (the full roll with every ballot is the XLSX export, views._desk_rows).
No ORM objects per unit or per ballot: plain slotted records with what the table reads (the same attributes and
labels as RollEntry and Ballot).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

import sqlalchemy as sa
from markupsafe import Markup, escape

from residents_app.extensions import db
from residents_app.formatting import format_area, format_local_dt
from residents_app.rounds.models import (
    Ballot,
    BallotLabels,
    CurrentBallot,
    ProxyMandate,
    RollEntry,
)

PAGE_SIZE = 100
_QUERY: list[sa.Select] = []


def _query() -> sa.Select:
    """Built once (building a statement costs more than running it), with the round and the page as bound
    parameters."""
    if not _QUERY:
        round_id = sa.bindparam("p_round_id")
        # The page of the roll, in the order of round_facts.roll_entries (building name, then entry id); the
        # owners' names as the stored JSON text (parsed below in one call for the page).
        page = (sa.select(RollEntry.id, RollEntry.building_name, RollEntry.unit_id, RollEntry.label,
                          RollEntry.area_m2, sa.cast(RollEntry.owner_names, sa.Text).label("names"))
                .where(RollEntry.round_id == round_id).order_by(RollEntry.building_name, RollEntry.id)
                .limit(sa.bindparam("p_limit", type_=sa.Integer))
                .offset(sa.bindparam("p_offset", type_=sa.Integer)).cte("page"))
        # The roll's length counted on its own (the round's index), not as a window count over the page's query,
        # which had the database carry every entry of the roll through the window before sorting the page out.
        total = (sa.select(sa.func.count()).select_from(RollEntry).where(RollEntry.round_id == round_id)
                 .scalar_subquery().label("total"))
        # Each unit's ballots in cast order (time, then id); `current`: the ballot id current_ballot holds for the
        # unit (the counted ballot is the one of the unit's history with that id); the ballot's proxy mandate.
        _QUERY.append(
            sa.select(page.c.unit_id, page.c.label, page.c.area_m2, page.c.names, total,
                      Ballot.id, Ballot.choice, Ballot.channel, Ballot.status, Ballot.cast_at, Ballot.scan_file_id,
                      Ballot.mandate_id, Ballot.proxy_name, CurrentBallot.ballot_id, ProxyMandate.proxy_name,
                      ProxyMandate.evidence_file_id)
            .select_from(page)
            .outerjoin(Ballot, sa.and_(Ballot.round_id == round_id, Ballot.unit_id == page.c.unit_id))
            .outerjoin(CurrentBallot, sa.and_(CurrentBallot.round_id == round_id,
                                              CurrentBallot.unit_id == page.c.unit_id))
            .outerjoin(ProxyMandate, ProxyMandate.id == Ballot.mandate_id)
            .order_by(page.c.building_name, page.c.id, Ballot.cast_at, Ballot.id))
    return _QUERY[0]


class RollRow(NamedTuple):
    unit_id: int
    label: str
    area_m2: Decimal
    owner_names: list


class Mandate(NamedTuple):
    proxy_name: str
    evidence_file_id: int | None


class DeskBallot(BallotLabels):
    """A ballot as the desk's table reads it (the attributes of rounds.models.Ballot it uses, and its labels)."""

    __slots__ = ("id", "unit_id", "choice", "channel", "status", "cast_at", "scan_file_id", "mandate_id",
                 "proxy_name")

    def __init__(self, unit_id, row):
        self.unit_id = unit_id
        (self.id, self.choice, self.channel, self.status, self.cast_at, self.scan_file_id, self.mandate_id,
         self.proxy_name) = row


@dataclass
class RollPage:
    number: int  # from 1
    page_count: int
    total: int  # units on the roll
    first: int  # the page's first and last unit, counted from 1 (0, 0: an empty roll)
    last: int
    rows: list[dict]  # views._desk_rows's shape


_COUNTED = ("counted", "superseded")
_PENDING = ("pending", "conflict")


def roll_page(round_id: int, number: int) -> RollPage | None:
    """Page `number` (from 1) of the round's roll with its units' ballots; None past the last page."""
    offset = (number - 1) * PAGE_SIZE
    result = db.session.execute(_query(), {"p_round_id": round_id, "p_limit": PAGE_SIZE, "p_offset": offset}).all()
    if not result:
        return None if number > 1 else RollPage(1, 1, 0, 0, 0, [])
    # One pass over the rows (a unit's rows are consecutive, its ballots in cast order): each ballot once.
    rows: list[dict] = []
    texts: list[str] = []  # the units' owners' names as JSON text, parsed below in one call for the page
    unit_id = want = history = pending = row = None
    for r in result:
        if r[0] != unit_id:
            unit_id, want, history, pending = r[0], r[13], [], []
            row = {"entry": r, "counted": None, "history": history, "pending": pending, "mandate": None,
                   "changes": 0}
            rows.append(row)
            texts.append(r[3] or "null")
        if r[5] is None:
            continue
        b = DeskBallot(unit_id, r[5:13])
        history.append(b)
        if b.status in _COUNTED:
            row["changes"] += 1
        elif b.status in _PENDING:
            pending.append(b)
        if b.id == want:
            row["counted"] = b
            if b.mandate_id and r[14] is not None:
                row["mandate"] = Mandate(r[14], r[15])
    for row, owner_names in zip(rows, json.loads("[" + ",".join(texts) + "]"), strict=True):
        r = row["entry"]
        row["entry"] = RollRow(r[0], r[1], r[2], owner_names or [])
        if row["changes"]:
            row["changes"] -= 1  # the counted ballots after the first
    total = result[0][4]
    return RollPage(number=number, page_count=max(-(-total // PAGE_SIZE), 1), total=total, first=offset + 1,
                    last=offset + len(rows), rows=rows)


_CHAIN_QUERIES: dict[bool, sa.Select] = {}


def _chain_query(opened: bool) -> sa.Select:
    """Built once per shape (with or without the register's changes), the chain and the round bound per call.

    Part 0: the chain's checkpoint with the entries from it (audit.verify.checkpoint_statement, what the desk's
    chain check reads); part 1: the round's sign-offs and the register's changes after the roll froze. Plain rows
    with an entry's columns, not ORM objects."""
    if opened not in _CHAIN_QUERIES:
        from residents_app.audit.models import AuditEvent
        from residents_app.audit.verify import COLUMNS, checkpoint_statement
        from residents_app.oversight.flags import REGISTER_KINDS
        from residents_app.oversight.services import SIGNOFF_KIND

        t = AuditEvent.__table__
        wanted = sa.and_(t.c.kind == SIGNOFF_KIND, t.c.subject_type == "round",
                         t.c.subject_id == sa.bindparam("p_subject_id", type_=sa.String))
        if opened:
            wanted = sa.or_(wanted, sa.and_(t.c.kind.in_(REGISTER_KINDS),
                                            t.c.at > sa.bindparam("p_opened", type_=t.c.at.type)))
        checkpoint = checkpoint_statement().subquery("checkpoint")
        both = sa.union_all(
            sa.select(sa.literal(0).label("part"), *checkpoint.c),
            sa.select(sa.literal(1), sa.null(), sa.null(), sa.null(), sa.null(), *[t.c[name] for name in COLUMNS])
            .where(t.c.chain == sa.bindparam("p_chain", type_=sa.Integer), wanted)).subquery()
        _CHAIN_QUERIES[opened] = sa.select(*both.c).order_by(both.c.part, both.c.seq)
    return _CHAIN_QUERIES[opened]


def chain_rows(rnd) -> tuple[list, list, list]:
    """(the round's sign-offs (services.signoffs), the register's changes after its roll froze (the owner-change
    flag's entries), the rows of the chain's check from its checkpoint (audit.verify.verify_checkpoint_rows)),
    from the round's chain in one statement, each in seq order."""
    from residents_app.oversight.flags import REGISTER_KINDS
    from residents_app.oversight.services import SIGNOFF_KIND

    rows = db.session.execute(_chain_query(rnd.opened_at is not None),
                              {"p_chain": rnd.estate_id, "p_subject_id": str(rnd.id), "p_opened": rnd.opened_at}
                              ).all()
    return ([r for r in rows if r.part == 1 and r.kind == SIGNOFF_KIND],
            [r for r in rows if r.part == 1 and r.kind in REGISTER_KINDS], [r for r in rows if r.part == 0])


def roll_table_rows(rows: list[dict], rnd, hidden: bool) -> Markup:
    """The desk's roll table body (one <tr> per unit; every value escaped), written here rather than in the
    template: a district-sized roll has a thousand rows, and this is several times cheaper than a Jinja loop.
    The same cells as templates/oversight/verify.html had in its loop."""
    from flask import url_for

    labels = rnd.option_labels
    # /audit/files/<id>: the route's URL for id 0, without the 0.
    file_url = url_for("oversight.round_file", file_id=0)[:-1]
    times: dict = {}

    def when(value) -> str:
        text = times.get(value)
        if text is None:
            text = times[value] = format_local_dt(value)
        return text

    # A roll has a handful of distinct choices and channels: each escaped once.
    choices: dict = {}
    channels: dict = {}
    out = []
    for r in rows:
        e, counted = r["entry"], r["counted"]
        if counted is not None:
            if hidden:
                choice = "已投票"
            else:
                choice = choices.get(counted.choice)
                if choice is None:
                    choice = choices[counted.choice] = _esc(labels.get(counted.choice, counted.choice))
            channel = channels.get(counted.channel)
            if channel is None:
                channel = channels[counted.channel] = _esc(counted.channel_label)
            if counted.scan_file_id:
                channel += f' · <a href="{file_url}{counted.scan_file_id}">扫描件</a>'
            m = r["mandate"]
            if m is not None:
                channel += (f" · 受托人 {_esc(m.proxy_name)} · "
                            f'<a href="{file_url}{m.evidence_file_id}">委托书</a>')
            cast = when(counted.cast_at)
        else:
            choice, channel, cast = '<span class="muted">未投票</span>', "", ""
        parts = []
        for b in r["pending"]:
            part = _esc(b.channel_label)
            if b.proxy_name:
                part += f"（受托人 {_esc(b.proxy_name)}）"
            part += f" {_esc(b.status_label)}"
            if b.scan_file_id:
                part += f'（<a href="{file_url}{b.scan_file_id}">扫描件</a>）'
            parts.append(part)
        pending = "；".join(parts)
        out.append(f'<tr><td>{_esc(e.label)}</td><td class="num">{format_area(e.area_m2)}</td>'
                   f'<td>{_esc("、".join(map(str, e.owner_names or ())))}</td><td>{choice}</td><td>{channel}</td>'
                   f'<td>{cast}</td><td class="num">{r["changes"] or ""}</td><td>{pending}</td></tr>')
    return Markup("\n".join(out))  # noqa: S704 (every value above is escaped or a number)


_SPECIAL = re.compile(r"[&<>\"']")


def _esc(value) -> str:
    """Escaped as plain text (a str, so that adding markup to it does not escape the markup again). Most values
    (labels, names) have nothing to escape: they are returned as they are, without building a Markup."""
    if type(value) is str and _SPECIAL.search(value) is None:
        return value
    return str(escape(value))
