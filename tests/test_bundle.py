"""`annexa export` and `annexa verify-bundle`: bundles verify offline, hold the window's state,
carry no secret, and every kind of tampering is caught and named."""

from __future__ import annotations

import hashlib
import io
import json
import re
import stat
import warnings
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from collector import ledger, tokens
from collector.bundle import MerkleTree
from collector.cli import main
from collector.report_html import render_report
from collector.web.rendering import stamp
from tests.bundle_history import SECRETS, History, build_history
from tests.helpers import annexa
from tests.web_support import seeded_service

MFA = "aws.iam.user_console_mfa_enabled"
ROTATION = "aws.kms.key_rotation_enabled"


def _export(capsys, config: Path, out: Path, start: str, end: str, *extra: str
            ) -> tuple[int, str, str]:
    return annexa(capsys, config, "export", "--from", start, "--to", end, "--out", str(out),
                  *extra)


def _verify(capsys, bundle: Path, *extra: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify-bundle", str(bundle), *extra])
    out, err = capsys.readouterr()
    return code, out + err


def _members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _manifest(bundle: Path) -> dict:
    return json.loads(_members(bundle)["manifest.json"])


# --- a bundle exported from each database -------------------------------------------------

@pytest.fixture
def history(tmp_path, database_url, moto_url) -> History:
    return build_history(tmp_path, database_url, moto_url)


def test_exported_bundle_verifies_offline_and_holds_the_window(history, tmp_path, capsys,
                                                               monkeypatch):
    out = tmp_path / "bundle.zip"
    code, text, err = _export(capsys, history.config, out, history.after[0].isoformat(),
                              history.after[2].isoformat())
    assert code == 0, err
    assert f"{out}: runs #1 to #3 (3 runs)" in text

    # No configuration, no database: only the zip (and, optionally, the key).
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.delenv("ANNEXA_CONFIG", raising=False)
    if history.database_url.startswith("sqlite"):
        db = Path(history.database_url.removeprefix("sqlite:///"))
        db.rename(db.with_suffix(".away"))
    code, text = _verify(capsys, out)
    assert code == 0, text
    assert "bundle intact: runs #1 to #3 (3 runs)" in text
    code, text = _verify(capsys, out, "--public-key", str(tmp_path / "signing.key"))
    assert code == 0, text

    members = _members(out)
    manifest = json.loads(members["manifest.json"])
    assert [r["header"]["seq"] for r in manifest["runs"]] == [1, 2, 3]
    assert manifest["anchor"] is None, "run #1 starts from the genesis hash"
    for entry in manifest["evidence"]:
        body = members[entry["file"]]
        assert hashlib.sha256(body).hexdigest() == entry["digest"]
        assert json.loads(body) is not None

    # alice's failing MFA result held from run 1 until run 2 removed her; her evidence is there.
    (alice,) = [r for r in manifest["results"]
                if r["check"] == MFA and r["subject"] == history.alice]
    assert (alice["status"], alice["valid_from_run"], alice["valid_to_run"]) == (
        "fail", history.run_ids[0], history.run_ids[1])
    assert alice["proof"]["run"] == history.run_ids[0]
    (alice_file,) = alice["evidence"]
    assert json.loads(members[f"evidence/{alice_file}.json"])["Arn"] == history.alice
    a824 = {c["id"]: c for c in manifest["controls"]}["A.8.24"]
    assert len(a824["status"]) == len(manifest["points"]) == 3

    # The report is self-contained: its links stay inside the bundle and all resolve.
    report = members["report.html"].decode()
    hrefs = re.findall(r'href="([^"]+)"', report)
    assert any(h.startswith("evidence/") for h in hrefs)
    for href in hrefs:
        assert href.startswith("#") or href in members, href
    assert "http://" not in report and "https://" not in report
    assert history.alice in report and "A.8.24" in report

    # Secrets seeded in the emulator were redacted at collection and are nowhere in the bundle.
    for name, body in members.items():
        for secret in SECRETS:
            assert secret.encode() not in body, (secret, name)
    alice_evidence = members[f"evidence/{alice_file}.json"].decode()
    assert "password=[REDACTED]" in alice_evidence
    assert '"Key":"db_password","Value":"[REDACTED]"' in alice_evidence


def test_window_starts_from_the_state_at_its_start(history, tmp_path, capsys):
    out = tmp_path / "late.zip"
    code, _, err = _export(capsys, history.config, out, history.after[1].isoformat(),
                           history.after[2].isoformat(), "--control", "A.8.24")
    assert code == 0, err
    manifest = _manifest(out)
    # Run 2 finished before the window and holds its starting state; run 1 anchors the chain.
    assert [r["header"]["run"] for r in manifest["runs"]] == history.run_ids[1:]
    assert manifest["anchor"]["header"]["seq"] == 1
    assert [p["run"] for p in manifest["points"]] == [None, history.run_ids[2]]
    assert [c["id"] for c in manifest["controls"]] == ["A.8.24"]
    assert {r["check"] for r in manifest["results"]} <= set(manifest["checks"])
    assert history.alice not in {r["subject"] for r in manifest["results"]}
    rotation = {(r["subject"], r["status"]) for r in manifest["results"] if r["check"] == ROTATION}
    assert rotation == {(history.orders_key, "pass"), (history.ledger_key, "fail")}
    assert _verify(capsys, out)[0] == 0


def test_export_refuses_bad_windows_and_controls(history, tmp_path, capsys):
    out = tmp_path / "x.zip"
    late, early = history.after[2].isoformat(), history.after[0].isoformat()
    for args, code_expected, message in (
        ((late, early), 2, "is not before --to"),
        (("2026-13-01", early), 2, "--from '2026-13-01' is not an ISO 8601"),
        ((early, late, "--control", "A.99"), 2, "'A.99' is not an Annex A 2022 control"),
        (((history.before - timedelta(days=2)).isoformat(),
          (history.before - timedelta(days=1)).isoformat()), 1, "no sealed run had finished"),
    ):
        code, _, err = _export(capsys, history.config, out, *args)
        assert code == code_expected and message in err, err
        assert not out.exists(), "nothing is left behind by a refused export"
    code, _, err = annexa(capsys, history.config, "export", "--from", early, "--to", late)
    assert code == 2 and "--out FILE.zip is required" in err


# --- tampering: one bundle, altered in every way ------------------------------------------

@pytest.fixture(scope="module")
def sealed(moto_server, tmp_path_factory) -> tuple[Path, Path]:
    """A bundle of runs #2 to #4 (run #1 anchors it) from SQLite, and the signing key."""
    requests.post(f"{moto_server}/moto-api/reset", timeout=10).raise_for_status()
    folder = tmp_path_factory.mktemp("sealed")
    history = build_history(folder, f"sqlite:///{folder / 'annexa.db'}", moto_server)
    assert main(["--config", str(history.config), "collect"]) == 0  # run 4: nothing changed
    out = folder / "bundle.zip"
    assert main(["--config", str(history.config), "export", "--from",
                 history.after[1].isoformat(), "--to", "2100-01-01", "--out", str(out)]) == 0
    return out, folder / "signing.key"


def _rewrite(bundle: Path, dest: Path, change: Callable[[dict[str, bytes]], None]) -> Path:
    members = _members(bundle)
    change(members)
    with zipfile.ZipFile(dest, "w") as zf:
        for name, body in members.items():
            zf.writestr(name, body)
    return dest


def _edit_manifest(change: Callable[[dict], None]) -> Callable[[dict[str, bytes]], None]:
    def edit(members: dict[str, bytes]) -> None:
        manifest = json.loads(members["manifest.json"])
        change(manifest)
        members["manifest.json"] = json.dumps(manifest).encode()
    return edit


def _first(manifest: dict, status: str) -> dict:
    return next(r for r in manifest["results"] if r["status"] == status)


def _edit_evidence(members: dict[str, bytes]) -> None:
    name = sorted(n for n in members if n.startswith("evidence/"))[0]
    members[name] = members[name].replace(b'"', b"'", 1)


def _drop_evidence(members: dict[str, bytes]) -> None:
    del members[sorted(n for n in members if n.startswith("evidence/"))[0]]


def _add_file(members: dict[str, bytes]) -> None:
    members["evidence/extra.json"] = b"{}"


def _remove_run(index: int) -> Callable[[dict[str, bytes]], None]:
    return _edit_manifest(lambda m: m["runs"].pop(index))


def _swap_status(manifest: dict) -> None:
    _first(manifest, "fail")["status"] = "pass"


def _swap_with_digest(manifest: dict) -> None:
    result = _first(manifest, "fail")
    result["status"] = "pass"
    result["result_digest"] = ledger.result_digest(result["check"], result["subject"], "pass",
                                                   result["reason"], result["evidence"])


def _swap_two(manifest: dict) -> None:
    failing, passing = _first(manifest, "fail"), _first(manifest, "pass")
    failing["status"], passing["status"] = passing["status"], failing["status"]


def _move_result(manifest: dict) -> None:
    result = _first(manifest, "fail")
    later = [r["header"]["run"] for r in manifest["runs"]
             if r["header"]["run"] > result["proof"]["run"]]
    result["proof"]["run"] = later[0]


def _rename_evidence(members: dict[str, bytes]) -> None:
    manifest = json.loads(members["manifest.json"])
    version = manifest["resources"][0]
    old = version["digest"]
    body = members[f"evidence/{old}.json"] + b" "
    new = hashlib.sha256(body).hexdigest()
    del members[f"evidence/{old}.json"]
    members[f"evidence/{new}.json"] = body
    for entry in manifest["evidence"]:
        if entry["digest"] == old:
            entry["digest"], entry["file"] = new, f"evidence/{new}.json"
    version["digest"], version["file"] = new, f"evidence/{new}.json"
    for result in manifest["results"]:
        result["evidence"] = [new if d == old else d for d in result["evidence"]]
        result["result_digest"] = ledger.result_digest(
            result["check"], result["subject"], result["status"], result["reason"],
            result["evidence"])
    members["manifest.json"] = json.dumps(manifest).encode()


def _edit_header(manifest: dict) -> None:
    manifest["runs"][1]["header"]["status"] = "complete" if manifest["runs"][1]["header"][
        "status"] != "complete" else "partial"


def _rehash_header(manifest: dict) -> None:
    run = manifest["runs"][1]
    run["header"]["resources"] += 1
    run["chain_hash"] = ledger.chain_hash(run["header"])


def _claim_pass(manifest: dict) -> None:
    control = next(c for c in manifest["controls"] if "fail" in c["status"])
    control["status"] = ["pass"] * len(control["status"])


def _edit_report(members: dict[str, bytes]) -> None:
    members["report.html"] = members["report.html"].replace(b">fail<", b">pass<")


def _other_pem() -> bytes:
    return Ed25519PrivateKey.generate().public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def _replace_key(members: dict[str, bytes]) -> None:
    members["public_key.pem"] = _other_pem()


def _replace_key_and_id(members: dict[str, bytes]) -> None:
    pem = _other_pem()
    members["public_key.pem"] = pem
    public = serialization.load_pem_public_key(pem)
    manifest = json.loads(members["manifest.json"])
    manifest["public_key"]["key_id"] = ledger.key_id(public)  # type: ignore[arg-type]
    members["manifest.json"] = json.dumps(manifest).encode()


@pytest.mark.parametrize("change, expected", [
    pytest.param(_edit_evidence, r"evidence/[0-9a-f]{64}\.json: content does not match its "
                 r"digest", id="edited-evidence-file"),
    pytest.param(_drop_evidence, r"evidence/[0-9a-f]{64}\.json: missing", id="removed-file"),
    pytest.param(_add_file, r"evidence/extra\.json: not listed", id="added-file"),
    pytest.param(_remove_run(0), r"run \d+ \(#3, source aws-test\): run #2 is missing from "
                 r"the window \(the chain jumps from #1 to #3\)", id="removed-first-run"),
    pytest.param(_remove_run(1), r"run #3 is missing from the window", id="removed-middle-run"),
    pytest.param(_remove_run(2), r"the window is runs #2 to #4 but the bundle holds #2 to #3",
                 id="removed-last-run"),
    pytest.param(_edit_manifest(lambda m: m.update(anchor=None)),
                 r"the run before it \(#1\), which anchors the chain, is missing",
                 id="removed-anchor"),
    pytest.param(_edit_manifest(_swap_status), r"result of \S+ on \S+ \(run \d+\): its content "
                 r"does not match its digest", id="swapped-result"),
    pytest.param(_edit_manifest(_swap_two), r"result of \S+ on \S+ \(run \d+\): its content "
                 r"does not match its digest", id="swapped-two-results"),
    pytest.param(_edit_manifest(_swap_with_digest), r"result of \S+ on \S+ \(run \d+\): not in "
                 r"the Merkle root of run", id="swapped-result-rehashed"),
    pytest.param(_edit_manifest(_move_result), r"result of \S+ on \S+ \(run \d+\): (not in "
                 r"the Merkle root of run|its proof gives run \d+ a different number of leaves)",
                 id="result-moved-to-another-run"),
    pytest.param(_rename_evidence, r"resource version \S+ \([0-9a-f]{64}\): not in the Merkle "
                 r"root of run", id="evidence-replaced-with-its-digest"),
    pytest.param(_edit_manifest(_edit_header), r"run \d+ \(#3, source aws-test\): its header "
                 r"does not match its chain hash", id="edited-run"),
    pytest.param(_edit_manifest(_rehash_header), r"run \d+ \(#3, source aws-test\): its "
                 r"signature is not valid", id="edited-run-rehashed"),
    pytest.param(_edit_manifest(_claim_pass), r"control A\.\S+ is stated pass at .* but its "
                 r"results show failure", id="status-claimed-pass"),
    pytest.param(_edit_report, r"report\.html: does not match manifest\.json", id="edited-report"),
    pytest.param(_replace_key, r"public_key\.pem: key [0-9a-f]{64} is not the key", id="new-key"),
    pytest.param(_replace_key_and_id, r"run \d+ \(#1, source aws-test\): signed by key "
                 r"[0-9a-f]{64}, not by the bundle's public key", id="new-key-and-id"),
])
def test_tampering_is_detected_and_named(sealed, tmp_path, capsys, change, expected):
    bundle, _ = sealed
    assert _verify(capsys, bundle)[0] == 0, "the untouched bundle verifies"
    code, text = _verify(capsys, _rewrite(bundle, tmp_path / "tampered.zip", change))
    assert code == 1, text
    assert text.startswith("bundle BROKEN: "), text
    assert re.search(expected, text), text


def test_a_bundle_resigned_with_another_key_fails_against_the_real_key(sealed, tmp_path,
                                                                       capsys):
    bundle, key = sealed
    forger = Ed25519PrivateKey.generate()
    pem = forger.public_key().public_bytes(serialization.Encoding.PEM,
                                           serialization.PublicFormat.SubjectPublicKeyInfo)
    forged_id = ledger.key_id(forger.public_key())

    def resign(members: dict[str, bytes]) -> None:
        manifest = json.loads(members["manifest.json"])
        for entry in [manifest["anchor"], *manifest["runs"]]:
            entry["key_id"] = forged_id
            entry["signature"] = forger.sign(bytes.fromhex(entry["chain_hash"])).hex()
        manifest["public_key"]["key_id"] = forged_id
        members["manifest.json"] = json.dumps(manifest).encode()
        members["public_key.pem"] = pem
        members["report.html"] = render_report(manifest).encode()

    forged = _rewrite(bundle, tmp_path / "forged.zip", resign)
    code, text = _verify(capsys, forged, "--public-key", str(key))
    assert code == 1
    assert f"public_key.pem: wrong key: the bundle carries key {forged_id}" in text
    other = tmp_path / "other.pem"
    other.write_bytes(_other_pem())
    code, text = _verify(capsys, bundle, "--public-key", str(other))
    assert code == 1 and "public_key.pem: wrong key" in text
    # A hex key is accepted too, and the right one passes.
    raw = ledger.load_public_key(key)
    hex_key = tmp_path / "key.hex"
    hex_key.write_text(ledger.public_raw(raw).hex())
    assert _verify(capsys, bundle, "--public-key", str(hex_key))[0] == 0


def test_a_report_from_another_renderer_is_flagged_not_compared(sealed, tmp_path, capsys):
    def older(members: dict[str, bytes]) -> None:
        _edit_manifest(lambda m: m["report"].update(renderer=0))(members)
        members["report.html"] = b"<p>rendered by another version</p>"

    code, text = _verify(capsys, _rewrite(sealed[0], tmp_path / "older.zip", older))
    assert code == 0, text
    assert "warning: report.html was rendered by report renderer 0" in text
    assert "the report was not compared with manifest.json" in text


def test_unreadable_inputs(sealed, tmp_path, capsys):
    bundle, _ = sealed
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"not a zip")
    code, text = _verify(capsys, junk)
    assert code == 1 and "not a readable zip file" in text
    code, text = _verify(capsys, tmp_path / "absent.zip")
    assert code == 2 and "no such bundle file" in text
    bad_key = tmp_path / "bad.key"
    bad_key.write_text("hello")
    code, text = _verify(capsys, bundle, "--public-key", str(bad_key))
    assert code == 2 and "--public-key" in text
    broken = _rewrite(bundle, tmp_path / "broken.zip",
                      lambda m: m.update({"manifest.json": b"{\"format\": "}))
    code, text = _verify(capsys, broken)
    assert code == 1 and "manifest.json: not valid JSON" in text
    truncated = _rewrite(bundle, tmp_path / "truncated.zip",
                         _edit_manifest(lambda m: m.pop("results")))
    code, text = _verify(capsys, truncated)
    assert code == 1 and "manifest.json: malformed (KeyError: 'results')" in text


def _symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16  # as `zip --symlinks` stores one
    return info


@pytest.mark.parametrize("entry, body, expected", [
    ("../x", b"{}", "'../x' climbs out of the target directory"),
    ("evidence/../../../x", b"{}", "'evidence/../../../x' climbs out of the target directory"),
    ("/tmp/annexa-planted", b"{}", "'/tmp/annexa-planted' is an absolute path"),
    ("C:/Windows/x", b"{}", "'C:/Windows/x' is an absolute path"),
    ("evidence\\..\\..\\x", b"{}", "'evidence\\\\..\\\\..\\\\x' has a backslash"),
    (_symlink("evidence/passwd.json", "/etc/passwd"), b"/etc/passwd",
     "'evidence/passwd.json' is a symbolic link"),
    ("manifest.json", b"{}", "'manifest.json' appears twice"),
], ids=["dot-dot", "nested-dot-dot", "absolute", "drive", "backslash", "symlink", "twice"])
def test_entries_that_would_land_outside_the_target_are_refused_by_name(
        sealed, tmp_path, capsys, monkeypatch, entry, body, expected):
    hostile = tmp_path / "hostile.zip"
    with zipfile.ZipFile(sealed[0]) as source, zipfile.ZipFile(hostile, "w") as out:
        for info in source.infolist():
            out.writestr(info, source.read(info))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it writes
            out.writestr(entry, body)
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    before = sorted(tmp_path.rglob("*"))
    code, text = _verify(capsys, hostile)
    assert code == 1, text
    assert text.startswith(f"bundle BROKEN: zip entry {expected}"), text
    assert text.rstrip().endswith("the bundle is refused"), text
    assert sorted(tmp_path.rglob("*")) == before, "verify-bundle writes nothing"
    assert not Path("/tmp/annexa-planted").exists()


def test_hostile_names_are_text_in_the_report_and_the_bundle_verifies(tmp_path, capsys):
    with seeded_service(tmp_path) as seeded:
        auditor, _ = tokens.create(seeded.engine, role="auditor", name="report")
        answer = requests.get(f"{seeded.url}/exports/bundle", headers={
            "Authorization": f"Bearer {auditor}"}, params={
            "from": stamp(seeded.first_finished - timedelta(hours=1)),
            "to": stamp(seeded.second_finished)}, timeout=120)
    assert answer.status_code == 200, answer.text
    bundle = tmp_path / "hostile.zip"
    bundle.write_bytes(answer.content)
    report = _members(bundle)["report.html"].decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report
    assert "<script" not in report and "<img" not in report and "onerror=alert" not in report \
        .replace("onerror=alert(2)&gt;", "")
    assert "\x1b" not in report, "an escape sequence is shown, not sent"
    assert "\u202e" not in report, "a bidi override cannot reorder what the auditor reads"
    code, text = _verify(capsys, bundle)
    assert code == 0, text


@pytest.mark.parametrize("size", range(1, 34))
def test_merkle_paths_match_the_ledger(size):
    packed = b"".join(hashlib.sha256(bytes([i])).digest() for i in range(size))
    tree = MerkleTree(packed)
    assert tree.root() == ledger.merkle_root(packed)
    for index in range(size):
        path = tree.path(index)
        assert path == ledger.inclusion_proof(packed, index)
        leaf = packed[index * 32:(index + 1) * 32]
        assert ledger.verify_inclusion(leaf, index, size, path, tree.root())


def test_a_bundle_is_one_zip_readable_in_memory(sealed):
    bundle, _ = sealed
    with zipfile.ZipFile(io.BytesIO(bundle.read_bytes())) as zf:
        names = zf.namelist()
    assert names[:3] == ["manifest.json", "public_key.pem", "report.html"]
    assert all(n.startswith("evidence/") and n.endswith(".json") for n in names[3:])
