"""The Statement of Applicability: loaded into the ledger, changed over time, read as of any
date; its CSV and HTML forms; bad files refused whole, naming the line; excluded controls never
fail."""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile

import pytest
import yaml

from tests.helpers import annexa, controls_json, emulator_client, write_config
from tests.manual_support import (
    CONTROL_IDS,
    EXAMPLE_SOA,
    by_control,
    counts,
    instant,
    manual_config,
    rows,
    run_json,
    upgraded,
    verified,
)


def _second_version(path, tmp_path):
    """The example SoA with A.7.6 now included, A.8.30's reason reworded and A.5.2 dropped."""
    data = yaml.safe_load(EXAMPLE_SOA.read_text())
    data["controls"]["A.7.6"] = {"applicable": True, "justification": "New server room",
                                 "owner": "facilities@example.com", "implementation": "planned"}
    data["controls"]["A.8.30"]["justification"] = "Still no outsourced development."
    del data["controls"]["A.5.2"]
    out = tmp_path / "soa-v2.yaml"
    out.write_text(yaml.safe_dump(data))
    return out


def test_soa_versions_are_kept_and_read_as_of_any_date(tmp_path, database_url, capsys):
    config = upgraded(capsys, manual_config(tmp_path, database_url))
    before = instant()
    code, out, err = annexa(capsys, config, "soa", "load", str(EXAMPLE_SOA))
    assert code == 0, err
    assert "SoA loaded (93 controls; 93 changed" in out
    first = counts(database_url)
    code, out, _ = annexa(capsys, config, "soa", "load", str(EXAMPLE_SOA))
    assert code == 0 and "SoA unchanged (93 controls); nothing stored" in out
    assert counts(database_url) == first, "an unchanged load adds no run, blob or version"
    between = instant()

    code, out, err = annexa(capsys, config, "soa", "load", str(_second_version(EXAMPLE_SOA,
                                                                              tmp_path)))
    assert code == 0, err
    assert "(92 controls; 3 changed: A.5.2, A.7.6, A.8.30)" in out
    after = instant()

    empty = run_json(capsys, config, "soa", "--format", "json", "--at", before)
    assert empty["soa_version"] is None
    assert {r["applicable"] for r in empty["controls"]} == {"not stated"}

    old = run_json(capsys, config, "soa", "--format", "json", "--at", between)
    new = run_json(capsys, config, "soa", "--format", "json", "--at", after)
    assert old["soa_version"]["seq"] == 1 and new["soa_version"]["seq"] == 2
    old_rows, new_rows = by_control(old), by_control(new)
    assert old_rows["A.7.6"]["applicable"] == "no"
    assert old_rows["A.7.6"]["justification"].startswith("We run no secure areas")
    assert old_rows["A.7.6"]["status"] == "not_applicable"
    assert new_rows["A.7.6"]["applicable"] == "yes"
    assert new_rows["A.7.6"]["implementation"] == "planned"
    assert new_rows["A.7.6"]["status"] == "manual", "included, and not yet attested"
    assert old_rows["A.5.2"]["applicable"] == "yes"
    assert new_rows["A.5.2"]["applicable"] == "not stated"
    assert old_rows["A.8.30"]["justification"] != new_rows["A.8.30"]["justification"]
    assert old_rows["A.5.1"] == new_rows["A.5.1"]
    assert new == run_json(capsys, config, "soa", "--format", "json", "--at", after)

    # `controls --at` agrees, with the justification beside the status.
    then = by_control(controls_json(capsys, config, "--at", between))
    assert then["A.7.6"]["status"] == "not_applicable"
    assert then["A.7.6"]["soa"]["applicable"] is False
    assert then["A.7.6"]["soa"]["justification"].startswith("We run no secure areas")
    assert by_control(controls_json(capsys, config))["A.7.6"]["soa"]["applicable"] is True

    # The history is intervals: the changed controls' first versions end at the second run.
    history = rows(database_url, "SELECT key, valid_from_run, valid_to_run FROM "
                                 "resource_versions WHERE source = 'annexa-soa' AND key IN "
                                 "('annexa:soa:A.7.6', 'annexa:soa:A.5.2', 'annexa:soa:A.5.1')"
                                 " ORDER BY key, valid_from_run")
    assert [tuple(r) for r in history] == [
        ("annexa:soa:A.5.1", 1, None), ("annexa:soa:A.5.2", 1, 2),
        ("annexa:soa:A.7.6", 1, 2), ("annexa:soa:A.7.6", 2, None)]
    verified(capsys, config)


def test_csv_and_html_list_every_control_exactly_once(tmp_path, database_url, capsys):
    soa = tmp_path / "soa.yaml"
    soa.write_text(EXAMPLE_SOA.read_text().replace(
        "    how: >-\n      Information security policy",
        "    how: >-\n      <script>alert(1)</script> Information security policy", 1))
    config = upgraded(capsys, manual_config(tmp_path, database_url, soa="soa.yaml"))
    assert annexa(capsys, config, "soa", "load")[0] == 0, "the configured file, by default"
    code, _, err = annexa(capsys, config, "attest", "A.5.1", "--statement", "Policies approved",
                          "--owner", "ciso@example.com")
    assert code == 0, err

    code, out, _ = annexa(capsys, config, "soa", "--format", "csv")
    assert code == 0
    table = list(csv.DictReader(io.StringIO(out)))
    assert [r["control"] for r in table] == CONTROL_IDS
    assert list(table[0]) == ["control", "title", "theme", "applicable", "justification",
                              "implementation", "owner", "how", "checks", "attestations",
                              "status", "last_evidence_at"]
    rows_by_id = {r["control"]: r for r in table}
    assert rows_by_id["A.5.1"]["status"] == "pass" and rows_by_id["A.5.1"]["attestations"]
    assert rows_by_id["A.5.1"]["last_evidence_at"]
    assert rows_by_id["A.7.6"]["applicable"] == "no"
    assert rows_by_id["A.7.6"]["status"] == "not_applicable"
    assert "aws.kms.key_rotation_enabled" in rows_by_id["A.8.24"]["checks"].split()

    code, page, _ = annexa(capsys, config, "soa", "--format", "html")
    assert code == 0 and page.startswith("<!DOCTYPE html>")
    assert page.count('<tr id="') == len(CONTROL_IDS) == 93
    for control_id in CONTROL_IDS:
        assert page.count(f'<tr id="{control_id}">') == 1, control_id
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    verified(capsys, config)


BAD_FILES = [
    ("controls:\n  A.5.1:\n    applicable: true\n    implementation: implemented\n"
     "  A.9.4:\n    applicable: true\n    implementation: planned\n",
     "soa.yaml:5: 'A.9.4' is not an Annex A 2022 control id"),
    ("controls:\n  A.5.1:\n    applicable: true\n    implementation: implemented\n"
     "  A.7.4:\n    applicable: false\n    owner: facilities@example.com\n",
     "soa.yaml:5: A.7.4: an excluded control (applicable: false) needs a justification"),
    ("controls:\n  A.7.4:\n    applicable: false\n    justification: '   '\n",
     "soa.yaml:2: A.7.4: an excluded control (applicable: false) needs a justification"),
    ("controls:\n  A.5.1:\n    applicable: true\n    implementation: implemented\n"
     "  A.5.1:\n    applicable: false\n    justification: twice\n",
     "soa.yaml:5: 'A.5.1' is given twice (first on line 2)"),
    ("controls:\n  A.5.1:\n    applicable: true\n    implementation: done\n",
     "soa.yaml:4: A.5.1.implementation: Input should be 'implemented'"),
    ("controls:\n  A.5.1:\n    applicable: yes please\n    implementation: implemented\n",
     "soa.yaml:3: A.5.1.applicable: Input should be a valid boolean"),
    ("controls:\n  A.5.1:\n    applicable: true\n    implementation: implemented\n"
     "    owners: ciso@example.com\n",
     "soa.yaml:5: A.5.1.owners: Extra inputs are not permitted"),
    ("controls:\n  A.5.1:\n    applicable: true\n    implementation: implemented\n"
     "    owner: the ciso\n",
     "soa.yaml:2: A.5.1: owner 'the ciso' is not an email address"),
    ("controls:\n  A.5.1:\n    applicable: true\n", "soa.yaml:2: A.5.1: an applicable control "
                                                     "needs an implementation status"),
    ("controls:\n  A.5.1: [applicable]\n", "soa.yaml:2: A.5.1: expected a mapping"),
    ("control:\n  A.5.1: {}\n", "soa.yaml:1: unknown key 'control'"),
    ("controls:\n  A.5.1:\n    applicable: true\n  - oops\n", "soa.yaml:4: invalid YAML"),
    ("", "soa.yaml:1: expected a mapping with a `controls:` key"),
]


def test_bad_soa_files_name_the_line_and_store_nothing(tmp_path, database_url, capsys):
    config = upgraded(capsys, manual_config(tmp_path, database_url))
    assert annexa(capsys, config, "soa", "load", str(EXAMPLE_SOA))[0] == 0
    good = counts(database_url)
    path = tmp_path / "soa.yaml"
    for content, expected in BAD_FILES:
        path.write_text(content)
        code, out, err = annexa(capsys, config, "soa", "load", str(path))
        assert code == 2, (content, out, err)
        assert "the Statement of Applicability was not loaded" in err
        assert f"{tmp_path}/{expected}" in err, (expected, err)
        assert counts(database_url) == good, f"nothing is stored for {expected!r}"
    path.write_text("controls:\n"
                    "  A.9.4:\n    applicable: true\n    implementation: planned\n"
                    "  A.5.9:\n    applicable: true\n    implementation: implemented\n"
                    "  A.7.5:\n    applicable: false\n")
    code, _, err = annexa(capsys, config, "soa", "load", str(path))
    assert code == 2
    assert "soa.yaml:2: 'A.9.4'" in err and "soa.yaml:8: A.7.5: an excluded control" in err, \
        "every problem of the file is named, not only the first"
    code, _, err = annexa(capsys, config, "soa", "load", str(tmp_path / "missing.yaml"))
    assert code == 2 and f"{tmp_path}/missing.yaml: no such file" in err
    code, _, err = annexa(capsys, config, "soa", "load")
    assert code == 2 and "give the SoA file, or name it as `soa:`" in err
    assert counts(database_url) == good
    assert by_control(run_json(capsys, config, "soa", "--format", "json"))["A.7.6"][
        "applicable"] == "no", "the SoA in force is still the good one"
    verified(capsys, config)


def test_excluded_controls_never_fail_and_collect_loads_the_configured_soa(
        tmp_path, database_url, moto_url, capsys):
    # An empty account: no AWS Config recorder, so aws.config.recording_in_region fails A.8.9.
    emulator_client(moto_url)("iam", "us-east-1").create_user(UserName="alice")
    config = write_config(tmp_path, database_url, moto_url, regions=["us-east-1"])
    soa = tmp_path / "soa.yaml"
    shutil.copy(EXAMPLE_SOA, soa)
    excluded = EXAMPLE_SOA.read_text().replace(
        "  A.8.9:  # Configuration management\n    applicable: true\n"
        "    justification: Risk assessment\n    owner: platform@example.com\n"
        "    implementation: implemented\n",
        "  A.8.9:  # Configuration management\n    applicable: false\n"
        "    justification: Out of scope for this test\n")
    assert excluded != EXAMPLE_SOA.read_text()
    soa.write_text(excluded)
    settings = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**settings, "soa": "soa.yaml"}))
    assert annexa(capsys, config, "db", "upgrade")[0] == 0

    code, out, err = annexa(capsys, config, "collect")
    assert code == 0, out + err
    assert "soa.yaml: SoA loaded (93 controls; 93 changed" in out
    excluded_at = instant()
    states = by_control(controls_json(capsys, config))
    assert states["A.8.9"]["status"] == "not_applicable"
    (recording,) = [c for c in states["A.8.9"]["checks"] if c["id"].startswith("aws.config.")]
    assert recording["status"] == "fail", "the check still fails: the SoA decides the control"
    assert states["A.8.9"]["soa"]["justification"] == "Out of scope for this test"
    code, out, _ = annexa(capsys, config, "controls")
    assert "A.8.9    not_applicable" in out

    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0 and "SoA unchanged" in out
    soa.write_text(EXAMPLE_SOA.read_text())
    code, out, _ = annexa(capsys, config, "collect")
    assert code == 0 and "(93 controls; 1 changed: A.8.9)" in out
    assert by_control(controls_json(capsys, config))["A.8.9"]["status"] == "fail"
    assert by_control(controls_json(capsys, config, "--at", excluded_at))["A.8.9"][
        "status"] == "not_applicable"

    before = counts(database_url)
    soa.write_text("controls:\n  A.8.9:\n    applicable: false\n")
    code, _, err = annexa(capsys, config, "collect")
    assert code == 2 and "soa.yaml:2: A.8.9: an excluded control" in err
    assert counts(database_url) == before, "a bad SoA stops the collection before it starts"
    verified(capsys, config)

    # A bundle over the exclusion and the re-inclusion carries the SoA entries that explain
    # why A.8.9 read not_applicable with a failing check, and verifies offline.
    bundle = tmp_path / "soa-window.zip"
    code, out, err = annexa(capsys, config, "export", "--from", "2000-01-01", "--to",
                            instant(), "--control", "A.8.9", "--out", str(bundle))
    assert code == 0, out + err
    with zipfile.ZipFile(bundle) as zf:
        manifest = json.loads(zf.read("manifest.json"))
    statuses = {s for c in manifest["controls"] if c["id"] == "A.8.9" for s in c["status"]}
    assert {"not_applicable", "fail"} <= statuses
    assert any(r["key"] == "annexa:soa:A.8.9" for r in manifest["resources"])
    from collector.cli import main

    assert main(["verify-bundle", str(bundle)]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["soa", "--format", "pdf"], "invalid choice: 'pdf'"),
    (["soa", "--at", "last tuesday"], "--at 'last tuesday' is not an ISO 8601"),
])
def test_soa_command_refuses_bad_options(tmp_path, capsys, args, message):
    config = manual_config(tmp_path, f"sqlite:///{tmp_path / 'a.db'}")
    upgraded(capsys, config)
    try:
        code, _, err = annexa(capsys, config, *args)
    except SystemExit as exc:  # argparse exits 2 on an invalid choice
        code, err = exc.code, capsys.readouterr().err
    assert code == 2 and message in err
