"""The evaluation's pages (/estates/<id>/evaluation, /evaluation/<id>...) and the street office's template."""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user

from residents_app.auth.scoping import estate_or_404, roles_required, staff_required
from residents_app.core import evaluation as ev
from residents_app.core.calendar import beijing_date
from residents_app.db import utcnow
from residents_app.errors import Forbidden
from residents_app.extensions import db
from residents_app.works.acceptance import documents
from residents_app.works.acceptance import evaluation as svc
from residents_app.works.acceptance.views import api_bp, bp
from residents_app.works.api_schemas import EvaluationDetailOutSchema


@bp.route("/estates/<int:estate_id>/evaluation", methods=["GET", "POST"])
@staff_required
def evaluation_list(estate_id: int):
    estate = estate_or_404(estate_id)
    if request.method == "POST":
        f = request.form
        e = svc.create_evaluation(estate, title=f.get("title", ""),
                                  weights={g: f.get(f"weight_{g}", "") for g in ev.GROUPS},
                                  satisfaction_round_id=f.get("satisfaction_round_id") or None,
                                  user=current_user, now=utcnow())
        db.session.commit()
        flash("已创建评价", "success")
        return redirect(url_for("acceptance.evaluation_detail", evaluation_id=e.id))
    return render_template("works/acceptance/evaluations.html", estate=estate, items=svc.evaluations_of(estate.id),
                           rounds=svc.satisfaction_rounds(estate.id), groups=ev.GROUPS, labels=ev.GROUP_LABELS,
                           weights=ev.DEFAULT_GROUP_WEIGHTS)


def _evaluation_or_404(evaluation_id: int, *, edit: bool = False):
    e = svc.get_evaluation(evaluation_id)
    return e, estate_or_404(e.estate_id, edit=edit)


@bp.route("/evaluation/<int:evaluation_id>")
@staff_required
def evaluation_detail(evaluation_id: int):
    e, estate = _evaluation_or_404(evaluation_id)
    result = svc.result_of(e)
    return render_template("works/acceptance/evaluation.html", estate=estate, e=e, result=result,
                           template=svc.template_of(e), survey=svc.survey_of(e), publicity=svc.publicity_of(e),
                           groups=ev.GROUPS, labels=ev.GROUP_LABELS, two_places=ev.two_places)


@bp.route("/evaluation/<int:evaluation_id>/sheets", methods=["POST"])
@staff_required
def evaluation_sheet(evaluation_id: int):
    e, _ = _evaluation_or_404(evaluation_id)
    keys = [i.key for i in svc.template_of(e).items]
    sheet = svc.save_sheet(e, evaluator_name=request.form.get("evaluator_name", ""),
                           group=request.form.get("evaluator_group", ""),
                           scores={k: request.form.get(f"s_{k}", "") for k in keys}, user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已保存 {sheet.evaluator_name} 的评分（{len(sheet.scores)} 项）", "success")
    return redirect(url_for("acceptance.evaluation_detail", evaluation_id=e.id))


@bp.route("/evaluation/<int:evaluation_id>/publish", methods=["POST"])
@staff_required
def evaluation_publish(evaluation_id: int):
    e, estate = _evaluation_or_404(evaluation_id)
    now = utcnow()
    svc.publish_evaluation(e, estate, posted_on=beijing_date(now), user=current_user, now=now)
    db.session.commit()
    flash("评价结果已在公示栏公布", "success")
    return redirect(url_for("acceptance.evaluation_detail", evaluation_id=e.id))


@bp.route("/evaluation/<int:evaluation_id>/result.pdf")
@staff_required
def evaluation_pdf(evaluation_id: int):
    e, estate = _evaluation_or_404(evaluation_id)
    pdf = documents.evaluation_pdf(estate, e, svc.result_of(e), svc.template_of(e), now=utcnow())
    return Response(pdf, mimetype="application/pdf",
                    headers={"Content-Disposition": f"inline; filename*=UTF-8''{quote(f'评价-{e.id}.pdf')}"})


@bp.route("/evaluation-template", methods=["GET", "POST"])
@roles_required("street", "admin")
def evaluation_template():
    office_id = current_user.street_office_id
    if office_id is None:
        raise Forbidden("只有街道办事处的账号可以修改评价表", code="street_only")
    if request.method == "POST":
        svc.save_office_template(office_id, title=request.form.get("title", ""), lines=request.form.get("lines", ""),
                                 user=current_user, now=utcnow())
        db.session.commit()
        flash("评价表已保存", "success")
        return redirect(url_for("acceptance.evaluation_template"))
    title, aspects, row = svc.office_template(office_id)
    template = ev.template_from_data(aspects)
    return render_template("works/acceptance/template.html", title=title, template=template, row=row,
                           lines=ev.template_to_lines(template))


@api_bp.route("/evaluation/<int:evaluation_id>")
@api_bp.alt_response(200, schema=EvaluationDetailOutSchema, success=True)
@staff_required
def api_evaluation(evaluation_id: int):
    e, _ = _evaluation_or_404(evaluation_id)
    r = svc.result_of(e)
    return {"id": e.id, "title": e.title, "status": e.status, "weights": e.group_weights,
            "total": r.total_text, "grade": r.grade, "total_points": str(r.total_points), "missing": r.missing,
            "aspects": [{"aspect": a, "score": ev.two_places(s), "points": str(p)} for a, s, p in r.aspects],
            "sheets": [{"evaluator": s.evaluator_name, "group": s.evaluator_group, "scores": s.scores}
                       for s in e.sheets],
            "survey": svc.survey_of(e)}
