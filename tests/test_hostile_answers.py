"""Hostile answers from an HTTPS API, through a real connector (Okta, the loopback fake) and the
`annexa` CLI: values of 1 MB, NUL bytes, markup and formulas are stored byte for byte; a page
nested 10,000 deep, one that is not UTF-8, one with a raw NUL byte, and one holding text that
no UTF-8 can encode are refused, naming the call or the resource, and the run goes on, is
sealed and verifies."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from werkzeug.wrappers import Response

from collector.canonical import canonical
from collector.store import decompress
from tests.helpers import annexa, open_versions
from tests.okta_support import OktaFake, okta_fake, okta_server, write_config

__all__ = ["okta_fake", "okta_server"]

HUGE = "x" * 2**20
ODD = "nul\x00byte <script>alert(1)</script> \x1b[2J =HYPERLINK(\"http://x\") \u202eevil"


def _body(database_url: str, key: str) -> bytes:
    engine = sa.create_engine(database_url)
    with engine.connect() as conn:
        body = conn.scalar(sa.text(
            "SELECT b.body FROM blobs b JOIN resource_versions v ON v.digest = b.digest "
            "WHERE v.key = :k AND v.valid_to_run IS NULL"), {"k": key})
    engine.dispose()
    assert body is not None, key
    return decompress(body)


def test_huge_strings_nul_bytes_and_markup_are_stored_as_they_came(
        tmp_path, database_url, capsys, okta_fake: OktaFake) -> None:
    user = okta_fake.org.users[0]
    user["profile"] = {**user["profile"], "displayName": HUGE, "employeeNumber": ODD}
    config = write_config(tmp_path, database_url, okta_fake)
    assert annexa(capsys, config, "db", "upgrade")[0] == 0
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0 and ": complete in" in out, out + err
    stored = json.loads(_body(database_url, f"okta:user:{user['id']}"))
    assert stored["profile"]["displayName"] == HUGE
    assert stored["profile"]["employeeNumber"] == ODD
    assert "\x1b" not in out + err, "nothing of the value reaches the terminal raw"
    assert annexa(capsys, config, "verify")[0] == 0


@pytest.mark.parametrize(("body", "problem"), [
    (b'{"a":' * 10_000 + b"1" + b"}" * 10_000, "the JSON answer is nested too deeply"),
    (b'[{"id": "tok1", "name": "\xff\xfe"}]',
     "the answer is not JSON (application/json): 'utf-8' codec can't decode byte 0xff"),
    (b'[{"id": "tok1", "name": "raw \x00 nul"}]', "the answer is not JSON (application/json): "
                                                  "Invalid control character"),
], ids=["nested-10000", "invalid-utf8", "raw-nul"])
def test_a_page_that_cannot_be_read_fails_its_listing_alone(
        tmp_path, database_url, capsys, okta_fake: OktaFake, body: bytes, problem: str) -> None:
    config = write_config(tmp_path, database_url, okta_fake)
    annexa(capsys, config, "db", "upgrade")
    okta_fake.api.fail(r"^/api/v1/api-tokens", Response(body, content_type="application/json"))
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0 and "partial" in out, out + err
    assert "error: api-tokens in *: apiTokens.list: " in out and problem in out, out
    assert open_versions(database_url, "okta.api_token") == 0
    assert open_versions(database_url, "okta.user") == len(okta_fake.org.users)
    assert annexa(capsys, config, "verify")[0] == 0


def test_text_that_no_utf8_encodes_fails_its_resource_alone(
        tmp_path, database_url, capsys, okta_fake: OktaFake) -> None:
    user = okta_fake.org.users[0]
    user["profile"] = {**user["profile"], "displayName": "lone \ud800 surrogate"}
    with pytest.raises(UnicodeEncodeError):
        canonical(user)  # what the fake sends is valid JSON ("\ud800"), no UTF-8 text
    config = write_config(tmp_path, database_url, okta_fake)
    annexa(capsys, config, "db", "upgrade")
    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, out + err
    assert f"okta:user:{user['id']}" in out, out
    assert open_versions(database_url, "okta.user") == len(okta_fake.org.users) - 1
    assert annexa(capsys, config, "verify")[0] == 0
