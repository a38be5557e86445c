"""The official result report: exact figures in the PDF's text, the CJK font embedded, pages rendered."""

from __future__ import annotations

import subprocess
from datetime import timedelta

import pytest

from residents_app.extensions import db
from residents_app.oversight.report import render_round_report
from residents_app.oversight.round_facts import condition_rows, round_report_data, round_tally
from residents_app.rounds.models import Round


def _text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-layout", str(path), "-"], capture_output=True,
                         check=True)
    return out.stdout.decode("utf-8")


def test_condition_rows_are_exact(voted_round):
    rnd = db.session.get(Round, voted_round.id)
    rows = condition_rows(round_tally(rnd, voted_round.closes))
    assert [(r.name, r.actual, r.bound, r.margin, r.met) for r in rows] == [
        ("同意面积 ≥ 总面积的 2/3", "389.30 m²（69.91%）", "≥ 2/3 × 556.85 m²（至少 371.24 m²）", "超出 18.06 m²",
         True),
        ("同意户数 ≥ 总户数的 2/3", "4 户（66.66%）", "≥ 2/3 × 6（至少 4）", "恰好达到", True),
    ]


def test_report_data_of_the_round(voted_round):
    rnd = db.session.get(Round, voted_round.id)
    data = round_report_data(rnd, voted_round.closes + timedelta(days=1))
    assert data.passed is True
    assert data.rule_code == "lucheng"
    assert data.agreeing_units == ["1幢-101", "1幢-102", "1幢-201", "2幢-101"]
    assert (data.roll_households, data.roll_area) == (6, "556.85")
    assert data.ballot_counts == {"线上": 3, "纸质": 1, "委托代理": 1}
    assert data.publicity == ("2026-09-08 张贴；公示期：2026-09-09 至 2026-09-15（5个工作日），"
                              "至 2026-09-15 24:00 止；公示中")
    assert data.scope == "全小区"


def test_pdf_text_has_the_figures_exactly(voted_round, tmp_path):
    rnd = db.session.get(Round, voted_round.id)
    text = _text(render_round_report(round_report_data(rnd, voted_round.closes + timedelta(days=1))), tmp_path)
    flat = " ".join(text.split())
    for expected in ("鹿城花园", "外立面及屋面改造意愿征求 表决结果报告", "鹿城双三分之二规则",
                     "温鹿政办〔2020〕21号", "389.30 m²（69.91%）", "371.24 m²", "超出 18.06 m²",
                     "4 户（66.66%）", "恰好达到", "表决结果：通过", "共 4 户，仅列房号",
                     "1幢-101", "1幢-102", "1幢-201", "2幢-101", "6 户 / 556.85 m²",
                     "公示期：2026-09-09 至 2026-09-15（5个工作日）", "业主委员会（自治小组）盖章", "街道审核意见",
                     "线上 3 张，纸质 1 张，委托代理 1 张", "街道核验：尚未核验"):
        assert expected in flat, expected
    # Unit numbers only: no owner's name and no phone number in the report.
    assert "业主" + "1" not in flat and "139" not in flat
    assert "1幢-202" not in flat and "2幢-102" not in flat


def test_pdf_embeds_wenquanyi_and_renders(voted_round, tmp_path):
    rnd = db.session.get(Round, voted_round.id)
    pdf = render_round_report(round_report_data(rnd, voted_round.closes + timedelta(days=1)))
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    fonts = subprocess.run(["pdffonts", str(path)], capture_output=True, check=True).stdout.decode()
    wqy = [line for line in fonts.splitlines() if "WenQuanYiZenHei" in line]
    assert wqy and all(line.split()[-5] == "yes" for line in wqy)  # the "emb" column
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(path), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) == 2
    assert all(p.stat().st_size > 10_000 for p in pages)


def test_civil_code_rule_names_the_item(voted_round, tmp_path):
    from residents_app.oversight.report import rule_lines

    rnd = db.session.get(Round, voted_round.id)
    data = round_report_data(rnd, voted_round.closes)
    object.__setattr__(data, "rule_code", "civil_code_278")
    object.__setattr__(data, "rule_item", 7)
    name, source = rule_lines(data)
    assert name == ("《民法典》第二百七十八条第一款（七）改建、重建建筑物及其附属设施，"
                    "属于第六项至第八项（参与表决者四分之三以上同意）")
    assert "参与表决专有部分面积四分之三以上的业主" in source


def test_missing_cjk_font_is_a_clear_503_not_boxes(monkeypatch, tmp_path):
    from residents_app import pdf_font
    from residents_app.errors import ServiceUnavailable
    from residents_app.oversight import report

    monkeypatch.setattr(pdf_font, "_ready", False)
    monkeypatch.setenv("RAPP_CJK_FONT", str(tmp_path / "missing.ttc"))
    with pytest.raises(ServiceUnavailable) as exc:
        report._ensure_font()
    assert exc.value.code == "pdf_font_missing"
    assert "fonts-wqy-zenhei" in exc.value.message
