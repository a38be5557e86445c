"""The report in words a reader can follow (issue 18 item 5): the signer by name and office, how to verify without
a command line; a closed failed round never says it "can still pass"."""

from __future__ import annotations

import subprocess


def _text(pdf: bytes, tmp_path) -> str:
    path = tmp_path / "r.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True).stdout
    return "".join(out.decode("utf-8").split())


def test_report_names_the_signer_and_says_how_to_verify_in_words(client, login_as, voted_round, tmp_path):
    login_as(client, voted_round.street)
    client.post(f"/rounds/{voted_round.id}/verify", data={"decision": "verified", "comment": "材料齐全"})
    text = _text(client.get(f"/rounds/{voted_round.id}/report.pdf").data, tmp_path)
    street = voted_round.street
    assert f"{street.display_name}（{street.street_office.name}）" in text
    assert "vr_street" not in text
    assert "flask" not in text
    assert "在平台“查询投票回执”页输入即可看到这一票是否按所投计入" in text


def test_desk_puts_the_sign_off_before_the_folded_roll(client, login_as, voted_round):
    login_as(client, voted_round.street)
    html = client.get(f"/rounds/{voted_round.id}/verify").get_data(as_text=True)
    assert '<a class="button" href="#signoff">填写核验意见</a>' in html
    fold = html.index('<details id="roll-fold">')
    assert html.index('id="signoff-form"') < fold < html.index("<th>房号</th>", fold)
