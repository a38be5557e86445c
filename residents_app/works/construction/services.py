"""The project after the start and its parties (issue 16 item 1), rectification items, photos.

The project is the estate's approved start application. Changes, progress, complaints and supervisors have their
own modules (changes.py, progress.py, complaints.py, supervisors.py).
"""

from __future__ import annotations

import hashlib
import io
from datetime import date, datetime

import sqlalchemy as sa

from residents_app.audit.services import actor_for_user, record
from residents_app.auth.models import User
from residents_app.auth.services import create_user
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.extensions import db
from residents_app.uploads import sniff_mime
from residents_app.works.construction.models import (
    PARTY_KINDS,
    SIGN_MODES,
    Complaint,
    ConstructionPhoto,
    ConstructionSetup,
    Party,
    RectificationItem,
)
from residents_app.works.models import StartApplication


def project_of(estate_id: int) -> StartApplication | None:
    """The estate's project: its approved start application (the latest, if a plan was replaced)."""
    return db.session.execute(
        sa.select(StartApplication).where(StartApplication.estate_id == estate_id,
                                          StartApplication.status == "approved")
        .order_by(StartApplication.decided_at.desc(), StartApplication.id.desc()).limit(1)).scalar_one_or_none()


def project_or_404(estate_id: int) -> StartApplication:
    project = project_of(estate_id)
    if project is None:
        raise NotFound("本小区的项目还没有获批启动", code="no_project")
    return project


def setup_of(project: StartApplication) -> ConstructionSetup:
    setup = db.session.get(ConstructionSetup, project.id)
    if setup is None:
        setup = ConstructionSetup(start_application_id=project.id, estate_id=project.estate_id)
        db.session.add(setup)
        db.session.flush()
    return setup


def lock_project(project: StartApplication) -> ConstructionSetup:
    """The project's settings row, locked for this transaction (PostgreSQL): numbers handed out per project
    (complaints, changes) are counted under it, so two at once do not get the same number."""
    setup_of(project)
    return db.session.execute(sa.select(ConstructionSetup).where(
        ConstructionSetup.start_application_id == project.id).with_for_update()).scalar_one()


def update_setup(project: StartApplication, *, report_interval_days, complaint_answer_working_days, user,
                 now: datetime) -> ConstructionSetup:
    errors = {}
    values = {}
    for field, raw, low, high, label in (
            ("report_interval_days", report_interval_days, 1, 90, "进度通报间隔（天）"),
            ("complaint_answer_working_days", complaint_answer_working_days, 1, 30, "答复时限（工作日）")):
        text = str(raw or "").strip()
        if not text.isdigit() or not low <= int(text) <= high:
            errors[field] = [f"{label}须为 {low} 至 {high} 的整数"]
        else:
            values[field] = int(text)
    if errors:
        raise ValidationFailed("设置有误", errors=errors)
    setup = setup_of(project)
    for k, v in values.items():
        setattr(setup, k, v)
    record("construction.setup", chain=project.estate_id, actor=actor_for_user(user), now=now,
           subject_type="start_application", subject_id=project.id, data=values)
    return setup


# ---- parties (参建及相关单位) ---------------------------------------------------------------

def parties_of(project: StartApplication) -> list[Party]:
    return list(db.session.execute(
        sa.select(Party).where(Party.start_application_id == project.id)
        .order_by(sa.case({k: i for i, k in enumerate(PARTY_KINDS)}, value=Party.kind), Party.id)).scalars())


def site_contact(project: StartApplication) -> Party | None:
    return db.session.execute(sa.select(Party).where(Party.start_application_id == project.id,
                                                     Party.is_site_contact.is_(True))).scalars().first()


def party_of_user(user) -> Party | None:
    if not getattr(user, "is_authenticated", False) or user.role != "party":
        return None
    return db.session.execute(sa.select(Party).where(Party.user_id == user.id)).scalar_one_or_none()


def add_party(project: StartApplication, *, kind: str, name: str, contact_name: str = "", contact_phone: str = "",
              is_site_contact: bool = False, sign_mode: str = "paper", username: str = "", password: str = "",
              user, now: datetime) -> Party:
    """A party of the project. sign_mode "account" creates its account (role "party") limited to this estate."""
    errors: dict[str, list[str]] = {}
    if kind not in PARTY_KINDS:
        errors["kind"] = ["请选择单位类别"]
    name = (name or "").strip()
    if not name or len(name) > 120:
        errors["name"] = ["请填写单位名称（不超过 120 字）"]
    if sign_mode not in SIGN_MODES:
        errors["sign_mode"] = ["请选择签字方式"]
    contact_name, contact_phone = (contact_name or "").strip()[:60], (contact_phone or "").strip()[:30]
    if is_site_contact and not (contact_name and contact_phone):
        errors["contact_name"] = ["现场联络人须填写姓名和电话"]
    if errors:
        raise ValidationFailed("单位信息有误", errors=errors)
    account = None
    if sign_mode == "account":
        account = create_user(username=(username or "").strip(), password=password or "", role="party",
                              display_name=f"{name}（{contact_name}）" if contact_name else name)
        account.estate_id = project.estate_id
        account.street_office_id = db.session.get(User, user.id).street_office_id if user else None
    party = Party(estate_id=project.estate_id, start_application_id=project.id, kind=kind, name=name,
                  contact_name=contact_name, contact_phone=contact_phone, sign_mode=sign_mode,
                  user_id=account.id if account else None, created_at=now, created_by_id=user.id if user else None)
    db.session.add(party)
    db.session.flush()
    if is_site_contact:
        _make_site_contact(project, party)
    record("construction.party_added", chain=project.estate_id, actor=actor_for_user(user), now=now,
           subject_type="construction_party", subject_id=party.id,
           data={"kind": kind, "name": name, "contact": contact_name, "sign_mode": sign_mode,
                 "account": account.username if account else None, "site_contact": bool(is_site_contact)})
    return party


def _make_site_contact(project: StartApplication, party: Party) -> None:
    for other in parties_of(project):
        other.is_site_contact = other.id == party.id
    db.session.flush()


def set_site_contact(project: StartApplication, party: Party, *, user, now: datetime) -> None:
    if not (party.contact_name and party.contact_phone):
        raise Conflict("该单位没有联系人姓名和电话，不能设为现场联络人", code="contact_missing")
    _make_site_contact(project, party)
    record("construction.site_contact", chain=project.estate_id, actor=actor_for_user(user), now=now,
           subject_type="construction_party", subject_id=party.id,
           data={"name": party.name, "contact": party.contact_name})


def get_party(project: StartApplication, party_id: int) -> Party:
    party = db.session.get(Party, party_id)
    if party is None or party.start_application_id != project.id:
        raise NotFound("找不到该单位")
    return party


# ---- rectification items (整改) ------------------------------------------------------------

def open_rectification(project: StartApplication, *, source: str, source_id: int | None, description: str,
                       owner_party: Party | None, due_on: date | None, user, now: datetime) -> RectificationItem:
    item = RectificationItem(estate_id=project.estate_id, start_application_id=project.id, source=source,
                             source_id=source_id, description=description.strip(),
                             owner_party_id=owner_party.id if owner_party else None, due_on=due_on, state="open",
                             created_at=now, created_by_id=getattr(user, "id", None))
    db.session.add(item)
    db.session.flush()
    record("construction.rectification_opened", chain=project.estate_id, actor=actor_for_user(user), now=now,
           subject_type="rectification_item", subject_id=item.id,
           data={"source": source, "source_id": source_id, "description": item.description,
                 "owner": owner_party.name if owner_party else None, "due_on": due_on.isoformat() if due_on else None})
    return item


def rectifications_of(project: StartApplication) -> list[RectificationItem]:
    return list(db.session.execute(
        sa.select(RectificationItem).where(RectificationItem.start_application_id == project.id)
        .order_by(RectificationItem.state.desc(), RectificationItem.id)).scalars())


def close_rectification(project: StartApplication, item_id: int, *, note: str, user, now: datetime
                        ) -> RectificationItem:
    item = db.session.get(RectificationItem, item_id)
    if item is None or item.start_application_id != project.id:
        raise NotFound("找不到该整改事项")
    item.close(user_id=user.id, now=now, note=note)
    record("construction.rectification_closed", chain=project.estate_id, actor=actor_for_user(user), now=now,
           subject_type="rectification_item", subject_id=item.id, data={"note": item.closing_note})
    return item


# ---- photos ----------------------------------------------------------------------------------

MAX_PHOTO_BYTES = 10 * 1024 * 1024
MAX_PHOTO_SIDE = 1600
MAX_PHOTO_PIXELS = 40_000_000
MAX_PHOTOS = 6


def clean_photo(data: bytes, *, field: str = "photos") -> tuple[bytes, int, int]:
    """A PNG or JPEG (judged by its content) re-encoded as a JPEG at most 1600 px a side, turned upright, with
    no EXIF (no GPS position, no camera serial). Raises ValidationFailed for anything else."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if len(data) > MAX_PHOTO_BYTES:
        raise ValidationFailed("照片超过 10 MB", code="upload_too_large", errors={field: ["照片超过 10 MB"]})
    if sniff_mime(data) not in ("image/png", "image/jpeg"):
        raise ValidationFailed("照片只接受 JPEG 或 PNG", code="upload_wrong_type",
                               errors={field: ["照片只接受 JPEG 或 PNG"]})
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.width * img.height > MAX_PHOTO_PIXELS:
                raise ValidationFailed("照片像素过大", code="upload_too_large", errors={field: ["照片像素过大"]})
            img.load()
            img = ImageOps.exif_transpose(img)
            if img.mode not in ("RGB", "L"):
                background = Image.new("RGB", img.size, "white")
                rgba = img.convert("RGBA")
                background.paste(rgba, mask=rgba.getchannel("A"))
                img = background
            img.thumbnail((MAX_PHOTO_SIDE, MAX_PHOTO_SIDE))
            out = io.BytesIO()
            img.save(out, "JPEG", quality=85, optimize=True)  # no exif= argument: nothing carried over
            return out.getvalue(), img.width, img.height
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError):
        raise ValidationFailed("照片无法读取", code="upload_broken", errors={field: ["照片无法读取"]}) from None


def read_photos(files, *, field: str = "photos") -> list[bytes]:
    """The uploaded photos of a form (werkzeug FileStorage list): empty file inputs ignored, at most 6."""
    out = []
    for f in files or []:
        if f is None or not f.filename:
            continue
        data = f.stream.read(MAX_PHOTO_BYTES + 1)
        if data:
            out.append(data)
    if len(out) > MAX_PHOTOS:
        raise ValidationFailed(f"最多上传 {MAX_PHOTOS} 张照片", errors={field: [f"最多 {MAX_PHOTOS} 张"]})
    return out


def attach_photos(estate_id: int, subject_type: str, subject_id: int, photos: list[bytes], now: datetime
                  ) -> list[ConstructionPhoto]:
    rows = []
    for raw in photos:
        data, width, height = clean_photo(raw)
        p = ConstructionPhoto(estate_id=estate_id, subject_type=subject_type, subject_id=subject_id,
                              content_type="image/jpeg", width=width, height=height,
                              sha256=hashlib.sha256(data).hexdigest(), data=data, created_at=now)
        db.session.add(p)
        rows.append(p)
    db.session.flush()
    return rows


def photos_of(subject_type: str, subject_ids: list[int]) -> dict[int, list[ConstructionPhoto]]:
    out: dict[int, list[ConstructionPhoto]] = {i: [] for i in subject_ids}
    if not subject_ids:
        return out
    for p in db.session.execute(sa.select(ConstructionPhoto).where(
            ConstructionPhoto.subject_type == subject_type, ConstructionPhoto.subject_id.in_(subject_ids))
            .order_by(ConstructionPhoto.id)).scalars():
        out[p.subject_id].append(p)
    return out


def get_photo(estate_id: int, photo_id: int) -> ConstructionPhoto:
    p = db.session.get(ConstructionPhoto, photo_id)
    if p is None or p.estate_id != estate_id:
        raise NotFound("找不到该照片")
    return p


def resident_photo(unit, photo_id: int) -> ConstructionPhoto:
    """A photo a resident of `unit` may see: the estate's progress and inspection photos, and a complaint's photos
    only for the unit that filed it (404 otherwise)."""
    p = get_photo(unit.estate_id, photo_id)
    if p.subject_type == "complaint":
        c = db.session.get(Complaint, p.subject_id)
        if c is None or c.unit_id != unit.id:
            raise NotFound("找不到该照片")
    return p
