"""Pages of issue 15 (on the funding blueprint): funding sources, the dedicated account (ledger, bank statement,
reconciliation), settlement dues, the monthly finance publicity, and the street office's subsidy rule.

Committee: /estates/<id>/sources, /estates/<id>/account, /plans/<id>/settlement/dues(.xlsx).
Street office: /street/rule (with a preview on one estate before saving).
"""

from __future__ import annotations

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user

from residents_app.auth.scoping import can_edit_estate, estate_or_404, roles_required, staff_required
from residents_app.core.calendar import beijing_date
from residents_app.db import utcnow
from residents_app.errors import NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.funding import account as account_svc
from residents_app.funding import finance, sources, subsidy_rules
from residents_app.funding import settlement as settlement_svc
from residents_app.funding.account_models import ENTRY_KIND_LABELS, SOURCE_KIND_LABELS, SettlementDue
from residents_app.funding.views import bp, logged_xlsx
from residents_app.plans import services as plan_svc
from residents_app.plans.schemas import parse_date, parse_int_id, yuan_to_fen
from residents_app.plans.views import LABELS, plan_for_staff
from residents_app.uploads import check_upload


@bp.route("/estates/<int:estate_id>/sources", methods=["GET", "POST"])
@staff_required
def sources_page(estate_id: int):
    estate = estate_or_404(estate_id, edit=request.method == "POST")
    now = utcnow()
    if request.method == "POST":
        form = request.form
        round_raw = (form.get("decision_round_id") or "").strip()
        received = (form.get("received_on") or "").strip()
        src = sources.add_source(
            estate, kind=form.get("kind", ""), amount_fen=yuan_to_fen(form.get("amount_yuan"), "amount_yuan", "金额"),
            provider=form.get("provider", ""), description=form.get("description", ""),
            item_names=[n for n in form.getlist("item_names") if n],
            decision_round_id=parse_int_id(round_raw, "decision_round_id", "表决") if round_raw else None,
            decision_note=form.get("decision_note", ""),
            received_on=parse_date(received, "received_on", "到账日期") if received else None,
            into_account=form.get("into_account") == "1", user=current_user, now=now)
        upload = request.files.get("evidence")
        if upload is not None and upload.filename:
            data = check_upload(upload, ("pdf", "png", "jpeg"), field="evidence", label="凭证")
            sources.attach_evidence(src, filename=upload.filename, data=data, user=current_user, now=now)
        db.session.commit()
        flash(f"已登记资金来源：{src.kind_label} {src.amount_fen // 100:,}.{src.amount_fen % 100:02d} 元", "success")
        return redirect(url_for("funding.sources_page", estate_id=estate.id))
    from residents_app.rounds.models import Round

    plan = plan_svc.current_plan(estate.id)
    rounds = db.session.query(Round).filter(Round.estate_id == estate.id, Round.status == "closed").all()
    rows = [{"src": s, "problems": sources.source_problems(s)} for s in sources.sources_of(estate.id)]
    state = sources.self_funding_state(plan) if plan else None
    return render_template("funding/sources.html", estate=estate, plan=plan, rows=rows, rounds=rounds,
                           kinds=SOURCE_KIND_LABELS, state=state, can_edit=can_edit_estate(current_user, estate),
                           today=beijing_date(now))


@bp.route("/estates/<int:estate_id>/sources/<int:source_id>/evidence", methods=["GET", "POST"])
@staff_required
def source_evidence(estate_id: int, source_id: int):
    estate = estate_or_404(estate_id, edit=request.method == "POST")
    src = sources.get_source(estate, source_id)
    if request.method == "POST":
        upload = request.files.get("evidence")
        data = check_upload(upload, ("pdf", "png", "jpeg"), field="evidence", label="凭证")
        sources.attach_evidence(src, filename=upload.filename, data=data, user=current_user, now=utcnow())
        db.session.commit()
        flash("凭证已上传", "success")
        return redirect(url_for("funding.sources_page", estate_id=estate.id))
    if not src.has_evidence:
        raise NotFound("该资金来源还没有凭证")
    return Response(src.evidence_data, mimetype=src.evidence_content_type,
                    headers={"Content-Disposition": "attachment", "X-Content-Type-Options": "nosniff"})


@bp.route("/estates/<int:estate_id>/sources/<int:source_id>/withdraw", methods=["POST"])
@staff_required
def source_withdraw(estate_id: int, source_id: int):
    estate = estate_or_404(estate_id, edit=True)
    src = sources.get_source(estate, source_id)
    sources.withdraw_source(src, reason=request.form.get("reason", ""), user=current_user, now=utcnow())
    db.session.commit()
    flash("已撤销该资金来源", "success")
    return redirect(url_for("funding.sources_page", estate_id=estate.id))


@bp.route("/estates/<int:estate_id>/account", methods=["GET", "POST"])
@staff_required
def account_page(estate_id: int):
    estate = estate_or_404(estate_id, edit=request.method == "POST")
    now = utcnow()
    if request.method == "POST":
        form = request.form
        action = form.get("action")
        if action == "details":
            opened = (form.get("opened_on") or "").strip()
            account_svc.set_account(estate, bank_name=form.get("bank_name", ""),
                                    account_name=form.get("account_name", ""),
                                    account_number=form.get("account_number", ""),
                                    opened_on=parse_date(opened, "opened_on", "开户日期") if opened else None,
                                    user=current_user, now=now)
            flash("资金专用账户信息已保存", "success")
        elif action == "spending":
            account_svc.book_spending(
                estate, kind=form.get("kind", ""),
                amount_fen=yuan_to_fen(form.get("amount_yuan"), "amount_yuan", "支出金额"),
                booked_on=parse_date(form.get("booked_on"), "booked_on", "日期"),
                counterparty=form.get("counterparty", ""), memo=form.get("memo", ""),
                reference=form.get("reference", ""), user=current_user, now=now)
            flash("支出已记账", "success")
        elif action == "statement":
            data = check_upload(request.files.get("statement"), ("csv",), field="statement", label="银行流水")
            rows = account_svc.import_statement(estate, data, user=current_user, now=now)
            flash(f"已导入银行流水 {len(rows)} 行", "success")
        elif action == "publicity":
            year = parse_int_id(form.get("year"), "year", "年份")
            month = parse_int_id(form.get("month"), "month", "月份")
            report = finance.post_finance_publicity(
                estate, year, month, posted_on=parse_date(form.get("posted_on"), "posted_on", "张贴日期"),
                user=current_user, now=now)
            flash(f"{report.label}财务收支已公示", "success")
        else:
            raise ValidationFailed("未知的操作", errors={"action": ["未知"]})
        db.session.commit()
        return redirect(url_for("funding.account_page", estate_id=estate.id))
    return render_template(
        "funding/account.html", estate=estate, account=account_svc.account_of(estate.id),
        entries=account_svc.entries_of(estate.id), balance=account_svc.balance_fen(estate.id),
        rec=account_svc.reconciliation(estate.id), reports=finance.reports_of(estate.id),
        kinds=ENTRY_KIND_LABELS, can_edit=can_edit_estate(current_user, estate), today=beijing_date(now))


def _dues_of_plan(plan_id: int):
    plan = plan_for_staff(plan_id, edit=request.method == "POST")
    s = settlement_svc.settlement_of(plan)
    if s is None or not s.is_final:
        raise NotFound("该方案的决算还没有定稿")
    return plan, s


@bp.route("/plans/<int:plan_id>/settlement/dues", methods=["GET", "POST"])
@staff_required
def settlement_dues(plan_id: int):
    plan, s = _dues_of_plan(plan_id)
    if request.method == "POST":
        due = db.session.get(SettlementDue, parse_int_id(request.form.get("due_id"), "due_id", "退补记录"))
        if due is None or due.settlement_id != s.id:
            raise NotFound("找不到该退补记录")
        settlement_svc.close_due(due, method=request.form.get("method", ""),
                                 paid_on=parse_date(request.form.get("paid_on"), "paid_on", "日期"),
                                 reference=request.form.get("reference", ""), user=current_user, now=utcnow())
        db.session.commit()
        flash(f"{due.unit.label} {due.state_label}", "success")
        return redirect(url_for("funding.settlement_dues", plan_id=plan.id))
    return render_template("funding/dues.html", estate=plan.estate, plan=plan, s=s, dues=settlement_svc.dues_of(s),
                           labels=LABELS, can_edit=can_edit_estate(current_user, plan.estate),
                           today=beijing_date(utcnow()))


@bp.route("/plans/<int:plan_id>/settlement/dues.xlsx")
@staff_required
def settlement_dues_xlsx(plan_id: int):
    from residents_app.funding import exports

    plan, s = _dues_of_plan(plan_id)
    return logged_xlsx("settlement_dues_xlsx", exports.open_dues_xlsx(s), f"待退补-第{plan.number}版.xlsx",
                       estate_id=plan.estate_id, subject_type="settlement", subject_id=s.id)


@bp.route("/street/rule", methods=["GET", "POST"])
@roles_required("street")
def street_rule():
    office_id = current_user.street_office_id
    if office_id is None:
        raise NotFound("您的账号没有关联街道")
    form = request.form if request.method == "POST" else request.args
    estates = subsidy_rules.estates_of_office(office_id)
    current = subsidy_rules.current_rule(office_id)
    preview = candidate = None
    if form.get("kind"):
        candidate = subsidy_rules.rule_from_form(form)
        estate_id = parse_int_id(form.get("estate_id"), "estate_id", "预览小区") if form.get("estate_id") else None
        estate = next((e for e in estates if e.id == estate_id), estates[0] if estates else None)
        preview = subsidy_rules.preview(estate, current, candidate) if estate else None
        if request.method == "POST" and form.get("save") == "1":
            subsidy_rules.save_rule(office_id, candidate, user=current_user, now=utcnow())
            db.session.commit()
            flash("补助规则已保存，变更已记入审计日志", "success")
            return redirect(url_for("funding.street_rule"))
    unit_labels = {}
    if preview and preview.get("plan"):
        from residents_app.funding.services import estate_units

        unit_labels = {u.id: u.label for u in estate_units(preview["estate"].id)}
    return render_template("funding/rule.html", estates=estates, current=current, candidate=candidate,
                           preview=preview, form=form, history=subsidy_rules.history(office_id),
                           describe=subsidy_rules.describe, unit_labels=unit_labels)
