"""The city view (issue 19 item 3): every estate a district housing bureau (区住建局, role "bureau") oversees, over
several street offices, on one sortable, filterable, paginated table, with its CSV/XLSX export.

The rows are the district table's (oversight/district.py: district_rows, filter_rows, page_of, table_rows), built
from the stored counters and funding summary rows in a fixed number of queries whatever the number of estates;
this module adds the street office (a column, a filter, a sort) and a line per street office above the table.
Read-only: nothing here writes, and a bureau never sees an estate outside its district (auth/scoping.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from flask import render_template, request

from residents_app.auth.scoping import roles_required, visible_estates_query
from residents_app.db import utcnow
from residents_app.extensions import db
from residents_app.oversight import district as district_svc
from residents_app.oversight.district import EstateRow
from residents_app.oversight.views import bp
from residents_app.registry.models import Estate, StreetOffice
from residents_app.replica import reads_replica

SORT_KEYS = (*district_svc.SORTS, "office")
FILTER_ARGS = ("office", "q", "stage", "overdue", "sort", "dir")
EXPORT_HEADER = ["街道", *district_svc.HEADER]


@dataclass
class CityRow:
    office_id: int
    office: str  # the street office's name
    row: EstateRow


@dataclass
class OfficeLine:
    """One street office above the table: its estates, how many are voting, how many have something overdue."""

    office_id: int
    name: str
    estates: int = 0
    voting: int = 0
    overdue: int = 0


@dataclass
class CityTable:
    rows: list[CityRow]  # every visible estate, by code
    shown: list[CityRow]  # filtered and sorted
    offices: list[OfficeLine]


def city_table(estates: list, now, *, office_id: int | None = None, q: str = "", stage: str = "",
               overdue_only: bool = False, sort: str = "code", descending: bool = False) -> CityTable:
    """The rows of `estates` (anything with id, code, name and street_office_id) filtered and sorted as asked."""
    names = dict(db.session.execute(sa.select(StreetOffice.id, StreetOffice.name).where(
        StreetOffice.id.in_({e.street_office_id for e in estates}))).all()) if estates else {}
    office_of = {e.id: e.street_office_id for e in estates}
    rows = district_svc.district_rows(estates, now)
    wanted = rows if not office_id else [r for r in rows if office_of[r.estate_id] == office_id]
    shown = district_svc.filter_rows(wanted, q=q, stage=stage, overdue_only=overdue_only,
                                     sort=sort if sort in district_svc.SORTS else "code", descending=descending)
    if sort == "office":
        shown = sorted(shown, key=lambda r: (names[office_of[r.estate_id]], r.code), reverse=descending)
    lines = {i: OfficeLine(i, n) for i, n in sorted(names.items(), key=lambda kv: (kv[1], kv[0]))}
    for r in rows:
        line = lines[office_of[r.estate_id]]
        line.estates += 1
        line.voting += 1 if r.open_rounds else 0
        line.overdue += 1 if r.overdue else 0

    def wrap(r: EstateRow) -> CityRow:
        return CityRow(office_of[r.estate_id], names[office_of[r.estate_id]], r)

    return CityTable([wrap(r) for r in rows], [wrap(r) for r in shown], list(lines.values()))


def export_rows(shown: list[CityRow]) -> list[list]:
    """The district export's columns, the street office first."""
    body = district_svc.table_rows([c.row for c in shown])[1:]
    return [EXPORT_HEADER] + [[c.office, *line] for c, line in zip(shown, body, strict=True)]


def _table() -> CityTable:
    args = request.args
    # Plain rows (id, code, name, street office), not Estate objects: at 3,000 estates the ORM's instances were
    # a tenth of the page's time, and the table needs nothing else of them.
    estates = db.session.execute(visible_estates_query().with_only_columns(
        Estate.id, Estate.code, Estate.name, Estate.street_office_id)).all()
    return city_table(estates, utcnow(), office_id=args.get("office", type=int), q=args.get("q", ""),
                      stage=args.get("stage", ""), overdue_only=args.get("overdue") == "1",
                      sort=args.get("sort", "code"), descending=args.get("dir") == "desc")


@bp.route("/city")
@roles_required("bureau", "admin")
@reads_replica  # DATABASE_REPLICA_URL: the whole page reads from the replica
def city():
    table = _table()
    page_rows, page, pages = district_svc.page_of(table.shown, request.args.get("page", 1, type=int) or 1)
    args = {k: v for k, v in request.args.items() if k in FILTER_ARGS}
    return render_template(
        "oversight/city.html", rows=page_rows, shown_count=len(table.shown), estate_count=len(table.rows),
        page=page, pages=pages, args=args, offices=table.offices,
        stages=sorted({c.row.stage for c in table.rows}))


@bp.route("/city/export.csv", defaults={"fmt": "csv"})
@bp.route("/city/export.xlsx", defaults={"fmt": "xlsx"})
@roles_required("bureau", "admin")
@reads_replica
def city_export(fmt: str):
    from residents_app.exports import csv_response, xlsx_response

    table = export_rows(_table().shown)
    name = f"全区总览-{utcnow():%Y%m%d}"
    if fmt == "csv":
        return csv_response(table, f"{name}.csv")
    return xlsx_response(table, f"{name}.xlsx", sheet_title="全区总览",
                         column_widths=[16, 12, 20, 24, 10, 22, 10, 10, 10, 10, 10, 8, 8, 18])
