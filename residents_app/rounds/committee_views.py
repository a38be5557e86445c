"""Committee and street-office pages: rounds, tally, paper ballots, proxies, frozen roll, QR links.

Every view loads the estate through estate_or_404 (edit=True for changes), so another estate's
rounds answer 404.
"""

from __future__ import annotations

import functools
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from flask import Response, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from residents_app.audit.services import log_export
from residents_app.auth import identity
from residents_app.auth.scoping import estate_or_404, staff_required
from residents_app.core import matters
from residents_app.core.choices import ABSTAIN, DEFAULT_MODES
from residents_app.core.thresholds import COUNTING_MODE_LABELS, PRESETS
from residents_app.db import utcnow
from residents_app.errors import DomainError, NotFound, ValidationFailed
from residents_app.exports import csv_response, safe_cell
from residents_app.extensions import db
from residents_app.formatting import BEIJING, to_local
from residents_app.registry.models import Building, Estate, Unit
from residents_app.registry.services import building_names, building_names_of
from residents_app.rounds import ballots as ballots_svc
from residents_app.rounds import common, outcomes
from residents_app.rounds import links as links_svc
from residents_app.rounds import services as svc
from residents_app.rounds import tally as tally_svc
from residents_app.rounds.blueprints import bp
from residents_app.rounds.models import ROUND_KIND_LABELS, Ballot, ProxyMandate, Round, RoundFile

SCAN_KINDS = ("png", "jpeg", "pdf")
SCAN_MIME = {"png": "image/png", "jpeg": "image/jpeg", "pdf": "application/pdf"}


def _round_for(round_id: int, edit: bool = False):
    rnd = common.get_round(round_id)
    estate = estate_or_404(rnd.estate_id, edit=edit)
    return rnd, estate


def parse_local_dt(value: str, field: str, label: str) -> datetime:
    """A datetime-local input in Beijing time -> aware UTC."""
    try:
        dt = datetime.fromisoformat((value or "").strip())
    except ValueError:
        raise ValidationFailed(f"{label}格式不正确", errors={field: f"{label}应为 年-月-日 时:分"}) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=BEIJING)
    return dt.astimezone(UTC)


def _round_input_from_form(form, estate_id: int | None = None) -> svc.RoundInput:
    """The form as a RoundInput; when a field cannot even be read (a date, a number), every other field is still
    checked so that all the errors are listed at once, each at its field."""
    errors: dict[str, str] = {}
    dates = {}
    for field, label in (("opens_at", "开始时间"), ("closes_at", "截止时间")):
        try:
            dates[field] = parse_local_dt(form.get(field, ""), field, label)
        except ValidationFailed as exc:
            errors.update(exc.errors)
    if errors:
        placeholder = utcnow()
        dates = {"opens_at": dates.get("opens_at", placeholder),
                 "closes_at": dates.get("closes_at", dates.get("opens_at", placeholder) + timedelta(days=1))}
        try:
            data = _round_input_fields(form, dates)
        except ValidationFailed as exc:
            errors.update(exc.errors)
        else:
            try:
                if estate_id is not None:
                    svc._validate_round_input(estate_id, data)
            except ValidationFailed as exc:
                errors.update({k: v for k, v in exc.errors.items() if k not in ("opens_at", "closes_at")})
        raise ValidationFailed("表决设置有误，请按各项提示修改", errors=errors)
    return _round_input_fields(form, dates)


def _round_input_fields(form, dates: dict) -> svc.RoundInput:
    menu = []
    for line in (form.get("item_menu") or "").splitlines():
        line = line.strip()
        if not line:
            continue
        # "屋面防水（基础）" as staff write it; "屋面防水|基础" still read.
        m = re.fullmatch(r"(.+?)\s*[（(]\s*([^（()）]*?)\s*[)）]", line)
        label, _, category = (m.group(1), "", m.group(2)) if m else line.replace("｜", "|").partition("|")
        menu.append({"label": label.strip(), "category": category.strip()})
    try:
        plan_version_id = int(form["plan_version_id"]) if form.get("plan_version_id") else None
        scope = [int(x) for x in form.getlist("scope_building_ids")]
    except ValueError:
        raise ValidationFailed("表决设置有误", errors={"plan_version_id": "请从列表中选择方案版本"}) from None
    raw_item = (form.get("matter_item") or "").strip()
    options = [x.strip() for x in (form.get("options") or "").splitlines() if x.strip()]
    return svc.RoundInput(
        kind=form.get("kind", ""), title=form.get("title", ""), description=form.get("description", ""),
        rule_preset=form.get("rule_preset") or None, counting_mode=form.get("counting_mode", ""),
        matter_item=int(raw_item) if raw_item.isdigit() else None,
        options=options if form.get("kind") == "management_mode" else None,
        scope_building_ids=scope, item_menu=menu, plan_version_id=plan_version_id,
        results_visibility=form.get("results_visibility", "live"),
        opens_at=dates["opens_at"], closes_at=dates["closes_at"],
    )


def _plan_versions(estate) -> list:
    from residents_app.plans.models import PlanVersion

    return list(db.session.execute(db.select(PlanVersion).where(PlanVersion.estate_id == estate.id)
                                   .order_by(PlanVersion.number.desc())).scalars())


def _form_ctx(estate):
    return {"plan_versions": _plan_versions(estate), "estate": estate, "kinds": ROUND_KIND_LABELS,
            "presets": PRESETS, "modes": COUNTING_MODE_LABELS,
            "buildings": estate.buildings, "items": matters.ITEM_TEXT, "numerals": matters.ITEM_NUMERALS,
            "default_modes": "\n".join(label for _, label in DEFAULT_MODES)}


@bp.route("/estates/<int:estate_id>/rounds", methods=["GET", "POST"])
@staff_required
def round_list(estate_id: int):
    estate = estate_or_404(estate_id, edit=request.method == "POST")
    if request.method == "POST":
        try:
            data = _round_input_from_form(request.form, estate.id)
            rnd = svc.create_round(estate.id, data, utcnow(), current_user)
        except ValidationFailed as exc:
            db.session.rollback()
            return render_template("rounds/form.html", **_form_ctx(estate), rnd=None, form=request.form,
                                   errors=exc.errors, message=exc.message), 422
        db.session.commit()
        flash("已创建表决（草稿）", "success")
        return redirect(url_for("rounds.round_detail", round_id=rnd.id))
    return render_template("rounds/list.html", estate=estate, rounds=svc.rounds_of_estate(estate.id),
                           can_edit=_can_edit(estate), presets=PRESETS)


@bp.route("/estates/<int:estate_id>/rounds/new")
@staff_required
def round_new(estate_id: int):
    estate = estate_or_404(estate_id, edit=True)
    return render_template("rounds/form.html", **_form_ctx(estate), rnd=None, form={}, errors={})


@bp.route("/rounds/<int:round_id>/edit", methods=["GET", "POST"])
@staff_required
def round_edit(round_id: int):
    rnd, estate = _round_for(round_id, edit=True)
    if request.method == "POST":
        try:
            svc.update_round(rnd.id, _round_input_from_form(request.form, estate.id), utcnow(), current_user)
        except ValidationFailed as exc:
            db.session.rollback()
            return render_template("rounds/form.html", **_form_ctx(estate), rnd=rnd, form=request.form,
                                   errors=exc.errors, message=exc.message), 422
        db.session.commit()
        flash("已保存", "success")
        return redirect(url_for("rounds.round_detail", round_id=rnd.id))
    rnd.ensure_editable()
    form = {"kind": rnd.kind, "title": rnd.title, "description": rnd.description, "rule_preset": rnd.rule_preset,
            "counting_mode": rnd.counting_mode, "results_visibility": rnd.results_visibility,
            "plan_version_id": rnd.plan_version_id or "", "matter_item": rnd.matter_item or "",
            "options": "\n".join(o["label"] for o in rnd.options if o["key"] != ABSTAIN) if rnd.is_choice else "",
            "opens_at": to_local(rnd.opens_at).strftime("%Y-%m-%dT%H:%M"),
            "closes_at": to_local(rnd.closes_at).strftime("%Y-%m-%dT%H:%M"),
            "item_menu": "\n".join(f"{i['label']}|{i['category']}" for i in rnd.item_menu)}
    return render_template("rounds/form.html", **_form_ctx(estate), rnd=rnd, form=form, errors={},
                           scope=set(rnd.scope_building_ids))


def _can_edit(estate) -> bool:
    from residents_app.auth.scoping import can_edit_estate

    return can_edit_estate(current_user, estate)


def rule_matter_line(rnd) -> str:
    """The matter a round decides and its rule, as the pages state it."""
    if rnd.is_survey:
        return "问卷调查（满意度评价），不是表决事项，不适用表决规则"
    if rnd.item is None:
        return ""
    return f"表决事项：{matters.item_line(rnd.item)}"


def bar(value: int, denominator: int) -> str:
    """CSS width in percent, computed with integers (display only)."""
    if denominator <= 0:
        return "0"
    hundredths = min(value * 10000 // denominator, 10000)
    return f"{hundredths // 100}.{hundredths % 100:02d}"


@bp.route("/rounds/<int:round_id>")
@staff_required
def round_detail(round_id: int):
    rnd, estate, names = _round_with_buildings(round_id)
    return render_template("rounds/detail.html", **_detail_ctx(rnd, estate, utcnow(), names), paper_form={},
                           paper_errors={})


@functools.cache
def _round_query(dialect: str):
    """Built once (building it cost more than running it)."""
    return (db.select(Round, Estate, building_names_of(Estate.id, dialect)).join(Estate, Estate.id == Round.estate_id)
            .where(Round.id == db.bindparam("p_round_id")))


def _round_with_buildings(round_id: int):
    """The round, its estate and the estate's building names in one query (the estate then comes from the session's
    identity map: estate_or_404 runs no statement of its own)."""
    row = db.session.execute(_round_query(db.session.get_bind().dialect.name), {"p_round_id": round_id}).first()
    if row is None:
        raise NotFound("找不到该表决")
    rnd = row[0]
    return rnd, estate_or_404(rnd.estate_id), building_names(row[2])


def _detail_ctx(rnd, estate, now, names: dict[int, str] | None = None) -> dict:
    """What the first view shows, one query per section shown: the tally from the counters, the stored outcome (a
    closed round), the 20 latest ballots with their units' roll labels; for the committee on an open round the
    pending ballots, the mandates and the roll the paper and proxy forms need. The non-voters' list is its own page
    (rounds/canvass_views.py non_voters_page): here their number per building, from the tally."""
    if names is None:
        names = dict(db.session.execute(db.select(Building.id, Building.name)
                                        .where(Building.estate_id == estate.id)).all())
    show_results = rnd.results_visibility == "live" or rnd.status == "closed"
    with_latest = show_results and rnd.status != "draft"
    stored, recent = None, []
    if with_latest and rnd.counting_mode == "household":  # the counters and the latest ballots in one statement
        stored, recent = ballots_svc.counts_and_latest(rnd.id, limit=20)
    elif with_latest:
        recent = ballots_svc.latest_ballots(rnd.id, limit=20)
    tally = tally_svc.tally_of_round(rnd, names, stored)
    outcome = svc.round_outcome(rnd.id) if rnd.status == "closed" else None
    can_edit = _can_edit(estate)
    entry = rnd.status == "open" and can_edit  # the paper and proxy forms, the ballots waiting for a second member
    # The whole roll (with its owners) only feeds the paper and proxy forms.
    roll = tally_svc.roll_rows(rnd.id) if entry else []
    pending = ballots_svc.pending_paper_ballots(rnd.id) if entry else []
    mandates = list(db.session.execute(db.select(ProxyMandate).where(ProxyMandate.round_id == rnd.id)
                                       .order_by(ProxyMandate.id)).scalars()) if entry else []
    # {unit id: a row with its roll .label}: the pending ballots' and mandates' units are on the roll (entry forms).
    units: dict = {**{b.unit_id: b for b in recent}, **{r.unit_id: r for r in roll}}
    # A choice shows its options and the decided one, a survey its figures (stored once closed).
    view = outcome["tally"] if outcome and (rnd.is_choice or rnd.is_survey) else outcomes.live_tally(rnd, tally)
    t = tally.to_dict()
    return dict(
        rnd=rnd, estate=estate, tally=tally, t=t, outcome=outcome,
        choice=view.get("choice"), survey=view.get("survey"), matter=rule_matter_line(rnd),
        show_results=show_results, bar=bar, pending=pending,
        not_voted=tally.figures.total_count - tally.figures.voted_count,
        units=units, mandates=mandates, mandate_by_id={m.id: m for m in mandates},
        preset=PRESETS[rnd.rule_preset], modes=COUNTING_MODE_LABELS, can_edit=can_edit, now=now,
        roll=roll, recent=recent,
        item_tally=tally_svc.item_tally(rnd.id) if rnd.item_menu and rnd.status != "draft" and show_results
        else None)


@bp.route("/rounds/<int:round_id>/open", methods=["POST"])
@staff_required
def round_open(round_id: int):
    rnd, _ = _round_for(round_id, edit=True)
    now = utcnow()
    if now < rnd.opens_at:
        raise ValidationFailed("还没到开始时间；如需提前开始，请先把开始时间改为现在",
                               code="round_not_due", errors={"opens_at": "开始时间未到"})
    if not svc.open_round(rnd.id, now, current_user):
        flash("该表决已经开启过", "error")
    else:
        flash("表决已开启，名册已冻结", "success")
    db.session.commit()
    return redirect(url_for("rounds.round_detail", round_id=rnd.id))


@bp.route("/rounds/<int:round_id>/close", methods=["POST"])
@staff_required
def round_close(round_id: int):
    rnd, _ = _round_for(round_id, edit=True)
    now = utcnow()
    if rnd.status == "open" and now < rnd.closes_at:
        raise ValidationFailed("截止时间未到，不能提前结束表决", code="round_not_due",
                               errors={"closes_at": "截止时间未到"})
    svc.close_round(rnd.id, now, current_user)
    db.session.commit()
    return redirect(url_for("rounds.round_detail", round_id=rnd.id))


@bp.route("/rounds/<int:round_id>/extend", methods=["POST"])
@staff_required
def round_extend(round_id: int):
    rnd, _ = _round_for(round_id, edit=True)
    new = parse_local_dt(request.form.get("closes_at", ""), "closes_at", "新的截止时间")
    svc.extend_round(rnd.id, new, request.form.get("reason", ""), utcnow(), current_user)
    db.session.commit()
    flash("截止时间已延长", "success")
    return redirect(url_for("rounds.round_detail", round_id=rnd.id))


def _upload(field: str, label: str) -> tuple[bytes, str]:
    from residents_app.uploads import check_upload, sniff

    data = check_upload(request.files.get(field), SCAN_KINDS, ballots_svc.SCAN_MAX_BYTES, field=field, label=label)
    return data, SCAN_MIME[sniff(data)]


def _unit_id(rnd) -> int:
    raw = request.form.get("unit_id", "")
    label = request.form.get("unit_label", "").strip()
    if not raw and label:
        # The searchable field sends the label ("1幢-101"); the roll says which unit that is.
        raw = next((str(e.unit_id) for e in tally_svc.roll_entries(rnd.id) if e.label == label), "")
        if not raw:
            raise ValidationFailed("请选择名册中的房屋",
                                   errors={"unit_id": f"“{label}”不在本表决名册中，请从列表中选择"})
    if not raw.isdigit() or ballots_svc._roll_entry(rnd.id, int(raw)) is None:
        raise ValidationFailed("请选择名册中的房屋", errors={"unit_id": "房屋不在本表决名册中"})
    return int(raw)


def _paper_input(rnd) -> tuple[int, str, tuple[bytes, str]]:
    """Every field of the paper form checked at once: each error goes next to its field."""
    errors, unit_id, upload = {}, None, None
    try:
        unit_id = _unit_id(rnd)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    choice = request.form.get("choice", "")
    if choice not in {o["key"] for o in rnd.options or []}:
        errors["choice"] = "请选择纸质票上勾选的意见"
    try:
        upload = _upload("scan", "纸质票扫描件")
    except ValidationFailed as exc:
        errors["scan"] = next(iter(exc.errors.values()), exc.message) if exc.errors else exc.message
    if errors:
        raise ValidationFailed("纸质票未录入：请按提示修改后重新提交（扫描件需重新选择）", errors=errors)
    return unit_id, choice, upload


@bp.route("/rounds/<int:round_id>/paper", methods=["POST"])
@staff_required
def paper_enter(round_id: int):
    rnd, estate = _round_for(round_id, edit=True)
    now = utcnow()
    try:
        unit_id, choice, (data, mime) = _paper_input(rnd)
        scan = ballots_svc.store_file(rnd.id, "paper_scan", data, mime, now, current_user)
        ballots_svc.enter_paper_ballot(rnd.id, unit_id, choice, scan, now, current_user,
                                       items=request.form.getlist("items"))
    except DomainError as exc:
        # The same page, the input kept, each error at its field (a file input cannot be refilled).
        db.session.rollback()
        errors = dict(exc.errors or {})
        if not errors:
            errors["form"] = exc.message
        form = {"unit_label": request.form.get("unit_label", ""), "choice": request.form.get("choice", ""),
                "items": request.form.getlist("items")}
        if not form["unit_label"] and request.form.get("unit_id", "").isdigit():
            unit = db.session.get(Unit, int(request.form["unit_id"]))
            form["unit_label"] = unit.label if unit is not None and unit.estate_id == estate.id else ""
        return render_template("rounds/detail.html", **_detail_ctx(rnd, estate, now), paper_form=form,
                               paper_errors=errors, paper_message=exc.message), exc.status
    db.session.commit()
    flash("纸质票已录入，需另一位业委会成员核对确认后才计入", "success")
    return redirect(url_for("rounds.round_detail", round_id=rnd.id))


def _ballot_of(rnd, ballot_id: int) -> Ballot:
    """A ballot of this round (another round's ballot is 404, as if it did not exist)."""
    ballot = db.session.get(Ballot, ballot_id)
    if ballot is None or ballot.round_id != rnd.id:
        abort(404)
    return ballot


@bp.route("/rounds/<int:round_id>/paper/<int:ballot_id>/confirm", methods=["POST"])
@staff_required
def paper_confirm(round_id: int, ballot_id: int):
    rnd, _ = _round_for(round_id, edit=True)
    ballot = _ballot_of(rnd, ballot_id)
    b = ballots_svc.confirm_paper_ballot(ballot.id, utcnow(), current_user)
    db.session.commit()
    flash("该户已有线上投票，纸质票与之冲突，请处理" if b.status == "conflict" else "纸质票已确认并计入",
          "error" if b.status == "conflict" else "success")
    return redirect(url_for("rounds.round_detail", round_id=rnd.id))


@bp.route("/rounds/<int:round_id>/conflicts/<int:ballot_id>", methods=["POST"])
@staff_required
def conflict_resolve(round_id: int, ballot_id: int):
    rnd, _ = _round_for(round_id, edit=True)
    ballot = _ballot_of(rnd, ballot_id)
    ballots_svc.resolve_conflict(ballot.id, request.form.get("keep", ""), request.form.get("reason", ""), utcnow(),
                         current_user)
    db.session.commit()
    flash("冲突已处理", "success")
    return redirect(url_for("rounds.round_detail", round_id=rnd.id))


@bp.route("/rounds/<int:round_id>/mandates", methods=["POST"])
@staff_required
def mandate_create(round_id: int):
    rnd, _ = _round_for(round_id, edit=True)
    now = utcnow()
    raw_unit, _, raw_owner = request.form.get("unit_owner", "").partition(":")
    if not raw_unit.isdigit() or not raw_owner.isdigit() or ballots_svc._roll_entry(rnd.id, int(raw_unit)) is None:
        raise ValidationFailed("请选择房号和委托人", errors={"unit_owner": "请选择名册中的房屋及其业主"})
    unit_id = int(raw_unit)
    data, mime = _upload("evidence", "委托书")
    evidence = ballots_svc.store_file(rnd.id, "mandate", data, mime, now, current_user)
    ballots_svc.record_mandate(rnd.id, unit_id, int(raw_owner), request.form.get("proxy_name", ""),
                       request.form.get("proxy_phone", ""), evidence, now, current_user)
    db.session.commit()
    flash("委托书已登记", "success")
    return redirect(url_for("rounds.round_detail", round_id=rnd.id))


@bp.route("/rounds/<int:round_id>/mandates/<int:mandate_id>/cast", methods=["POST"])
@staff_required
def mandate_cast(round_id: int, mandate_id: int):
    rnd, _ = _round_for(round_id, edit=True)
    m = db.session.get(ProxyMandate, mandate_id)
    if m is None or m.round_id != rnd.id:
        abort(404)
    ballots_svc.cast_proxy_ballot(m.id, request.form.get("choice", ""), utcnow(), current_user,
                          items=request.form.getlist("items"))
    db.session.commit()
    flash("代理投票已录入，需另一位业委会成员核对委托书确认后才计入", "success")
    return redirect(url_for("rounds.round_detail", round_id=rnd.id))


@bp.route("/rounds/<int:round_id>/proxy/<int:ballot_id>/confirm", methods=["POST"])
@staff_required
def proxy_confirm(round_id: int, ballot_id: int):
    rnd, _ = _round_for(round_id, edit=True)
    ballot = _ballot_of(rnd, ballot_id)
    b = ballots_svc.confirm_proxy_ballot(ballot.id, utcnow(), current_user)
    db.session.commit()
    flash("该户业主本人已投票，委托代理票与之冲突，请处理" if b.status == "conflict" else "委托代理票已确认并计入",
          "error" if b.status == "conflict" else "success")
    return redirect(url_for("rounds.round_detail", round_id=rnd.id))


@bp.route("/rounds/<int:round_id>/files/<int:file_id>")
@staff_required
def round_file(round_id: int, file_id: int):
    rnd, _ = _round_for(round_id)
    f = db.session.get(RoundFile, file_id)
    if f is None or f.round_id != rnd.id:
        abort(404)
    return Response(f.data, mimetype=f.mime, headers={"Content-Disposition": "inline",
                                                       "Content-Security-Policy": "default-src 'none'; sandbox"})


# ---- frozen roll -----------------------------------------------------------------------------

ROLL_HEADER = ["楼栋", "房号", "产权面积(m²)", "业主"]


def _roll_rows(rnd):
    return [[e.building_name, e.unit_number, f"{e.area_m2:.2f}", "、".join(e.owner_names)]
            for e in tally_svc.roll_entries(rnd.id)]


@bp.route("/rounds/<int:round_id>/roll")
@staff_required
def roll_page(round_id: int):
    from residents_app.publicity.services import publicity_status

    rnd, estate = _round_for(round_id)
    # DOMAIN: the frozen roll is published for objections (a publicity of subject "round_roll").
    roll_pub = publicity_status("round_roll", rnd.id) if rnd.status != "draft" else None
    return render_template("rounds/roll.html", rnd=rnd, estate=estate, entries=tally_svc.roll_entries(rnd.id),
                           roll_pub=roll_pub, can_publish=roll_pub is not None and _can_edit(estate))


def _log_download(what: str, estate_id: int, subject_type: str, subject_id: int, rows: int) -> None:
    """Names of owners leave the system: who, what, when and how many rows go to the estate's audit chain."""
    log_export(what, estate_id=estate_id, user=current_user, now=utcnow(), subject_type=subject_type,
               subject_id=subject_id, rows=rows)
    db.session.commit()


@bp.route("/rounds/<int:round_id>/roll.csv")
@staff_required
def roll_csv(round_id: int):
    rnd, estate = _round_for(round_id)
    rows = _roll_rows(rnd)
    _log_download("round_roll_csv", estate.id, "round", rnd.id, len(rows))
    return csv_response([ROLL_HEADER, *rows], f"roll-{rnd.id}.csv")


@bp.route("/rounds/<int:round_id>/roll.xlsx")
@staff_required
def roll_xlsx(round_id: int):
    from openpyxl import Workbook

    rnd, estate = _round_for(round_id)
    wb = Workbook()
    ws = wb.active
    ws.title = "表决名册"
    ws.append(ROLL_HEADER)
    rows = _roll_rows(rnd)
    for b, n, area, owners in rows:
        ws.append([safe_cell(b), safe_cell(n), Decimal(area), safe_cell(owners)])
    out = io.BytesIO()
    wb.save(out)
    _log_download("round_roll_xlsx", estate.id, "round", rnd.id, len(rows))
    return Response(out.getvalue(), mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                    headers={"Content-Disposition": f"attachment; filename=roll-{rnd.id}.xlsx",
                             "Cache-Control": "no-store"})


# ---- QR links --------------------------------------------------------------------------------

def public_base_url() -> str:
    base = current_app.config.get("PUBLIC_BASE_URL") or request.host_url
    return base.rstrip("/")


def qr_data_uri(url: str) -> str:
    from residents_app import qr

    return qr.svg_data_uri(url, scale=4, border=2)


@bp.route("/estates/<int:estate_id>/links")
@staff_required
def links_page(estate_id: int):
    estate = estate_or_404(estate_id)
    active = links_svc.link_status(estate.id)
    locks = identity.lock_status(estate.id, utcnow())
    return render_template("rounds/links.html", estate=estate, active=active, locks=locks,
                           can_edit=_can_edit(estate))


def _issue_from_form(estate):
    raw = request.form.get("building_id", "")
    building_id = None
    if raw:
        b = db.session.get(Building, int(raw)) if raw.isdigit() else None
        if b is None or b.estate_id != estate.id:
            raise ValidationFailed("请选择本小区的楼栋", errors={"building_id": "楼栋不存在"})
        building_id = b.id
    return links_svc.issue_links(estate.id, utcnow(), current_user, building_id=building_id,
                           reissue=request.form.get("reissue") == "1")


@bp.route("/estates/<int:estate_id>/links/sheet", methods=["POST"])
@staff_required
def links_sheet(estate_id: int):
    estate = estate_or_404(estate_id, edit=True)
    issued = _issue_from_form(estate)
    db.session.commit()
    base = public_base_url()
    by_building: dict[str, list] = {}
    for unit, token in issued:
        url = f"{base}/v/{token}"
        by_building.setdefault(unit.building.name, []).append({"label": unit.label, "number": unit.number,
                                                               "url": url, "qr": qr_data_uri(url)})
    return render_template("rounds/sheet.html", estate=estate, by_building=by_building)


@bp.route("/estates/<int:estate_id>/links.csv", methods=["POST"])
@staff_required
def links_csv(estate_id: int):
    estate = estate_or_404(estate_id, edit=True)
    issued = _issue_from_form(estate)
    base = public_base_url()
    rows = [["楼栋", "房号", "投票链接"]]
    rows += [[unit.building.name, unit.number, f"{base}/v/{token}"] for unit, token in issued]
    # The links open each unit's ballot: the file is logged like the register (and the issue is logged too).
    _log_download("unit_links_csv", estate.id, "estate", estate.id, len(issued))
    return csv_response(rows, f"links-{estate.code}.csv")


@bp.route("/units/<int:unit_id>/link/revoke", methods=["POST"])
@staff_required
def link_revoke(unit_id: int):
    unit = db.session.get(Unit, unit_id)
    if unit is None:
        abort(404)
    estate = estate_or_404(unit.estate_id, edit=True)
    links_svc.revoke_link(unit.id, utcnow(), current_user)
    db.session.commit()
    flash(f"{unit.label} 的二维码已收回", "success")
    return redirect(url_for("rounds.links_page", estate_id=estate.id))
