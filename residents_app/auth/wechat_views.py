"""The committee's page of an estate's WeChat bindings (who bound which unit, since when), with unbinding."""

from __future__ import annotations

from flask import flash, redirect, render_template, url_for
from flask_login import current_user

from residents_app.audit.services import actor_for_user
from residents_app.auth import wechat as svc
from residents_app.auth.scoping import can_edit_estate, estate_or_404, staff_required
from residents_app.auth.views import bp
from residents_app.auth.wechat_models import WechatBinding
from residents_app.db import utcnow
from residents_app.errors import NotFound
from residents_app.extensions import db


@bp.route("/estates/<int:estate_id>/wechat-bindings")
@staff_required
def wechat_bindings_page(estate_id: int):
    estate = estate_or_404(estate_id)
    return render_template("auth/wechat_bindings.html", estate=estate, bindings=svc.bindings_of_estate(estate.id),
                           can_edit=can_edit_estate(current_user, estate))


@bp.route("/wechat-bindings/<int:binding_id>/unbind", methods=["POST"])
@staff_required
def wechat_binding_unbind(binding_id: int):
    binding = db.session.get(WechatBinding, binding_id)
    if binding is None:
        raise NotFound("找不到该绑定")
    estate = estate_or_404(binding.unit.estate_id, edit=True)
    label = binding.unit.label
    svc.unbind(binding, utcnow(), actor=actor_for_user(current_user), by="committee")
    db.session.commit()
    flash(f"已解除 {label} 的微信绑定；该微信再次登录时需重新确认业主身份。", "success")
    return redirect(url_for("auth.wechat_bindings_page", estate_id=estate.id))
