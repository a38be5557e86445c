"""The project's archive (归档): one ZIP with a PDF index and every file of the project, a manifest with each
file's SHA-256 and the audit chain's head; building it is an audit entry holding the manifest's hash, so a ZIP
can be checked later against the chain (verify_archive). Its handover (移交) is recorded with a receipt.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import secrets
import zipfile
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from fractions import Fraction

import sqlalchemy as sa

from residents_app.audit.models import AuditEvent
from residents_app.audit.services import actor_for_user, record
from residents_app.audit.verify import verify_chain
from residents_app.core.calendar import beijing_date
from residents_app.errors import Conflict, NotFound, ValidationFailed
from residents_app.exports import safe_cell
from residents_app.extensions import db
from residents_app.registry.models import Estate
from residents_app.works.acceptance.models import Acceptance, ArchiveHandover, Evaluation, ProjectArchive

MANIFEST = "manifest.json"
INDEX = "index.pdf"
# Other parts of works (construction changes, progress, complaints) add their files here:
# fn(estate, now) -> list of (path, title, bytes).
ARCHIVE_SECTIONS: list = []


def _default(value):
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return None
    if isinstance(value, Fraction):
        return f"{value.numerator}/{value.denominator}"
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    if hasattr(value, "__table__"):  # an ORM row inside a statement (its plan item)
        return _row(value)
    raise TypeError(type(value).__name__)


def _json(data) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True, default=_default).encode("utf-8")


def _csv(header: list[str], rows) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(header)
    for row in rows:
        w.writerow([safe_cell(v) for v in row])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")  # BOM: Excel opens it as UTF-8


def _row(obj) -> dict:
    """An ORM row's columns (binary columns left out: their files are archived separately)."""
    return {a.key: getattr(obj, a.key) for a in sa.inspect(type(obj)).column_attrs
            if not isinstance(a.columns[0].type, sa.LargeBinary)}


def _all(model, *where, order=None):
    order = model.id if order is None else order
    return list(db.session.execute(sa.select(model).where(*where).order_by(order)).scalars())


def _files(estate: Estate, now: datetime) -> list[tuple[str, str, bytes]]:
    from residents_app.plans.models import PlanVersion
    from residents_app.plans.services import current_plan
    from residents_app.publicity.models import Objection, Publicity
    from residents_app.registry.models import Unit
    from residents_app.rounds.models import RollEntry, Round
    from residents_app.rounds.services import round_outcome
    from residents_app.works.acceptance import documents
    from residents_app.works.acceptance import evaluation as evaluation_svc

    files: list[tuple[str, str, bytes]] = []
    units = _all(Unit, Unit.estate_id == estate.id)
    files.append(("register/units.csv", "房屋及业主名册（归档时）", _csv(
        ["楼栋", "房号", "面积（m²）", "类型", "业主", "电话后四位"],
        [(u.building.name, u.number, u.title_area_m2, u.kind, "、".join(o.name for o in u.owners),
          "、".join((o.phone or "")[-4:] for o in u.owners)) for u in units])))
    for rnd in _all(Round, Round.estate_id == estate.id):
        entries = _all(RollEntry, RollEntry.round_id == rnd.id)
        if entries:
            files.append((f"rounds/round-{rnd.id}-roll.csv", f"表决名册：{rnd.title}", _csv(
                ["房号", "楼栋", "面积（m²）", "业主"],
                [(e.label, e.building_name, e.area_m2, "、".join(e.owner_names or [])) for e in entries])))
        files.append((f"rounds/round-{rnd.id}.json", f"表决及结果：{rnd.title}",
                      _json({"round": _row(rnd), "outcome": round_outcome(rnd.id)})))
    for pub in _all(Publicity, Publicity.estate_id == estate.id):
        objections = _all(Objection, Objection.publicity_id == pub.id)
        files.append((f"publicity/publicity-{pub.id}.json", f"公示及异议：{pub.title}",
                      _json({"publicity": _row(pub), "objections": [_row(o) for o in objections]})))
    for plan in _all(PlanVersion, PlanVersion.estate_id == estate.id, order=PlanVersion.number):
        files.append((f"plans/plan-v{plan.number}.json", f"改造方案第 {plan.number} 版",
                      _json({"plan": _row(plan), "items": [_row(i) for i in plan.items]})))
    plan = current_plan(estate.id)
    if plan is not None:
        files += _money_files(plan, units)
    for acc in _all(Acceptance, Acceptance.estate_id == estate.id):
        files.append((f"acceptance/acceptance-{acc.id}.pdf", f"竣工验收记录：{acc.title}",
                      documents.acceptance_pdf(acc, estate, now=now)))
        for p in acc.participants:
            if p.scan_sha256:
                ext = {"application/pdf": "pdf", "image/png": "png"}.get(p.scan_content_type, "jpg")
                files.append((f"acceptance/acceptance-{acc.id}-signature-{p.id}.{ext}",
                              f"纸质签字扫描件：{p.role_label} {p.organisation}", p.scan))
    for e in _all(Evaluation, Evaluation.estate_id == estate.id):
        r = evaluation_svc.result_of(e)
        files.append((f"evaluation/evaluation-{e.id}.json", f"问效评价：{e.title}", _json({
            "evaluation": _row(e), "sheets": [_row(s) for s in e.sheets], "total": r.total_text, "grade": r.grade,
            "missing": r.missing, "survey": evaluation_svc.survey_of(e)})))
    for section in ARCHIVE_SECTIONS:
        files += section(estate, now)
    events = _all(AuditEvent, AuditEvent.chain == estate.id, order=AuditEvent.seq)
    files.append(("audit/log.csv", "操作日志（防篡改日志全文）", _csv(
        ["序号", "时间", "事项", "操作人", "对象", "对象编号", "内容", "哈希"],
        [(ev.seq, ev.at, ev.kind, ev.actor, ev.subject_type, ev.subject_id,
          json.dumps(ev.data, ensure_ascii=False, sort_keys=True), ev.hash) for ev in events])))
    return files


def _money_files(plan, units) -> list[tuple[str, str, bytes]]:
    from residents_app.funding import services as funding
    from residents_app.funding.settlement import dues_of, settlement_of, settlement_preview

    out = []
    try:
        money = funding.contributions_of(plan)  # once (as saved), not once per unit
        statements = [funding.unit_statement(plan, u, money) for u in units]
    except Exception as e:  # noqa: BLE001  (a plan whose money does not compute is archived without statements)
        statements = [{"error": str(e)}]
    out.append((f"funding/plan-v{plan.number}-statements.json", "居民出资明细（对账单）", _json(statements)))
    settlement = settlement_of(plan)
    if settlement is not None:
        out.append((f"funding/plan-v{plan.number}-settlement.json", "结算及多退少补", _json({
            "settlement": _row(settlement), "preview": settlement_preview(settlement, with_planned=True),
            "dues": [_row(d) for d in dues_of(settlement)]})))
    return out


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def build_archive(estate: Estate, *, user, now: datetime) -> ProjectArchive:
    """Build and store the ZIP; its creation is logged with the manifest's hash (after the chain head it names)."""
    from residents_app.works.acceptance import documents

    report = verify_chain(estate.id)
    if report.broken is not None:
        raise Conflict(f"本小区的日志校验未通过（{report.broken.message}），不能归档", code="chain_broken")
    files = _files(estate, now)
    entries = [{"path": p, "title": t, "bytes": len(b), "sha256": _sha(b)} for p, t, b in files]
    head = {"seq": report.head_seq, "hash": report.head_hash}
    index = documents.archive_index_pdf(estate, entries, chain_head=head, now=now)
    entries.append({"path": INDEX, "title": "档案目录", "bytes": len(index), "sha256": _sha(index)})
    manifest = _json({"estate": {"id": estate.id, "code": estate.code, "name": estate.name},
                      "created_at": now, "chain_head": head, "files": entries})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for path, _, data in files:
            z.writestr(path, data)
        z.writestr(INDEX, index)
        z.writestr(MANIFEST, manifest)
    data = buf.getvalue()
    archive = ProjectArchive(estate_id=estate.id, created_at=now, created_by_id=user.id, file_count=len(entries),
                             size_bytes=len(data), manifest_sha256=_sha(manifest), zip_sha256=_sha(data),
                             chain_head_seq=head["seq"], chain_head_hash=head["hash"], data=data)
    db.session.add(archive)
    db.session.flush()
    record("archive.created", chain=estate.id, actor=actor_for_user(user), now=now, subject_type="archive",
           subject_id=archive.id, data={"manifest_sha256": archive.manifest_sha256, "zip_sha256": archive.zip_sha256,
                                        "files": len(entries), "chain_head": head})
    return archive


def archives_of(estate_id: int) -> list[ProjectArchive]:
    return _all(ProjectArchive, ProjectArchive.estate_id == estate_id, order=ProjectArchive.id.desc())


def get_archive(archive_id: int) -> ProjectArchive:
    a = db.session.get(ProjectArchive, archive_id)
    if a is None:
        raise NotFound("找不到该档案")
    return a


def record_handover(archive: ProjectArchive, *, recipient_kind: str, organisation: str, received_by: str,
                    received_at: datetime, user, now: datetime) -> ArchiveHandover:
    errors = {}
    if recipient_kind not in ("owners", "property"):
        errors["recipient_kind"] = "须为业主委员会或物业服务企业"
    organisation, received_by = (organisation or "").strip(), (received_by or "").strip()
    if not organisation or len(organisation) > 200:
        errors["recipient_organisation"] = "请填写接收单位（不超过 200 个字）"
    if not received_by or len(received_by) > 100:
        errors["received_by"] = "请填写接收人（不超过 100 个字）"
    if not isinstance(received_at, datetime) or received_at.tzinfo is None:
        errors["received_at"] = "请填写接收时间"
    elif received_at > now or received_at < archive.created_at.replace(second=0, microsecond=0):  # forms give minutes
        errors["received_at"] = "接收时间须在归档之后、现在之前"
    if errors:
        raise ValidationFailed("移交信息有误：" + "；".join(errors.values()), errors=errors)
    receipt_no = f"YJ{beijing_date(now):%Y%m%d}-{archive.id}-{secrets.token_hex(3).upper()}"
    h = ArchiveHandover(archive_id=archive.id, receipt_no=receipt_no, recipient_kind=recipient_kind,
                        recipient_organisation=organisation, received_by=received_by, received_at=received_at,
                        recorded_by_id=user.id)
    db.session.add(h)
    db.session.flush()
    record("archive.handed_over", chain=archive.estate_id, actor=actor_for_user(user), now=now,
           subject_type="archive", subject_id=archive.id,
           data={"receipt_no": receipt_no, "recipient_kind": recipient_kind, "organisation": organisation,
                 "received_by": received_by, "received_at": received_at.isoformat(),
                 "manifest_sha256": archive.manifest_sha256})
    return h


@dataclass
class ArchiveCheck:
    ok: bool = False
    estate_id: int | None = None
    file_count: int = 0
    manifest_sha256: str = ""
    problems: list[str] = field(default_factory=list)
    archive_event_seq: int | None = None


def verify_archive(data: bytes) -> ArchiveCheck:
    """Check a ZIP: every file against the manifest, no file added, the chain head it names is on the estate's
    chain (which verifies), and an `archive.created` entry of that chain holds the manifest's hash."""
    out = ArchiveCheck()
    try:
        z = zipfile.ZipFile(io.BytesIO(data))
        names = set(z.namelist())
        manifest_bytes = z.read(MANIFEST)
        manifest = json.loads(manifest_bytes)
        listed = manifest["files"]
        estate_id = int(manifest["estate"]["id"])
        head = manifest["chain_head"]
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError):
        out.problems.append("不是本平台生成的档案包（没有可读的 manifest.json）")
        return out
    out.estate_id, out.file_count, out.manifest_sha256 = estate_id, len(listed), _sha(manifest_bytes)
    for e in listed:
        path = e.get("path")
        if path not in names:
            out.problems.append(f"缺少文件 {path}")
            continue
        actual = _sha(z.read(path))
        if actual != e.get("sha256"):
            out.problems.append(f"文件 {path} 的 SHA-256 不符（应为 {e.get('sha256')}，实为 {actual}）")
    extra = names - {e.get("path") for e in listed} - {MANIFEST}
    for path in sorted(extra):
        out.problems.append(f"多出清单以外的文件 {path}")
    report = verify_chain(estate_id)
    if report.broken is not None:
        out.problems.append(f"本小区的日志校验未通过：{report.broken.message}")
    at_head = db.session.execute(sa.select(AuditEvent).where(
        AuditEvent.chain == estate_id, AuditEvent.seq == head.get("seq"))).scalar_one_or_none()
    if head.get("seq") and (at_head is None or at_head.hash != head.get("hash")):
        out.problems.append(f"清单中的日志第 {head.get('seq')} 条哈希与日志不符")
    created = [ev for ev in db.session.execute(sa.select(AuditEvent).where(
        AuditEvent.chain == estate_id, AuditEvent.kind == "archive.created")).scalars()
        if (ev.data or {}).get("manifest_sha256") == out.manifest_sha256]
    if not created:
        out.problems.append("日志中没有这份档案的归档记录（manifest.json 的哈希不在日志中）")
    else:
        out.archive_event_seq = created[0].seq
    out.ok = not out.problems
    return out
