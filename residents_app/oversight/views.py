"""Pages: the verification desk, the result report PDF, the roll/ballot export, dashboards."""

from __future__ import annotations

import io

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from flask_smorest import Blueprint as ApiBlueprint

from residents_app.audit import services as audit_services
from residents_app.auth.scoping import (
    estate_or_404,
    oversight_readers,
    roles_required,
    staff_required,
    visible_estates_query,
)
from residents_app.db import utcnow
from residents_app.errors import Conflict, DomainError, NotFound
from residents_app.extensions import db
from residents_app.oversight import dashboards, desk, flags, round_facts
from residents_app.oversight import services as services_svc
from residents_app.oversight.api_schemas import ChainVerificationSchema
from residents_app.replica import reads_replica

bp = Blueprint("oversight", __name__)


_ROUND_AND_ESTATE: list[sa.Select] = []


def _round_or_404(round_id: int):
    if not _ROUND_AND_ESTATE:  # built once (building it cost more than running it), the round bound per call
        from residents_app.registry.models import Estate
        from residents_app.rounds.models import Round

        _ROUND_AND_ESTATE.append(sa.select(Round, Estate).join(Estate, Estate.id == Round.estate_id)
                                 .where(Round.id == sa.bindparam("p_round_id", type_=sa.Integer)))
    # The round and its estate in one statement (estate_or_404 then finds the estate in the session).
    row = db.session.execute(_ROUND_AND_ESTATE[0], {"p_round_id": round_id}).first()
    if row is None:
        raise NotFound("找不到该表决")
    estate = estate_or_404(row[0].estate_id)
    return row[0], estate


def _desk_rows(rnd) -> list[dict]:
    """One row per unit of the frozen roll with its counted ballot, its history and evidence."""
    from residents_app.rounds.models import Ballot, CurrentBallot, ProxyMandate

    entries = round_facts.roll_entries(rnd.id)
    ballots: dict[int, list] = {}
    for b in db.session.execute(
            sa.select(Ballot).where(Ballot.round_id == rnd.id).order_by(Ballot.cast_at, Ballot.id)).scalars():
        ballots.setdefault(b.unit_id, []).append(b)
    current = dict(db.session.execute(
        sa.select(CurrentBallot.unit_id, CurrentBallot.ballot_id).where(CurrentBallot.round_id == rnd.id)).all())
    mandates = {m.id: m for m in db.session.execute(
        sa.select(ProxyMandate).where(ProxyMandate.round_id == rnd.id)).scalars()}
    rows = []
    for e in entries:
        history = ballots.get(e.unit_id, [])
        counted = next((b for b in history if b.id == current.get(e.unit_id)), None)
        pending = [b for b in history if b.status in ("pending", "conflict")]
        rows.append({"entry": e, "counted": counted, "history": history, "pending": pending,
                     "mandate": mandates.get(counted.mandate_id) if counted and counted.mandate_id else None,
                     "changes": max(len([b for b in history if b.status in ("counted", "superseded")]) - 1, 0)})
    return rows


# Who records the chain's checkpoint from the desk: the verifying authority (the street office, and admin).
CHECKPOINT_ROLES = ("street", "admin")


@bp.route("/rounds/<int:round_id>/verify")
@staff_required
def verify_desk(round_id: int):
    """The verification desk: the round's figures, flags, sign-offs and roll (a page at a time), and the estate's
    chain checked from its checkpoint (audit_checkpoint: entries up to it were verified earlier).

    The checkpoint: a street-office (or admin) view that found the chain intact past the checkpoint (or walked
    it from genesis, there being none) moves the checkpoint to the head it checked, recorded under the viewer,
    and commits; the next view reads only what comes after it. The street office is the verifying authority: a
    committee member's view verifies from the checkpoint just the same (and shows the same result) but writes
    nothing, so a GET by the estate's own committee never changes what the chain is trusted up to.
    """
    from residents_app.audit.verify import advance_checkpoint, verify_checkpoint_rows
    from residents_app.oversight.report import rule_lines, verdict_text
    from residents_app.rounds.recount import recount_round

    rnd, estate = _round_or_404(round_id)
    now = utcnow()
    # The roll a page at a time (oversight/desk.py); the figures, the flags and the chain are the whole round's.
    page = desk.roll_page(rnd.id, max(request.args.get("page", 1, type=int) or 1, 1))
    if page is None:
        raise NotFound("名册没有这一页")
    signoffs, register_changes, checkpoint_rows = desk.chain_rows(rnd)
    publicity = flags.result_publicity(rnd)
    data = round_facts.round_report_data(rnd, now, roll_households=page.total, desk=True, signoff_events=signoffs,
                                         publicity=publicity)
    rule_name, rule_source = rule_lines(data)
    chain = verify_checkpoint_rows(estate.id, checkpoint_rows)  # audit.verify.verify_since_checkpoint's check
    html = render_template(
        "oversight/verify.html", rnd=rnd, estate=estate, data=data, rule_name=rule_name, rule_source=rule_source,
        verdict=verdict_text(data), flags=flags.round_flags(rnd, publicity, register_changes), page=page,
        roll_rows=desk.roll_table_rows(page.rows, rnd, rnd.results_hidden),
        chain=chain, recount=recount_round(rnd),
        signoffs=signoffs, decisions=services_svc.DECISIONS,
        can_sign=current_user.role in ("street", "admin") and rnd.status == "closed")
    # The entries a street-office view checked past the checkpoint become the checkpoint: the next view reads only
    # what comes after them (issue 19 item 4). Committed after rendering, which still reads the loaded objects.
    if current_user.role in CHECKPOINT_ROLES and advance_checkpoint(
            chain, actor=audit_services.actor_for_user(current_user), now=now):
        db.session.commit()
    return html


@bp.route("/rounds/<int:round_id>/verify", methods=["POST"])
@roles_required("street", "admin")
def verify_sign_off(round_id: int):
    rnd, estate = _round_or_404(round_id)
    try:
        services_svc.sign_off(rnd, decision=request.form.get("decision", ""),
                                comment=request.form.get("comment", ""), user=current_user, now=utcnow())
    except DomainError as exc:
        # sign_off checks everything before it writes, so there is nothing to roll back here.
        flash(exc.message, "error")
        return redirect(url_for("oversight.verify_desk", round_id=round_id))
    db.session.commit()
    decision = request.form["decision"]
    flash(f"已记录核验意见：{services_svc.DECISIONS[decision]}（已写入审计日志）", "success")
    return redirect(url_for("oversight.verify_desk", round_id=round_id))


@bp.route("/rounds/<int:round_id>/report.pdf")
@staff_required
def round_report(round_id: int):
    from residents_app.oversight.report import render_round_report

    rnd, estate = _round_or_404(round_id)
    if rnd.status == "draft":
        raise Conflict("该表决尚未开始，还没有可出具报告的结果", code="round_not_started")
    now = utcnow()
    pdf = render_round_report(round_facts.round_report_data(rnd, now))
    audit_services.log_export("round_report_pdf", estate_id=estate.id, user=current_user, now=now,
                              subject_type="round", subject_id=rnd.id)
    db.session.commit()
    resp = send_file(io.BytesIO(pdf), mimetype="application/pdf", as_attachment=False,
                     download_name=f"表决结果报告-{estate.code}-{rnd.id}.pdf", max_age=0, etag=False,
                     conditional=False)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/rounds/<int:round_id>/verify/export.xlsx")
@staff_required
def round_export(round_id: int):
    from residents_app.oversight.exports import roll_and_ballots_xlsx

    rnd, estate = _round_or_404(round_id)
    now = utcnow()
    from residents_app.rounds.tally import item_tally

    data, count = roll_and_ballots_xlsx(rnd, _desk_rows(rnd), item_tally(rnd.id) if rnd.item_menu else None)
    audit_services.log_export("round_roll_ballots_xlsx", estate_id=estate.id, user=current_user, now=now,
                              subject_type="round", subject_id=rnd.id, rows=count)
    db.session.commit()
    from residents_app.exports import XLSX_MIMETYPE

    resp = send_file(io.BytesIO(data), mimetype=XLSX_MIMETYPE, as_attachment=True,
                     download_name=f"名册与投票-{estate.code}-{rnd.id}.xlsx", max_age=0, etag=False,
                     conditional=False)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/audit/files/<int:file_id>")
@staff_required
def round_file(file_id: int):
    """A paper ballot's scan or a proxy mandate, for the committee and its street office only."""
    from residents_app.rounds.models import RoundFile

    f = db.session.get(RoundFile, file_id)
    if f is None:
        raise NotFound("找不到该文件")
    rnd, estate = _round_or_404(f.round_id)
    resp = send_file(io.BytesIO(f.data), mimetype=f.mime, as_attachment=False,
                     download_name=f"{f.purpose}-{f.id}", max_age=0, etag=False, conditional=False)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@bp.route("/estates/<int:estate_id>/dashboard")
@oversight_readers
def estate_dashboard(estate_id: int):
    from residents_app.works.construction import timeline

    # Read once, shared: the estate with its building names and its rounds (cards, deadlines, closed rounds,
    # timeline; the estate held: estate_or_404 runs no statement), and the timeline's facts (its later stages, the
    # plan in force of the funding card).
    _held, names, rounds, pubs, signoffs = dashboards.estate_with_rounds(estate_id)
    estate = estate_or_404(estate_id)
    now = utcnow()
    facts = timeline.facts(estate.id)
    in_progress = sorted((r for r in rounds if r.status == "open"), key=lambda r: (r.closes_at, r.id))
    cards = dashboards.round_cards(in_progress, now, names=names)
    items = dashboards.deadlines([estate.id], now, rounds=rounds, pubs=pubs)
    return render_template(
        "oversight/dashboard.html", estate=estate, cards=cards,
        funding=dashboards.funding(estate.id, plan_id=facts["plan"]),
        deadlines=items, months=dashboards.calendar_months(now, items),
        stages=timeline.project_timeline(estate.id, now, rounds=rounds, known=facts),
        closed=dashboards.rounds_awaiting_verification([estate.id], names={estate.id: estate.name}, rounds=rounds,
                                                       signoffs=signoffs))


def _district_table():
    """The visible estates' rows, filtered and sorted as the query string asks (the page and its exports)."""
    from residents_app.oversight import district as district_svc

    estates = db.session.execute(visible_estates_query()).scalars().all()
    rows = district_svc.district_rows(estates, utcnow())
    args = request.args
    shown = district_svc.filter_rows(rows, q=args.get("q", ""), stage=args.get("stage", ""),
                                     overdue_only=args.get("overdue") == "1", sort=args.get("sort", "code"),
                                     descending=args.get("dir") == "desc")
    return estates, rows, shown


@bp.route("/district")
@roles_required("street", "admin")
@reads_replica  # DATABASE_REPLICA_URL: the whole page reads from the replica
def district():
    from residents_app.oversight import district as district_svc

    now = utcnow()
    estates, rows, shown = _district_table()
    page_rows, page, pages = district_svc.page_of(shown, request.args.get("page", 1, type=int) or 1)
    ids = [e.id for e in estates]
    items = dashboards.deadlines(ids, now, with_estate_name=True)
    args = {k: v for k, v in request.args.items() if k in ("q", "stage", "overdue", "sort", "dir")}
    return render_template(
        "oversight/district.html", rows=page_rows, shown_count=len(shown), estate_count=len(rows), page=page,
        pages=pages, args=args, stages=sorted({r.stage for r in rows}), sorts=district_svc.SORTS,
        deadlines=items, months=dashboards.calendar_months(now, items),
        closed=dashboards.rounds_awaiting_verification(ids, waiting_only=True, limit=50,
                                                       names={e.id: e.name for e in estates}))


@bp.route("/district/export.csv", defaults={"fmt": "csv"})
@bp.route("/district/export.xlsx", defaults={"fmt": "xlsx"})
@roles_required("street", "admin")
@reads_replica
def district_export(fmt: str):
    from residents_app.exports import csv_response, xlsx_response
    from residents_app.oversight import district as district_svc

    _, _, shown = _district_table()
    table = district_svc.table_rows(shown)
    name = f"街道总览-{utcnow():%Y%m%d}"
    if fmt == "csv":
        return csv_response(table, f"{name}.csv")
    return xlsx_response(table, f"{name}.xlsx", sheet_title="街道总览",
                         column_widths=[12, 20, 24, 10, 22, 10, 10, 10, 10, 10, 8, 8, 18])


# ---- JSON API ---------------------------------------------------------------------------------

api_bp = ApiBlueprint("oversight_api", __name__, url_prefix="/api/audit", description="街道核验：审计日志校验")


@api_bp.route("/estates/<int:estate_id>/chain")
@api_bp.alt_response(200, schema=ChainVerificationSchema, success=True)
@staff_required
def api_chain(estate_id: int):
    """Verify an estate's chain: entry count, head, and the first broken entry if any."""
    from residents_app.audit.verify import verify_chain

    estate = estate_or_404(estate_id)
    rep = verify_chain(estate.id)
    broken = None
    if rep.broken is not None:
        b = rep.broken
        broken = {"seq": b.seq, "id": b.event_id, "kind": b.kind, "problem": b.problem, "message": b.message}
    return {"estate_id": estate.id, "ok": rep.ok, "entry_count": rep.entry_count, "head_seq": rep.head_seq,
            "head_hash": rep.head_hash, "broken": broken}


from residents_app.oversight import city  # noqa: E402,F401  (register the city view's routes on bp)
