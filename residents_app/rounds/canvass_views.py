"""Committee pages of the canvass (rounds/canvass.py): the non-voter list with delivery and contacts, the
reminder button (all or one building), contact records, and the printable door-to-door list; the plain list of
the units without a counted ballot, by building (linked from the round page, open or closed)."""

from __future__ import annotations

from flask import flash, redirect, render_template, request, url_for
from flask_login import current_user

from residents_app.audit.services import actor_for_user
from residents_app.auth.scoping import can_edit_estate, estate_or_404, staff_required
from residents_app.db import utcnow
from residents_app.errors import ValidationFailed
from residents_app.extensions import db
from residents_app.rounds import canvass, common
from residents_app.rounds import tally as tally_svc
from residents_app.rounds.blueprints import bp
from residents_app.rounds.canvass_models import CONTACT_KIND_LABELS


def _round(round_id: int, edit: bool = False):
    rnd = common.get_round(round_id)
    return rnd, estate_or_404(rnd.estate_id, edit=edit)


def _int_arg(value, field: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ValidationFailed("参数有误", errors={field: "应为数字"}) from None


@bp.route("/rounds/<int:round_id>/canvass")
@staff_required
def canvass_page(round_id: int):
    rnd, estate = _round(round_id)
    building_id = _int_arg(request.args.get("building_id"), "building_id")
    rows = canvass.non_voters(rnd.id, building_id=building_id)
    return render_template("rounds/canvass.html", rnd=rnd, estate=estate, rows=rows,
                           buildings=canvass.buildings(rnd.id), building_id=building_id,
                           kinds=CONTACT_KIND_LABELS, can_edit=can_edit_estate(current_user, estate), now=utcnow())


@bp.route("/rounds/<int:round_id>/canvass/remind", methods=["POST"])
@staff_required
def canvass_remind(round_id: int):
    rnd, _ = _round(round_id, edit=True)
    building_id = _int_arg(request.form.get("building_id"), "building_id")
    counts = canvass.queue_reminders(rnd.id, utcnow(), building_id=building_id, actor=actor_for_user(current_user))
    db.session.commit()
    flash(f"已排队提醒 {counts['queued']} 户；今天已提醒过 {counts['already']} 户；"
          f"{counts['no_channel']} 户无可用渠道，请上门走访。", "success")
    return redirect(url_for("rounds.canvass_page", round_id=rnd.id, building_id=building_id))


@bp.route("/rounds/<int:round_id>/canvass/contacts", methods=["POST"])
@staff_required
def canvass_contact(round_id: int):
    rnd, _ = _round(round_id, edit=True)
    unit_id = _int_arg(request.form.get("unit_id"), "unit_id")
    if unit_id is None:
        raise ValidationFailed("请选择住户", errors={"unit_id": "必填"})
    canvass.record_contact(rnd.id, unit_id, request.form.get("kind", ""), request.form.get("note", ""),
                           actor_for_user(current_user), utcnow())
    db.session.commit()
    flash("已记录联系情况", "success")
    return redirect(url_for("rounds.canvass_page", round_id=rnd.id) + f"#unit-{unit_id}")


@bp.route("/rounds/<int:round_id>/canvass/doors")
@staff_required
def canvass_doors(round_id: int):
    rnd, estate = _round(round_id)
    building_id = _int_arg(request.args.get("building_id"), "building_id")
    return render_template("rounds/canvass_doors.html", rnd=rnd, estate=estate,
                           rows=canvass.door_list(rnd.id, building_id=building_id), now=utcnow())


@bp.route("/rounds/<int:round_id>/non-voters")
@staff_required
def non_voters_page(round_id: int):
    rnd, estate = _round(round_id)
    non_voters = {} if rnd.status == "draft" else tally_svc.non_voters_by_building(rnd.id)
    return render_template("rounds/non_voters.html", rnd=rnd, estate=estate, non_voters=non_voters,
                           total=sum(len(v) for v in non_voters.values()))
