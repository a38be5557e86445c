"""The verification desk's rows in light rows (issue 19): one query for the frozen roll, one for every ballot of the
round (with the unit's counted ballot id from current_ballot), one for the mandates, whatever the roll's size.

No ORM objects per unit or per ballot: a roll row and a ballot are plain slotted records with what the desk page
and its flags read (the same attributes and labels as RollEntry and Ballot). The XLSX export keeps the full ballots
(views._desk_rows): it writes columns the page does not show.
"""

from __future__ import annotations

import json
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

_QUERIES: dict[str, sa.Select] = {}


def _query(name: str) -> sa.Select:
    """Built once (building a statement costs more than running it), with the round as a bound parameter."""
    if not _QUERIES:
        round_id = sa.bindparam("p_round_id")
        # The order of round_facts.roll_entries (building name, then entry id).
        _QUERIES["roll"] = (
            # The owners' names as the stored JSON text: parsed below in one call for the whole roll.
            sa.select(RollEntry.unit_id, RollEntry.label, RollEntry.area_m2,
                      sa.cast(RollEntry.owner_names, sa.Text))
            .where(RollEntry.round_id == round_id).order_by(RollEntry.building_name, RollEntry.id))
        # The order of round_facts._ballots (cast time, then id); `current`: the ballot id current_ballot holds for
        # the ballot's unit (the counted ballot is the one of the unit's history with that id).
        _QUERIES["ballots"] = (
            sa.select(Ballot.id, Ballot.unit_id, Ballot.choice, Ballot.channel, Ballot.status, Ballot.cast_at,
                      Ballot.scan_file_id, Ballot.mandate_id, Ballot.proxy_name, Ballot.confirmed_by_id,
                      Ballot.entered_by_id, CurrentBallot.ballot_id)
            .outerjoin(CurrentBallot, sa.and_(CurrentBallot.round_id == Ballot.round_id,
                                              CurrentBallot.unit_id == Ballot.unit_id))
            .where(Ballot.round_id == round_id).order_by(Ballot.cast_at, Ballot.id))
        _QUERIES["mandates"] = sa.select(ProxyMandate).where(ProxyMandate.round_id == round_id)
    return _QUERIES[name]


class RollRow(NamedTuple):
    unit_id: int
    label: str
    area_m2: Decimal
    owner_names: list


class DeskBallot(BallotLabels):
    """A ballot as the desk reads it (the attributes of rounds.models.Ballot it uses, and its two labels)."""

    __slots__ = ("id", "unit_id", "choice", "channel", "status", "cast_at", "scan_file_id", "mandate_id",
                 "proxy_name", "confirmed_by_id", "entered_by_id")

    def __init__(self, row):
        (self.id, self.unit_id, self.choice, self.channel, self.status, self.cast_at, self.scan_file_id,
         self.mandate_id, self.proxy_name, self.confirmed_by_id, self.entered_by_id) = row[:11]


@dataclass
class Desk:
    entries: list  # rows (unit_id, label, area_m2, owner_names), in roll_entries order
    ballots: list[DeskBallot]  # in cast order
    rows: list[dict]  # views._desk_rows's shape

    @property
    def label_of(self) -> dict[int, str]:
        return {e.unit_id: e.label for e in self.entries}


_COUNTED = ("counted", "superseded")
_PENDING = ("pending", "conflict")


def load(round_id: int) -> Desk:
    params = {"p_round_id": round_id}
    rows = db.session.execute(_query("roll"), params).all()
    names = json.loads("[" + ",".join(r[3] or "null" for r in rows) + "]") if rows else []
    entries = [RollRow(r[0], r[1], r[2], n or []) for r, n in zip(rows, names, strict=True)]
    ballots: list[DeskBallot] = []
    by_unit: dict[int, list[DeskBallot]] = {}
    current: dict[int, int] = {}
    for row in db.session.execute(_query("ballots"), params):
        b = DeskBallot(row)
        ballots.append(b)
        by_unit.setdefault(b.unit_id, []).append(b)
        if row[11] is not None:
            current[b.unit_id] = row[11]
    mandates = {m.id: m for m in db.session.execute(_query("mandates"), params).scalars()}
    rows = []
    for e in entries:
        history = by_unit.get(e.unit_id, [])
        if not history:
            rows.append({"entry": e, "counted": None, "history": history, "pending": [], "mandate": None,
                         "changes": 0})
            continue
        want = current.get(e.unit_id)
        counted = next((b for b in history if b.id == want), None)
        rows.append({"entry": e, "counted": counted, "history": history,
                     "pending": [b for b in history if b.status in _PENDING],
                     "mandate": mandates.get(counted.mandate_id) if counted and counted.mandate_id else None,
                     "changes": max(sum(1 for b in history if b.status in _COUNTED) - 1, 0)})
    return Desk(entries=entries, ballots=ballots, rows=rows)


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

    out = []
    for r in rows:
        e, counted = r["entry"], r["counted"]
        if counted is not None:
            choice = "已投票" if hidden else _esc(labels.get(counted.choice, counted.choice))
            channel = _esc(counted.channel_label)
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
                   f'<td>{"、".join(_esc(n) for n in e.owner_names or ())}</td><td>{choice}</td><td>{channel}</td>'
                   f'<td>{cast}</td><td class="num">{r["changes"] or ""}</td><td>{pending}</td></tr>')
    return Markup("\n".join(out))  # noqa: S704 (every value above is escaped or a number)


def _esc(value) -> str:
    """Escaped as plain text (a str, so that adding markup to it does not escape the markup again)."""
    return str(escape(value))
