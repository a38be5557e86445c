"""Figures for the estate dashboard and the district dashboard (read-only)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime
from fractions import Fraction

import sqlalchemy as sa
from sqlalchemy.orm import load_only

from residents_app.db import core_rows, ids_in, json_value
from residents_app.extensions import db
from residents_app.formatting import format_local_dt, to_local
from residents_app.oversight import charts
from residents_app.oversight.round_facts import round_tally
from residents_app.registry.services import building_names, building_names_of
from residents_app.rounds.counters import add_stored, stored_select

COUNTED_STATUSES = ("counted", "superseded")


@dataclass
class Bar:
    label: str
    value_text: str
    required_text: str
    fill_pct: str  # CSS width, e.g. "66.66%" (display only: the decision is `met`, computed exactly)
    line_pct: str
    met: bool
    margin_text: str


def _pct(frac: Fraction) -> str:
    frac = min(max(frac, Fraction(0)), Fraction(1))
    basis_points = frac.numerator * 10000 // frac.denominator
    return f"{basis_points // 100}.{basis_points % 100:02d}%"


def progress_bars(tally: dict) -> list[Bar]:
    from residents_app.oversight.round_facts import condition_rows

    bars = []
    for c, row in zip(tally["conditions"], condition_rows(tally), strict=True):
        num, den = (int(x) for x in c["bound"].split("/"))
        area = c["measure"] == "area"
        value = _scaled(c["value"]) if area else int(c["value"])
        denominator = _scaled(c["denominator"]) if area else int(c["denominator"])
        fill = Fraction(value, denominator) if denominator > 0 else Fraction(0)
        bars.append(Bar(label=c["label"], value_text=row.actual, required_text=c["required"], fill_pct=_pct(fill),
                        line_pct=_pct(Fraction(num, den)), met=c["met"], margin_text=row.margin))
    return bars


def _scaled(value) -> int:
    from decimal import Decimal

    from residents_app.core.thresholds import to_hundredths

    return to_hundredths(Decimal(str(value)))


def turnout_points(round_id: int) -> list[tuple[datetime, int]]:
    """Cumulative households with a ballot (first counted cast of each unit), in time order."""
    return turnout_points_of([round_id])[round_id]


def turnout_points_of(round_ids: list[int]) -> dict[int, list[tuple[datetime, int]]]:
    """turnout_points of several rounds, in one query."""
    from residents_app.rounds.models import Ballot

    firsts: dict[int, list] = {r: [] for r in round_ids}
    if round_ids:
        for round_id, first in db.session.execute(
                sa.select(Ballot.round_id, sa.func.min(Ballot.cast_at))
                .where(Ballot.round_id.in_(round_ids), Ballot.status.in_(COUNTED_STATUSES))
                .group_by(Ballot.round_id, Ballot.unit_id)):
            firsts[round_id].append(first)
    # MIN over a TypeDecorator column comes back raw on SQLite: normalise through the column type.
    out = {}
    for round_id, values in firsts.items():
        times = sorted(_as_utc(t) for t in values)
        out[round_id] = [(t, i) for i, t in enumerate(times, start=1)]
    return out


def _as_utc(value) -> datetime:
    from datetime import UTC

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass
class RoundCard:
    round: object
    bars: list[Bar]
    chart_svg: str
    voted_count: int
    total_count: int
    can_still_pass: bool
    passed: bool
    results_hidden: bool = False  # turnout only until the close: no bars, no pass / fail
    summary: str = ""  # a survey's or a choice's line, shown instead of passed / can still pass


def estate_with_rounds(estate_id: int) -> tuple[object | None, dict[int, str], list, list, list]:
    """The estate (None if there is no such estate), its building names {id: name}, every round of it (oldest
    first), its publicities not completed (deadlines' `pubs`) and its rounds' sign-offs (rounds_awaiting_verification's
    `signoffs`), in one query: the dashboard's cards (open), deadlines (draft, open), closed rounds and the
    timeline's rounds all come from this list. While the caller holds the estate it is in the session's identity
    map, so scoping.estate_or_404 (which checks who may see it) runs no statement of its own."""
    rows = db.session.execute(_estate_query(db.session.get_bind().dialect.name), {"p_estate_id": estate_id}).all()
    if not rows:
        return None, {}, [], [], []
    estate, names, _, pubs, signoffs = rows[0]
    return (estate, building_names(names), [r[2] for r in rows if r[2] is not None],
            [(e, title, _date(day)) for e, title, day, _ in sorted(json_value(pubs) or [], key=lambda r: r[3])],
            [(chain, subject_id, data, _as_utc(at))
             for chain, subject_id, data, at, _ in sorted(json_value(signoffs) or [], key=lambda r: r[4])])


def _date(value: str) -> date:
    return date.fromisoformat(value[:10])


@functools.cache
def _estate_query(dialect: str):
    """Built once (building it costs more than running it): a row per round (one with no round if it has none),
    each with the estate's building names, publicities not completed and sign-offs (JSON arrays; their last element,
    the id / seq, orders them)."""
    from residents_app.audit.models import AuditEvent
    from residents_app.publicity.models import Publicity
    from residents_app.registry.models import Estate
    from residents_app.rounds.models import Round

    pubs = _open_publicities(Publicity.estate_id == Estate.id).add_columns(Publicity.id)
    signoffs = _signoffs(AuditEvent.chain == Estate.id).add_columns(AuditEvent.seq)
    return (sa.select(Estate, building_names_of(Estate.id, dialect), Round,
                      _json_rows(pubs, dialect), _json_rows(signoffs, dialect))
            .outerjoin(Round, Round.estate_id == Estate.id)
            .where(Estate.id == sa.bindparam("p_estate_id")).order_by(Round.id))


def _open_publicities(of_estates) -> sa.Select:
    """The publicities not completed of the estates `of_estates` selects: (estate id, title, last day) rows."""
    from residents_app.publicity.models import Publicity

    return (sa.select(Publicity.estate_id, Publicity.title, Publicity.last_day)
            .where(of_estates, Publicity.status != "completed"))


def _signoffs(of_chains) -> sa.Select:
    """The street office's sign-offs of rounds in the chains `of_chains` selects: (chain, round id, data, at)."""
    from residents_app.audit.models import AuditEvent
    from residents_app.oversight.services import SIGNOFF_KIND

    return (sa.select(AuditEvent.chain, AuditEvent.subject_id, AuditEvent.data, AuditEvent.at)
            .where(of_chains, AuditEvent.kind == SIGNOFF_KIND, AuditEvent.subject_type == "round"))


def _json_rows(select: sa.Select, dialect: str) -> sa.ScalarSelect:
    """The rows of `select` as one JSON array of arrays (NULL for none; in no given order: its last column sorts)."""
    cols = list(select.selected_columns)
    if dialect == "postgresql":
        agg = sa.func.json_agg(sa.func.json_build_array(*cols))
    else:
        cols = [sa.func.json(c) if c.name == "data" else c for c in cols]  # the JSON text as JSON, not a string
        agg = sa.func.json_group_array(sa.func.json_array(*cols))
    return select.with_only_columns(agg).scalar_subquery()


def chart_window(rnd, now: datetime) -> tuple[datetime, datetime]:
    """The turnout chart's time axis: from the opening to now (open) or to the close."""
    end = min(now, rnd.closes_at) if rnd.status != "closed" else (rnd.closed_at or rnd.closes_at)
    start = rnd.opened_at or rnd.opens_at
    if end <= start:
        end = rnd.closes_at
    return start, end


def _epoch(expr, dialect: str):
    """Whole seconds since 1970 of a UTC datetime column, in SQL (both databases)."""
    if dialect == "postgresql":
        return sa.cast(sa.func.floor(sa.extract("epoch", expr)), sa.BigInteger)
    return sa.cast(sa.func.strftime("%s", expr), sa.BigInteger)


def turnout_columns_of(rounds: list, now: datetime, *, columns: int | None = None, counts: dict | None = None
                       ) -> dict[int, list[tuple[datetime, int]]]:
    """The turnout curves of these rounds drawn to the chart's resolution, in one query: the first counted cast of
    each unit as whole seconds, binned by the database into the chart's pixel columns (a round's casts before its
    chart starts in column -1, after it ends in the last column), one row per column that has any: the column's
    first cast and how many households it adds. The curve is the per-household one of turnout_points_of at the
    width it is drawn at (a point per column: its first cast, the cumulative count at its end); the last point's
    count is exact. No row per household leaves the database.

    `counts` (a dict): the same statement also reads the rounds' stored counters into it ({round: Counts}, as
    rounds.counters.stored_counts_of gives them): the cards' tallies and curves in one round trip."""
    out: dict[int, list] = {r.id: [] for r in rounds}
    if not rounds:
        return out
    params: dict = {"ids": list(out), "columns": columns or charts.plot_columns()}
    for i, rnd in enumerate(rounds):
        start, end = chart_window(rnd, now)
        params.update({f"r{i}": rnd.id, f"t{i}": int(start.timestamp()),
                       f"s{i}": max(int((end - start).total_seconds()), 1)})
    statement = _turnout_query(db.session.get_bind().dialect.name, len(rounds), counts is not None)
    count_of = dict.fromkeys(out, 0)
    for k, round_id, col, choice, at, n in core_rows(db.session, statement, params):
        if k == 0:
            add_stored(counts, round_id, col, choice, at, n)
            continue
        count_of[round_id] += n
        out[round_id].append((datetime.fromtimestamp(at, UTC), count_of[round_id]))
    return out


@functools.cache
def _turnout_query(dialect: str, n_rounds: int, with_counts: bool = False):
    """turnout_columns_of's statement for n rounds, built once (building it cost more than running it): the rounds'
    ids in :ids, each round's id, chart start and span (seconds) in :r<i>, :t<i>, :s<i>, the width in :columns.
    Rows (k = 1, round, column, NULL, its first cast, households); with_counts: also the counters' rows (k = 0,
    round, building, choice, units, area)."""
    from residents_app.rounds.models import Ballot, RoundCount

    def of_rounds(column):
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import ARRAY

            return column == sa.any_(sa.bindparam("ids", type_=ARRAY(sa.Integer)))
        return column.in_(sa.bindparam("ids", expanding=True))

    firsts = (sa.select(Ballot.round_id.label("round_id"), _epoch(sa.func.min(Ballot.cast_at), dialect).label("first"))
              .where(of_rounds(Ballot.round_id), Ballot.status.in_(COUNTED_STATUSES))
              .group_by(Ballot.round_id, Ballot.unit_id).subquery())

    def per_round(name: str):
        return sa.case(*[(firsts.c.round_id == sa.bindparam(f"r{i}", type_=sa.Integer),
                          sa.bindparam(f"{name}{i}", type_=sa.BigInteger)) for i in range(n_rounds)])

    columns = sa.bindparam("columns", type_=sa.BigInteger)
    offset = firsts.c.first - per_round("t")
    column = sa.case((offset < 0, sa.literal(-1, sa.BigInteger)), (offset >= per_round("s"), columns),
                     else_=offset * columns // per_round("s")).label("col")
    curve = sa.select(sa.literal(1, sa.Integer).label("k"), firsts.c.round_id, column,
                      sa.cast(sa.null(), sa.String).label("choice"), sa.func.min(firsts.c.first),
                      sa.func.count()).group_by(firsts.c.round_id, column)
    if not with_counts:
        return curve.order_by(firsts.c.round_id, column)
    stored = stored_select(of_rounds(RoundCount.round_id), sa.literal(0, sa.Integer))
    union = sa.union_all(stored, curve).subquery()
    return sa.select(union).order_by(union.c[0], union.c[1], union.c[2])


def round_cards(rounds: list, now: datetime, *, names: dict[int, str] | None = None) -> list[RoundCard]:
    """The cards of these rounds in a fixed number of queries: their turnout curves and their stored counters in
    one (turnout_columns_of), their tallies from these (rounds.tally.compute_tallies; `names`: their estates'
    building names when the caller has them)."""
    from residents_app.rounds.tally import compute_tallies

    counts: dict = {}
    points = turnout_columns_of(rounds, now, counts=counts)
    live = compute_tallies([r for r in rounds if r.status != "closed"], now, names=names, stored=counts)
    return [round_card(r, now, live=live.get(r.id), points=points[r.id]) for r in rounds]


def round_card(rnd, now: datetime, *, live=None, points: list | None = None) -> RoundCard:
    tally = round_tally(rnd, now, live)
    figures = tally["figures"]
    start, end = chart_window(rnd, now)
    svg = charts.turnout_svg(turnout_points(rnd.id) if points is None else points, start=start, end=end,
                             total=figures["total_count"])
    if rnd.results_hidden:
        return RoundCard(round=rnd, bars=[], chart_svg=svg, voted_count=figures["voted_count"],
                         total_count=figures["total_count"], can_still_pass=False, passed=False, results_hidden=True)
    if "survey" in tally or "choice" in tally:
        return RoundCard(round=rnd, bars=[], chart_svg=svg, voted_count=figures["voted_count"],
                         total_count=figures["total_count"], can_still_pass=False, passed=False,
                         summary=_summary(rnd, tally))
    return RoundCard(round=rnd, bars=progress_bars(tally), chart_svg=svg, voted_count=figures["voted_count"],
                     total_count=figures["total_count"], can_still_pass=tally["can_still_pass"],
                     passed=tally["passed"])


def _summary(rnd, tally: dict) -> str:
    """A survey's response rate and average; a choice's option that meets its rule (no pass / fail words).
    Results hidden until the close: participation only."""
    if rnd.results_visibility == "hidden" and rnd.status != "closed":
        return f"结果截止后公布（已参与 {tally['figures']['voted_count']} / {tally['figures']['total_count']} 户）"
    if "survey" in tally:
        s = tally["survey"]
        rating = next(q for q in s["questions"] if q["key"] == "rating")
        return f"问卷调查：应答率 {s['response_rate'] or '—'}，平均分 {rating['average'] or '—'}"
    c = tally["choice"]
    counts = "，".join(f"{o['label']} {o['count']}" for o in c["options"])
    if c["decided"]:
        return f"达到表决规则的选项：「{c['decided_label']}」（{counts}）"
    return f"目前没有选项达到表决规则（{counts}）"


_ASK = object()


def funding(estate_id: int, *, plan_id=_ASK) -> dict | None:
    """The plan in force's funding, from the stored summary row (funding/summary.py); computed live only when the
    row is missing, was written for another version, or changes to it are not committed yet. `plan_id`: the id of
    the plan in force (None: no plan) when the caller has read it."""
    from residents_app.funding import services as services_svc
    from residents_app.funding import summary as summary_svc

    if plan_id is _ASK:
        plan_id = summary_svc.plans_in_force([estate_id]).get(estate_id)
    if plan_id is None:
        return None
    row = summary_svc.stored([estate_id]).get(estate_id)
    if row is not None and row.plan_version_id == plan_id and estate_id not in summary_svc.touched():
        owed, counted, owing = row.owed_fen, row.counted_fen, row.owing_units
    else:
        summary = services_svc.funding_summary(estate_id)
        if summary.get("plan_version_id") is None:
            return None
        owed, counted, owing = summary["owed_fen"], summary["counted_fen"], summary["owing_units"]
    ratio = Fraction(counted, owed) if owed else None
    return {"owed_fen": owed, "counted_fen": counted, "ratio_text": services_svc.format_ratio(ratio),
            "complete": counted == owed, "fill_pct": _pct(ratio) if ratio is not None else "0.00%",
            "owing_units": owing}


def deadlines(estate_ids: list[int], now: datetime, *, with_estate_name: bool = False,
              rounds: list | None = None, pubs: list | None = None) -> list[charts.Deadline]:
    """Upcoming dates: rounds opening or closing, publicity periods ending (Beijing dates). `rounds`: the estates'
    rounds, `pubs`: their publicities not completed (estate id, title, last day; in id order), when the caller
    has them (estate_with_rounds; a query less each)."""
    from residents_app.publicity.models import Publicity
    from residents_app.registry.models import Estate
    from residents_app.rounds.models import Round

    if not estate_ids:
        return []
    names = dict(db.session.execute(
        sa.select(Estate.id, Estate.name).where(ids_in(db.session, Estate.id, estate_ids))).all()
    ) if with_estate_name else {}
    today = to_local(now).date()
    out = []

    def prefix(estate_id):
        return f"{names[estate_id]}：" if with_estate_name else ""

    if rounds is not None:
        rounds = sorted((r for r in rounds if r.status in ("draft", "open")), key=lambda r: r.id)
    else:
        # Only the columns the dates are made of (a district has hundreds of rounds; no ORM objects, no JSON).
        rounds = db.session.execute(
            sa.select(Round.estate_id, Round.title, Round.status, Round.opens_at, Round.closes_at)
            .where(ids_in(db.session, Round.estate_id, estate_ids), Round.status.in_(("draft", "open")))
            .order_by(Round.id))
    for r in rounds:
        if r.status == "draft" and to_local(r.opens_at).date() >= today:
            out.append(charts.Deadline(to_local(r.opens_at).date(), f"{prefix(r.estate_id)}「{r.title}」开始投票"
                                       f"（{format_local_dt(r.opens_at)}）"))
        if to_local(r.closes_at).date() >= today:
            out.append(charts.Deadline(to_local(r.closes_at).date(), f"{prefix(r.estate_id)}「{r.title}」投票截止"
                                       f"（{format_local_dt(r.closes_at)}）"))
    if pubs is None:
        pubs = core_rows(db.session, _open_publicities(ids_in(db.session, Publicity.estate_id, estate_ids))
                         .order_by(Publicity.id))
    for estate_id, title, last_day in pubs:
        if last_day >= today:
            out.append(charts.Deadline(last_day, f"{prefix(estate_id)}公示「{title}」截止（{last_day:%m-%d} 24:00）"))
    out.sort(key=lambda d: (d.day, d.label))
    return out


def calendar_months(now: datetime, items: list[charts.Deadline]) -> list[dict]:
    today = to_local(now).date()
    by_day: dict = {}
    for d in items:
        by_day.setdefault(d.day, []).append(d.label)
    months = []
    for year, month in charts.months_to_show(today, items):
        months.append({"title": f"{year} 年 {month} 月", "weeks": charts.month_grid(year, month),
                       "by_day": by_day, "today": today})
    return months


def rounds_in_progress(estate_ids: list[int]) -> list:
    from residents_app.rounds.models import Round

    if not estate_ids:
        return []
    return list(db.session.execute(
        sa.select(Round).where(ids_in(db.session, Round.estate_id, estate_ids), Round.status == "open")
        .order_by(Round.closes_at, Round.id)).scalars())


def rounds_awaiting_verification(estate_ids: list[int], *, waiting_only: bool = False,
                                 limit: int | None = None, names: dict[int, str] | None = None,
                                 rounds: list | None = None, signoffs: list | None = None) -> list[dict]:
    """Closed rounds and their latest sign-off (none yet = waiting for the street office), newest first.

    Three queries whatever the number of rounds: the rounds, the estates' names, the sign-offs in their logs.
    `waiting_only`: only those not signed off (or returned); `limit`: at most that many rows; `names`: the estates'
    names when the caller has them (one query less); `rounds`: the estates' rounds when the caller has them
    (estate_with_rounds: one query less); `signoffs`: their sign-offs (chain, round id, data, at; in seq order) when
    the caller has them (estate_with_rounds: one query less).
    """
    from residents_app.audit.models import AuditEvent
    from residents_app.oversight.services import DECISIONS
    from residents_app.registry.models import Estate
    from residents_app.rounds.models import Round

    if not estate_ids:
        return []
    if rounds is not None:
        rounds = sorted((r for r in rounds if r.status == "closed"), key=lambda r: (r.closed_at or r.closes_at, r.id),
                        reverse=True)
    else:
        # Only the columns shown (a district has hundreds of closed rounds; their JSON columns are not needed here).
        rounds = list(db.session.execute(
            sa.select(Round).options(load_only(Round.id, Round.estate_id, Round.title, Round.status,
                                               Round.closed_at, Round.kind))
            .where(ids_in(db.session, Round.estate_id, estate_ids), Round.status == "closed")
            .order_by(Round.closed_at.desc(), Round.id.desc())).scalars())
    if not rounds:
        return []
    if names is None:
        names = dict(db.session.execute(
            sa.select(Estate.id, Estate.name).where(ids_in(db.session, Estate.id, estate_ids))).all())
    last: dict[tuple[int, str], tuple] = {}
    if signoffs is None:
        signoffs = core_rows(db.session, _signoffs(ids_in(db.session, AuditEvent.chain, estate_ids))
                             .order_by(AuditEvent.chain, AuditEvent.seq))
    for chain, subject_id, data, at in signoffs:
        last[(chain, subject_id)] = (data or {}, at)
    rows = []
    for r in rounds:
        data, at = last.get((r.estate_id, str(r.id)), (None, None))
        decided = data is not None and data.get("decision") != "returned"
        if waiting_only and decided:
            continue
        rows.append({"round": r, "estate_name": names[r.estate_id],
                     "decision": DECISIONS.get(data.get("decision"), "待核验") if data is not None else "待核验",
                     "decided": decided, "at": at})
        if limit is not None and len(rows) >= limit:
            break
    return rows
