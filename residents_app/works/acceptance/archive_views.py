"""The archive's pages: build, download, hand over with a receipt, check a ZIP (/estates/<id>/archive...)."""

from __future__ import annotations

from urllib.parse import quote

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user

from residents_app.auth.scoping import estate_or_404, staff_required
from residents_app.db import utcnow
from residents_app.errors import ValidationFailed
from residents_app.extensions import db
from residents_app.plans.schemas import parse_local_dt
from residents_app.works.acceptance import archive
from residents_app.works.acceptance.views import api_bp, bp
from residents_app.works.api_schemas import ArchiveListSchema

MAX_ZIP = 200 * 1024 * 1024


@bp.route("/estates/<int:estate_id>/archive", methods=["GET", "POST"])
@staff_required
def archive_page(estate_id: int):
    estate = estate_or_404(estate_id, edit=request.method == "POST")
    if request.method == "POST":
        a = archive.build_archive(estate, user=current_user, now=utcnow())
        db.session.commit()
        flash(f"已生成档案包 #{a.id}（{a.file_count} 个文件）", "success")
        return redirect(url_for("acceptance.archive_page", estate_id=estate.id))
    return render_template("works/acceptance/archive.html", estate=estate, archives=archive.archives_of(estate.id),
                           check=None)


def _archive_or_404(archive_id: int, *, edit: bool = False):
    a = archive.get_archive(archive_id)
    return a, estate_or_404(a.estate_id, edit=edit)


@bp.route("/archive/<int:archive_id>.zip")
@staff_required
def archive_download(archive_id: int):
    a, estate = _archive_or_404(archive_id)
    name = f"{estate.name}-档案-{a.id}.zip"
    return Response(a.data, mimetype="application/zip",
                    headers={"Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}"})


@bp.route("/archive/<int:archive_id>/handover", methods=["POST"])
@staff_required
def archive_handover(archive_id: int):
    a, estate = _archive_or_404(archive_id, edit=True)
    f = request.form
    h = archive.record_handover(a, recipient_kind=f.get("recipient_kind", ""),
                                organisation=f.get("recipient_organisation", ""), received_by=f.get("received_by", ""),
                                received_at=parse_local_dt(f.get("received_at"), "received_at", "接收时间"),
                                user=current_user, now=utcnow())
    db.session.commit()
    flash(f"已登记移交，回执编号 {h.receipt_no}", "success")
    return redirect(url_for("acceptance.archive_receipt", archive_id=a.id, handover_id=h.id))


@bp.route("/archive/<int:archive_id>/handover/<int:handover_id>")
@staff_required
def archive_receipt(archive_id: int, handover_id: int):
    a, estate = _archive_or_404(archive_id)
    h = next((h for h in a.handovers if h.id == handover_id), None)
    if h is None:
        from residents_app.errors import NotFound

        raise NotFound("找不到该移交回执")
    return render_template("works/acceptance/receipt.html", estate=estate, archive=a, h=h)


@bp.route("/estates/<int:estate_id>/archive/verify", methods=["POST"])
@staff_required
def archive_verify(estate_id: int):
    estate = estate_or_404(estate_id)
    file = request.files.get("zip")
    data = file.read(MAX_ZIP + 1) if file else b""
    if not data:
        raise ValidationFailed("请选择要核对的档案包（ZIP）", errors={"zip": "必填"})
    if len(data) > MAX_ZIP:
        raise ValidationFailed("档案包超过 200 MB", errors={"zip": "过大"})
    check = archive.verify_archive(data)
    if check.estate_id not in (None, estate.id):
        check.ok = False
        check.problems.append("这不是本小区的档案包")
    return render_template("works/acceptance/archive.html", estate=estate, archives=archive.archives_of(estate.id),
                           check=check)


@api_bp.route("/estates/<int:estate_id>/archives")
@api_bp.alt_response(200, schema=ArchiveListSchema, success=True)
@staff_required
def api_archives(estate_id: int):
    estate = estate_or_404(estate_id)
    return {"archives": [{"id": a.id, "created_at": a.created_at.isoformat(), "file_count": a.file_count,
                          "manifest_sha256": a.manifest_sha256, "zip_sha256": a.zip_sha256,
                          "chain_head": {"seq": a.chain_head_seq, "hash": a.chain_head_hash},
                          "handovers": [{"receipt_no": h.receipt_no, "recipient_kind": h.recipient_kind,
                                         "organisation": h.recipient_organisation, "received_by": h.received_by,
                                         "received_at": h.received_at.isoformat()} for h in a.handovers]}
                         for a in archive.archives_of(estate.id)]}
