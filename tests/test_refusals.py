"""What is refused, and how: source names reserved for Annexa's own sources, databases that
cannot be used, and tokens that would be born expired. Each is one line naming the cause, and
exit code 2."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from collector import config as configuration
from tests.api_support import expire
from tests.helpers import annexa
from tests.manual_support import manual_config, upgraded

ROOT = Path(__file__).resolve().parents[1]
AWS = {"kind": "aws", "regions": ["us-east-1"]}


def _config(tmp_path: Path, **fields: object) -> Path:
    cfg = {"database": f"sqlite:///{tmp_path / 'annexa.db'}",
           "signing_key": str(tmp_path / "signing.key"), **fields}
    path = tmp_path / "annexa.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.mark.parametrize(("names", "field"), [
    (["annexa-soa"], "sources[0].name"),
    (["annexa-people"], "sources[0].name"),
    (["annexa-keys"], "sources[0].name"),
    (["annexa-api"], "sources[0].name"),
    (["annexa-attestations"], "sources[0].name"),
    (["annexa-anything-new"], "sources[0].name"),
    (["Annexa-SoA"], "sources[0].name"),
    (["prod", "annexa-access-log"], "sources[1].name"),
])
def test_reserved_source_names_are_refused_naming_the_field(tmp_path, capsys, names, field):
    config = _config(tmp_path, sources=[{"name": n, **AWS} for n in names])
    code, out, err = annexa(capsys, config, "controls")
    assert code == 2 and out == ""
    (line,) = err.strip().splitlines()
    assert f"annexa.yaml: {field}: {names[-1]!r} is reserved" in line
    assert "'annexa-'" in line


@pytest.mark.parametrize("name", ["annexa", "annexa_prod", "my-annexa-soa", "annexasoa"])
def test_names_that_only_resemble_the_prefix_are_accepted(tmp_path, name):
    cfg = configuration.load(str(_config(tmp_path, sources=[{"name": name, **AWS}])))
    assert cfg.sources[0].name == name


def _closed_port() -> int:
    """A loopback port that nothing listens on (it was free a moment ago)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _bad_databases(tmp_path: Path) -> list[tuple[str, str]]:
    a_file = tmp_path / "a-file"
    a_file.write_text("not a directory")
    port = _closed_port()
    return [
        (f"postgresql+psycopg://postgres@127.0.0.1:{port}/annexa", "Connection refused"),
        (f"postgresql://postgres@127.0.0.1:{port}/annexa", "Connection refused"),
        ("oracle://scott@db.example/annexa", "unknown dialect 'oracle'"),
        ("mysql+pymysql://u:hunter2@db.example/annexa", "unknown dialect 'mysql'"),
        ("postgresql+nodriver://u@127.0.0.1/annexa", "no such driver"),
        ("not a url", "not a database URL"),
        (f"sqlite:///{a_file}/annexa.db", "unable to open database file"),
        (f"sqlite:///{tmp_path}/missing/dir/annexa.db", "unable to open database file"),
        ("sqlite:////proc/annexa.db", "unable to open database file"),
    ]


@pytest.mark.parametrize("command", [("controls",), ("db", "upgrade"), ("collect",),
                                     ("token", "list"), ("soa", "--format", "json")])
def test_an_unusable_database_is_one_line_and_exit_2(tmp_path, capsys, command):
    for url, cause in _bad_databases(tmp_path):
        config = _config(tmp_path, database=url, sources=[{"name": "prod", **AWS}])
        code, out, err = annexa(capsys, config, *command)
        assert code == 2, (url, command, out, err)
        (line,) = err.strip().splitlines()
        assert line.startswith("annexa: database") and cause in line, (url, line)
        assert "hunter2" not in line, "the password is never shown"


def test_the_real_process_prints_no_traceback_for_a_refused_port(tmp_path):
    config = _config(tmp_path, database=f"postgresql://postgres@127.0.0.1:{_closed_port()}/x")
    done = subprocess.run([sys.executable, "-m", "collector.cli", "--config", str(config),
                           "verify"], capture_output=True, text=True, timeout=120, check=False,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize("expires", ["2020-01-01", "2020-01-01T00:00:00Z", "1999-12-31T23:59:59",
                                     "0s", "0d"])
def test_a_token_cannot_be_made_already_expired(tmp_path, database_url, capsys, expires):
    config = upgraded(capsys, manual_config(tmp_path, database_url))
    code, out, err = annexa(capsys, config, "token", "create", "--role", "auditor",
                            "--expires", expires)
    assert code == 2 and out == "", out
    assert "is not in the future" in err and "Traceback" not in err
    code, out, _ = annexa(capsys, config, "token", "list", "--format", "json")
    assert code == 0 and json.loads(out) == [], "nothing was stored"


def test_token_list_says_which_tokens_expired(tmp_path, database_url, capsys):
    config = upgraded(capsys, manual_config(tmp_path, database_url))
    for name in ("current", "lapsed", "withdrawn", "forever"):
        expiry = [] if name == "forever" else ["--expires", "30d"]
        code, _, err = annexa(capsys, config, "token", "create", "--role", "auditor",
                              "--name", name, *expiry)
        assert code == 0, err
    expire(database_url, "lapsed", datetime(2021, 6, 1, tzinfo=UTC))
    assert annexa(capsys, config, "token", "revoke", "withdrawn")[0] == 0
    code, out, _ = annexa(capsys, config, "token", "list", "--format", "json")
    assert code == 0
    assert {r["name"]: r["state"] for r in json.loads(out)} == {
        "current": "active", "lapsed": "expired", "withdrawn": "revoked", "forever": "active"}
    code, out, _ = annexa(capsys, config, "token", "list")
    header, *lines = out.strip().splitlines()
    assert header.split()[:4] == ["id", "name", "role", "state"]
    states = {line.split()[1]: line.split()[3] for line in lines}
    assert states == {"current": "active", "lapsed": "expired", "withdrawn": "revoked",
                      "forever": "active"}
