"""The street office's district table (issue 19): one row per estate, in a fixed number of queries.

Whatever the number of estates, rounds or units: the estates, their rounds (with the stored result's pass/fail),
the stored counters of the open rounds (turnout: households from round_count for a household-counted round, persons
from round_person_count for a person-counted one, as its tally counts them), the sign-offs of the closed rounds,
the stored funding summary
rows (funding/summary.py) and which estates have a plan in force. Sorting, filtering and paging happen on the
rows; the CSV/XLSX export is the same table, unpaged. No charts here: they are on each estate's page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from fractions import Fraction

import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.db import ids_in
from residents_app.errors import DomainError
from residents_app.extensions import db
from residents_app.formatting import format_local_dt
from residents_app.funding import summary as funding_summary
from residents_app.funding.services import format_ratio
from residents_app.funding.services import funding_summary as live_funding
from residents_app.oversight.services import DECISIONS, SIGNOFF_KIND
from residents_app.rounds.models import ROUND_KIND_LABELS, Round, RoundCount, RoundPersonCount, RoundResult
from residents_app.works.models import StartApplication

PAGE_SIZE = 50
SORTS = {
    "code": lambda r: (r.code,),
    "name": lambda r: (r.name, r.code),
    "stage": lambda r: (r.stage, r.code),
    "turnout": lambda r: (r.turnout if r.turnout is not None else Fraction(-1), r.code),
    "funding": lambda r: (r.funding if r.funding is not None else Fraction(-1), r.code),
    "overdue": lambda r: (r.overdue, r.code),
}


@dataclass
class EstateRow:
    estate_id: int
    code: str
    name: str
    stage: str
    open_rounds: int
    voted: int
    total: int
    turnout: Fraction | None  # voted / total over the open rounds' frozen rolls
    funding: Fraction | None  # counted / owed on the plan in force (None: no plan)
    owing_units: int
    to_verify: int  # closed rounds the street office has not signed off (or returned)
    overdue: int  # to_verify + open rounds past their closing time (the closing job has not run)
    next_close: datetime | None
    # what voted / total count: 户 (households), 人 (persons: the open rounds are counted by person), 户/人 (both)
    unit: str = "户"

    @property
    def turnout_text(self) -> str:
        if self.turnout is None:
            return "—"
        return f"{format_ratio(self.turnout)}（{self.voted} / {self.total} {self.unit}）"

    @property
    def funding_text(self) -> str:
        return format_ratio(self.funding) if self.funding is not None else "—"


def _stage(rounds: list, plan: bool, funded: bool, started: bool = False) -> str:
    open_ = [r for r in rounds if r["status"] == "open"]
    if started and not open_:
        return "施工（已批准开工）"
    if open_:
        return f"投票中：{ROUND_KIND_LABELS.get(open_[0]['kind'], open_[0]['kind'])}"
    if plan:
        return "资金已到位" if funded else "筹资中"
    closed = [r for r in rounds if r["status"] == "closed"]
    if closed:
        last = max(closed, key=lambda r: (r["closed_at"] or r["closes_at"], r["id"]))
        label = ROUND_KIND_LABELS.get(last["kind"], last["kind"])
        if last["passed"] is None or last["kind"] in ("satisfaction", "management_mode"):
            return f"{label}已结束"
        return f"{label}{'已通过' if last['passed'] else '未通过'}"
    if rounds:
        return "准备表决"
    return "未开始"


_ROUND_KEYS = ("id", "estate_id", "kind", "status", "closes_at", "closed_at", "passed")


def district_rows(estates: list, now: datetime) -> list[EstateRow]:
    ids = [e.id for e in estates]
    rounds: dict[int, list[dict]] = {i: [] for i in ids}
    if ids:
        # Plain tuples (no RowMapping per round): at a city's 3,000 estates the rows' overhead counts.
        for row in db.session.execute(
                sa.select(Round.id, Round.estate_id, Round.kind, Round.status, Round.closes_at, Round.closed_at,
                          RoundResult.passed)
                .outerjoin(RoundResult, RoundResult.round_id == Round.id)
                .where(ids_in(db.session, Round.estate_id, ids)).order_by(Round.closes_at, Round.id)).tuples():
            rounds[row[1]].append(dict(zip(_ROUND_KEYS, row, strict=True)))
    open_ids = [r["id"] for rs in rounds.values() for r in rs if r["status"] == "open"]
    closed_ids = {r["id"] for rs in rounds.values() for r in rs if r["status"] == "closed"}
    turnout = _turnout(ids) if open_ids else {}
    signed = _signed_off(ids, closed_ids)
    stored = funding_summary.stored(ids)
    planned = funding_summary.plans_in_force(ids)
    started = set(db.session.execute(sa.select(StartApplication.estate_id).where(
        ids_in(db.session, StartApplication.estate_id, ids), StartApplication.status == "approved")).scalars()
    ) if ids else set()
    out = []
    for e in estates:
        rs = rounds[e.id]
        total, voted, unit = turnout.get(e.id, (0, 0, "户"))
        funding, owing = _funding(e.id, planned.get(e.id), stored.get(e.id))
        to_verify = sum(1 for r in rs if r["status"] == "closed" and r["id"] not in signed)
        late = sum(1 for r in rs if r["status"] == "open" and r["closes_at"] <= now)
        open_rs = [r for r in rs if r["status"] == "open"]
        out.append(EstateRow(
            estate_id=e.id, code=e.code, name=e.name,
            stage=_stage(rs, e.id in planned, funding is not None and funding >= 1, e.id in started),
            open_rounds=len(open_rs), voted=voted, total=total, unit=unit,
            turnout=Fraction(voted, total) if total else None, funding=funding, owing_units=owing,
            to_verify=to_verify, overdue=to_verify + late,
            next_close=min((r["closes_at"] for r in open_rs), default=None)))
    return out


def _turnout(estate_ids: list[int]) -> dict[int, tuple[int, int, str]]:
    """{estate id: (on the open rounds' rolls, voted, 户 / 人 / 户/人)}, summed by the database in one statement:
    a household-counted round's units from round_count, a person-counted round's persons and participating persons
    from round_person_count (what its tally counts: one owner of several units is one person). The open rounds are
    picked by estate on the round table (a few thousand rows), then joined to their counters: not a filter of every
    counter row against the list of round ids."""
    on_roll = RoundCount.choice == ""
    households = (
        sa.select(Round.estate_id, sa.literal_column("'户'").label("unit"),
                  sa.func.sum(sa.case((on_roll, RoundCount.units), else_=0)).label("total"),
                  sa.func.sum(sa.case((on_roll, 0), else_=RoundCount.units)).label("voted"))
        .join(Round, Round.id == RoundCount.round_id)
        .where(ids_in(db.session, Round.estate_id, estate_ids), Round.status == "open",
               Round.counting_mode != "person")
        .group_by(Round.estate_id))
    persons = (
        sa.select(Round.estate_id, sa.literal_column("'人'").label("unit"),
                  sa.func.sum(RoundPersonCount.persons).label("total"),
                  sa.func.sum(RoundPersonCount.participated).label("voted"))
        .join(Round, Round.id == RoundPersonCount.round_id)
        .where(ids_in(db.session, Round.estate_id, estate_ids), Round.status == "open",
               Round.counting_mode == "person")
        .group_by(Round.estate_id))
    out: dict[int, tuple[int, int, str]] = {}
    for estate_id, unit, total, voted in db.session.execute(sa.union_all(households, persons)).tuples():
        was_total, was_voted, was_unit = out.get(estate_id, (0, 0, unit))
        out[estate_id] = (was_total + int(total or 0), was_voted + int(voted or 0),
                          unit if was_unit == unit else "户/人")
    return out


def _funding(estate_id: int, plan_id: int | None, row) -> tuple[Fraction | None, int]:
    if plan_id is None:
        return None, 0
    if row is None or row.plan_version_id != plan_id:
        # No stored row yet (older data, or a change not committed yet): computed live, this once.
        try:
            s = live_funding(estate_id)
        except DomainError:
            return None, 0
        if s.get("plan_version_id") is None:
            return None, 0
        owed, counted, owing = s["owed_fen"], s["counted_fen"], s["owing_units"]
    else:
        owed, counted, owing = row.owed_fen, row.counted_fen, row.owing_units
    return (Fraction(counted, owed) if owed else None), owing


def _signed_off(estate_ids: list[int], closed_ids: set[int]) -> set[int]:
    """Closed rounds whose latest sign-off is a decision (not a return), in one query over the log."""
    if not closed_ids:
        return set()
    latest: dict[str, str] = {}
    for subject_id, data in db.session.execute(
            sa.select(AuditEvent.subject_id, AuditEvent.data)
            .where(ids_in(db.session, AuditEvent.chain, estate_ids), AuditEvent.kind == SIGNOFF_KIND,
                   AuditEvent.subject_type == "round").order_by(AuditEvent.chain, AuditEvent.seq)):
        latest[subject_id] = (data or {}).get("decision", "")
    return {int(s) for s, d in latest.items() if s.isdigit() and d in DECISIONS and d != "returned"} & closed_ids


def filter_rows(rows: list[EstateRow], *, q: str = "", stage: str = "", overdue_only: bool = False,
                sort: str = "code", descending: bool = False) -> list[EstateRow]:
    q = (q or "").strip()
    if q:
        rows = [r for r in rows if q in r.name or q.lower() in r.code.lower()]
    if stage:
        rows = [r for r in rows if r.stage == stage]
    if overdue_only:
        rows = [r for r in rows if r.overdue]
    return sorted(rows, key=SORTS.get(sort, SORTS["code"]), reverse=descending)


def page_of(rows: list, page: int, size: int | None = None) -> tuple[list, int, int]:
    """(the rows of page `page`, counted from 1, clamped), the page, the number of pages."""
    size = size or PAGE_SIZE
    pages = max(1, -(-len(rows) // size))
    page = min(max(1, page), pages)
    return rows[(page - 1) * size:page * size], page, pages


# 已投票数 / 名册数 in the unit of 计数单位: 户 (households), 人 (persons), 户/人 (open rounds of both kinds)
HEADER = ["小区编码", "小区", "阶段", "进行中表决", "投票率", "已投票数", "名册数", "计数单位", "资金到位",
          "未缴清户数", "待核验", "逾期", "最近截止"]


def table_rows(rows: list[EstateRow]) -> list[list]:
    return [HEADER] + [[r.code, r.name, r.stage, r.open_rounds, format_ratio(r.turnout), r.voted, r.total,
                        r.unit if r.open_rounds else "", r.funding_text, r.owing_units, r.to_verify, r.overdue,
                        format_local_dt(r.next_close) if r.next_close else ""] for r in rows]
