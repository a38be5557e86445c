"""The materials of a start application (seed 001 step 4): ① application form and ② publicity notice are
generated (documents.py), ③ commitment letters are the pledges signed in the system, ④ the long-term
management plan is part of the plan version, ⑤ other materials are uploaded here.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.plans.models import PlanVersion
from residents_app.works.models import StartApplication, StartMaterial

MAX_MATERIAL_BYTES = 10 * 1024 * 1024
MATERIAL_KINDS = ("pdf", "png", "jpeg")


def materials_of(plan: PlanVersion) -> list[StartMaterial]:
    return list(db.session.execute(
        sa.select(StartMaterial).where(StartMaterial.plan_version_id == plan.id).order_by(StartMaterial.id)).scalars())


def get_material(plan: PlanVersion, material_id: int) -> StartMaterial:
    m = db.session.get(StartMaterial, material_id)
    if m is None or m.plan_version_id != plan.id:
        raise NotFound("找不到该材料")
    return m


def _ensure_materials_editable(plan: PlanVersion) -> None:
    status = db.session.execute(sa.select(StartApplication.status).where(
        StartApplication.plan_version_id == plan.id)).scalar_one_or_none()
    if status in ("submitted", "approved"):
        label = "已提交" if status == "submitted" else "已批准"
        raise Conflict(f"启动申请{label}，材料不能再修改", code="start_materials_locked")


def _clean_filename(name: str) -> str:
    name = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '<>:"|?*')
    return name[:200] or "材料"


def add_material(plan: PlanVersion, *, title: str, filename: str, data: bytes, user, now: datetime) -> StartMaterial:
    """⑤ another material: `data` already checked at the edge (uploads.check_upload: sniffed type, size)."""
    from residents_app.uploads import sniff_mime

    _ensure_materials_editable(plan)
    title = (title or "").strip()
    if not title:
        raise ValidationFailed("请填写材料名称", errors={"title": "请填写材料名称"})
    if len(title) > 200:
        raise ValidationFailed("材料名称不能超过 200 个字", errors={"title": "过长"})
    ctype = sniff_mime(data or b"")
    if ctype is None:  # the edge checked it; a service caller may not have
        raise ValidationFailed("材料须为 PDF、PNG 或 JPEG 文件", errors={"file": "格式不支持"})
    if len(data) > MAX_MATERIAL_BYTES:
        raise ValidationFailed("材料超过大小上限 10.0 MB", errors={"file": "过大"})
    m = StartMaterial(estate_id=plan.estate_id, plan_version_id=plan.id, title=title,
                      filename=_clean_filename(filename), content_type=ctype, size_bytes=len(data),
                      sha256=hashlib.sha256(data).hexdigest(), data=data, uploaded_by_id=getattr(user, "id", None),
                      uploaded_at=now)
    db.session.add(m)
    db.session.flush()
    record("works.material_added", chain=plan.estate_id, actor=actor_for_user(user), now=now,
           subject_type="start_material", subject_id=m.id,
           data={"plan_version": plan.id, "title": title, "filename": m.filename, "sha256": m.sha256,
                 "size_bytes": m.size_bytes})
    return m


def remove_material(plan: PlanVersion, material: StartMaterial, *, user, now: datetime) -> None:
    _ensure_materials_editable(plan)
    db.session.delete(material)
    db.session.flush()
    record("works.material_removed", chain=plan.estate_id, actor=actor_for_user(user), now=now,
           subject_type="start_material", subject_id=material.id,
           data={"title": material.title, "sha256": material.sha256})


def materials_manifest(plan: PlanVersion) -> list[dict]:
    """What the submission snapshot records of ⑤: title, file name, sha256."""
    return [{"title": m.title, "filename": m.filename, "sha256": m.sha256} for m in materials_of(plan)]
