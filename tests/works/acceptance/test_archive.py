"""The archive: one ZIP with a PDF index and every file, a SHA-256 per file in the manifest, the chain head; the
creation is an audit entry holding the manifest's hash; verify_archive checks a ZIP; the handover's receipt."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import timedelta

import pytest

from residents_app.audit.models import AuditEvent
from residents_app.audit.verify import verify_chain
from residents_app.errors import ValidationFailed
from residents_app.works.acceptance import archive


def _rezip(data: bytes, change) -> bytes:
    src = zipfile.ZipFile(io.BytesIO(data))
    files = {n: src.read(n) for n in src.namelist()}
    change(files)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n, b in files.items():
            z.writestr(n, b)
    return buf.getvalue()


@pytest.fixture
def built(aw):
    w = aw.w
    plan = w.plan()
    acc = aw.open()
    w.db.session.commit()
    a = archive.build_archive(w.estate, user=w.committee, now=w.later(days=1))
    w.db.session.commit()
    return a, plan, acc


def test_the_zip_holds_every_file_with_its_checksum(built, aw):
    a, plan, acc = built
    z = zipfile.ZipFile(io.BytesIO(a.data))
    manifest = json.loads(z.read("manifest.json"))
    paths = [e["path"] for e in manifest["files"]]
    assert paths[0] == "register/units.csv"
    assert f"plans/plan-v{plan.number}.json" in paths
    assert f"funding/plan-v{plan.number}-statements.json" in paths
    assert f"acceptance/acceptance-{acc.id}.pdf" in paths
    assert paths[-2:] == ["audit/log.csv", "index.pdf"]
    assert sorted(z.namelist()) == sorted(paths + ["manifest.json"])
    for e in manifest["files"]:
        assert hashlib.sha256(z.read(e["path"])).hexdigest() == e["sha256"]
    register = z.read("register/units.csv").decode("utf-8-sig").splitlines()
    assert register[0] == "楼栋,房号,面积（m²）,类型,业主,电话后四位"
    assert len(register) == 4
    report = verify_chain(aw.w.estate.id)
    # the head named in the manifest is the entry just before the archive's own entry
    assert manifest["chain_head"] == {"seq": report.head_seq - 1, "hash": a.chain_head_hash}
    last = aw.db.session.query(AuditEvent).filter_by(chain=aw.w.estate.id, seq=report.head_seq).one()
    assert last.kind == "archive.created"
    assert last.data["manifest_sha256"] == hashlib.sha256(z.read("manifest.json")).hexdigest() == a.manifest_sha256
    assert a.zip_sha256 == hashlib.sha256(a.data).hexdigest()


def test_verify_accepts_the_archive_and_names_each_tampering(built):
    a, _, _ = built
    ok = archive.verify_archive(a.data)
    assert ok.ok and ok.problems == [] and ok.archive_event_seq is not None
    bad = archive.verify_archive(_rezip(a.data, lambda f: f.__setitem__("register/units.csv", b"x")))
    assert not bad.ok and bad.problems[0].startswith("文件 register/units.csv 的 SHA-256 不符")
    extra = archive.verify_archive(_rezip(a.data, lambda f: f.__setitem__("extra.txt", b"x")))
    assert extra.problems == ["多出清单以外的文件 extra.txt"]
    missing = archive.verify_archive(_rezip(a.data, lambda f: f.pop("index.pdf")))
    assert missing.problems == ["缺少文件 index.pdf"]

    def forge(files):  # a consistent manifest that the log never saw
        m = json.loads(files["manifest.json"])
        files["register/units.csv"] = b"forged"
        m["files"][0]["sha256"] = hashlib.sha256(b"forged").hexdigest()
        files["manifest.json"] = json.dumps(m).encode()

    forged = archive.verify_archive(_rezip(a.data, forge))
    assert forged.problems == ["日志中没有这份档案的归档记录（manifest.json 的哈希不在日志中）"]
    assert archive.verify_archive(b"not a zip").problems == ["不是本平台生成的档案包（没有可读的 manifest.json）"]


def test_handover_receipt(built, aw):
    a, _, _ = built
    w = aw.w
    now = w.later(days=2)
    h = archive.record_handover(a, recipient_kind="owners", organisation="幸福小区业委会", received_by="赵业",
                                received_at=w.later(days=1, hours=2), user=w.committee, now=now)
    assert h.receipt_no.startswith(f"YJ20260903-{a.id}-") and len(h.receipt_no) == len(f"YJ20260903-{a.id}-") + 6
    assert h.recipient_label == "业主委员会"
    with pytest.raises(ValidationFailed, match="接收时间须在归档之后、现在之前"):
        archive.record_handover(a, recipient_kind="property", organisation="物业", received_by="钱",
                                received_at=now + timedelta(minutes=1), user=w.committee, now=now)
    with pytest.raises(ValidationFailed, match="接收时间须在归档之后"):
        archive.record_handover(a, recipient_kind="property", organisation="物业", received_by="钱",
                                received_at=a.created_at - timedelta(minutes=1), user=w.committee, now=now)
    with pytest.raises(ValidationFailed, match="须为业主委员会或物业服务企业"):
        archive.record_handover(a, recipient_kind="street", organisation="物业", received_by="钱",
                                received_at=now, user=w.committee, now=now)
    ev = aw.db.session.query(AuditEvent).filter_by(chain=w.estate.id, kind="archive.handed_over").one()
    assert ev.data["receipt_no"] == h.receipt_no and ev.data["manifest_sha256"] == a.manifest_sha256


def test_cli_verify(built, app, tmp_path):
    a, _, _ = built
    good, bad = tmp_path / "a.zip", tmp_path / "b.zip"
    good.write_bytes(a.data)
    bad.write_bytes(_rezip(a.data, lambda f: f.__setitem__("index.pdf", b"x")))
    runner = app.test_cli_runner()
    out = runner.invoke(args=["acceptance", "verify-archive", str(good)])
    assert out.exit_code == 0 and "OK: 档案包与清单一致" in out.output
    out = runner.invoke(args=["acceptance", "verify-archive", str(bad)])
    assert out.exit_code == 1 and "PROBLEM: 文件 index.pdf 的 SHA-256 不符" in out.output


def test_pages_build_download_verify_and_hand_over(aw, client, login_as):
    w = aw.w
    login_as(client, w.committee)
    assert client.post(f"/estates/{w.estate.id}/archive").status_code == 302
    page = client.get(f"/estates/{w.estate.id}/archive").get_data(as_text=True)
    aid = int(page.split('data-archive="')[1].split('"')[0])
    resp = client.get(f"/archive/{aid}.zip")
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    resp = client.post(f"/estates/{w.estate.id}/archive/verify", data={"zip": (io.BytesIO(resp.data), "a.zip")},
                       content_type="multipart/form-data")
    assert "✔ 核对通过" in resp.get_data(as_text=True)
    resp = client.post(f"/archive/{aid}/handover", data={
        "recipient_kind": "property", "recipient_organisation": "幸福物业公司", "received_by": "钱物",
        "received_at": "2020-01-01T10:00"})
    assert resp.status_code == 422
    login_as(client, w.street)
    assert client.post(f"/estates/{w.estate.id}/archive").status_code == 403
    assert client.get(f"/archive/{aid}.zip").status_code == 200
