"""`annexa verify-bundle`: check an evidence bundle with nothing but the zip.

No database and no network: the checks use only the pure ledger functions. In order: the
public key (and, if the auditor brings one, that it is the same key); every run's header against
its chain hash, its signature, and its link to the run before, from the anchor through the
window with no seq missing; every evidence file against its digest; every resource version and
check result against its digest and its inclusion proof in the Merkle root of its run; that each
control is stated `fail` exactly where the results show a failure; and that report.html is the
rendering of manifest.json. The first problem found is reported, naming the file or the link.

Nothing is extracted, but an auditor may unzip the bundle afterwards: an entry that would land
outside the target directory (`..`, an absolute or drive path, a backslash), a symbolic link,
or a name held twice (one entry verified, the other extracted) is refused before anything else.
"""

from __future__ import annotations

import json
import stat
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from collector import ledger
from collector.bundle_layout import FORMAT, MANIFEST, PUBLIC_KEY, REPORT, evidence_path
from collector.canonical import sha256_hex
from collector.report_html import RENDERER, render_report
from collector.soa import KEY_PREFIX as SOA_KEY_PREFIX
from collector.soa import KIND as SOA_KIND

_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError)


@dataclass
class BundleReport:
    path: str
    key_id: str | None = None
    first_seq: int | None = None
    last_seq: int | None = None
    runs: int = 0
    resources: int = 0
    results: int = 0
    files: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def verify_bundle(path: Path | str, public_key: Ed25519PublicKey | None = None) -> BundleReport:
    """Verify the bundle at `path`; `public_key`, if given, must be the key in the bundle."""
    report = BundleReport(str(path))
    try:
        with zipfile.ZipFile(path) as zf:
            for problem in _verify(zf, public_key, report):
                report.problems.append(problem)
                break
    except (zipfile.BadZipFile, OSError) as exc:
        report.problems.append(f"{path}: not a readable zip file ({exc})")
    return report


def unsafe_entry(info: zipfile.ZipInfo, seen: set[str]) -> str | None:
    """Why extracting this entry could write outside the target directory, if it could."""
    name = info.filename
    parts = name.split("/")
    if "\\" in name:
        return "has a backslash, a directory separator on Windows"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "is an absolute path"
    if ".." in parts:
        return "climbs out of the target directory"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "is a symbolic link"
    if name in seen:
        return "appears twice"
    return None


def _verify(zf: zipfile.ZipFile, expected: Ed25519PublicKey | None,
            report: BundleReport) -> Iterator[str]:
    seen: set[str] = set()
    for info in zf.infolist():
        problem = unsafe_entry(info, seen)
        if problem:
            yield f"zip entry {info.filename!r} {problem}: the bundle is refused"
            return
        seen.add(info.filename)
    names = seen
    if MANIFEST not in names:
        yield f"{MANIFEST}: missing from the bundle"
        return
    try:
        manifest = json.loads(zf.read(MANIFEST))
    except ValueError as exc:
        yield f"{MANIFEST}: not valid JSON ({exc})"
        return
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        yield f"{MANIFEST}: not an {FORMAT} manifest"
        return
    try:
        yield from _verify_manifest(zf, names, manifest, expected, report)
    except _MALFORMED as exc:
        yield f"{MANIFEST}: malformed ({type(exc).__name__}: {exc})"


def _verify_manifest(zf: zipfile.ZipFile, names: set[str], manifest: dict[str, Any],
                     expected: Ed25519PublicKey | None, report: BundleReport) -> Iterator[str]:
    for problem in _verify_key(zf, names, manifest, expected):
        yield problem
        return
    trusted = expected or _bundled_key(zf)
    report.key_id = ledger.key_id(trusted)
    for problem in _verify_chain(manifest, trusted, report):
        yield problem
        return
    for problem in _verify_files(zf, names, manifest, report):
        yield problem
        return
    for problem in _verify_records(manifest, report):
        yield problem
        return
    for problem in _verify_posture(manifest, _exclusions(zf, manifest)):
        yield problem
        return
    if REPORT not in names:
        yield f"{REPORT}: missing from the bundle"
    elif manifest["report"]["renderer"] != RENDERER:
        report.warnings.append(
            f"{REPORT} was rendered by report renderer {manifest['report']['renderer']}, this "
            f"annexa has renderer {RENDERER}: the report was not compared with {MANIFEST}, "
            "which alone is verified")
    elif zf.read(REPORT) != render_report(manifest).encode("utf-8"):
        yield f"{REPORT}: does not match {MANIFEST} (the report was edited)"


def _bundled_key(zf: zipfile.ZipFile) -> Ed25519PublicKey:
    key = serialization.load_pem_public_key(zf.read(PUBLIC_KEY))
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError(f"{PUBLIC_KEY} holds a {type(key).__name__}, not an Ed25519 key")
    return key


def _verify_key(zf: zipfile.ZipFile, names: set[str], manifest: dict[str, Any],
                expected: Ed25519PublicKey | None) -> Iterator[str]:
    if PUBLIC_KEY not in names:
        yield f"{PUBLIC_KEY}: missing from the bundle"
        return
    try:
        bundled = _bundled_key(zf)
    except ValueError as exc:
        yield f"{PUBLIC_KEY}: not an Ed25519 public key ({exc})"
        return
    key_id = ledger.key_id(bundled)
    if expected is not None and ledger.key_id(expected) != key_id and not _in_history(
            manifest, ledger.key_id(expected)):
        yield (f"{PUBLIC_KEY}: wrong key: the bundle carries key {key_id}, not the expected key "
               f"{ledger.key_id(expected)}, which is not in its key history either")
        return
    if manifest["public_key"]["key_id"] != key_id:
        yield (f"{PUBLIC_KEY}: key {key_id} is not the key {manifest['public_key']['key_id']} "
               f"that {MANIFEST} names (the public key was replaced)")


def _label(entry: dict[str, Any]) -> str:
    h = entry["header"]
    return f"{MANIFEST}: run {h['run']} (#{h['seq']}, source {h['source']})"


def _in_history(manifest: dict[str, Any], key: str) -> bool:
    """Whether a handover of the bundle names `key` (as the key it retires or introduces):
    a key that only the bundle's list of keys names could have been put there by anyone."""
    return any(key in (entry["header"].get("key_change") or {}).values()
               for entry in [*manifest.get("key_history", []), *manifest["runs"]])


def _trusted_keys(manifest: dict[str, Any], trusted: Ed25519PublicKey,
                  publics: dict[str, Ed25519PublicKey]) -> tuple[set[str], str | None]:
    """The keys that the handovers link to the trusted key: a handover's new key vouches for
    the key it names as its predecessor, and the retired key's co-signature vouches for its
    successor. Each handover must hold: its header its chain hash, its key change the key that
    signed it, both signatures valid."""
    handovers = []
    for entry in [*manifest.get("key_history", []), *manifest["runs"]]:
        change = entry["header"].get("key_change")
        if not change:
            continue
        label = _label(entry)
        if ledger.chain_hash(entry["header"]) != entry["chain_hash"]:
            return set(), f"{label}: its header does not match its chain hash (run record altered)"
        try:
            new = Ed25519PublicKey.from_public_bytes(bytes.fromhex(change["public_key"]))
        except (KeyError, TypeError, ValueError):
            return set(), f"{label}: its key change names no valid public key"
        new_id, old_id = ledger.key_id(new), change.get("previous_key_id")
        old = publics.get(str(old_id))
        if new_id != change.get("key_id") or entry["key_id"] != new_id:
            return set(), f"{label}: its key change does not name the key that signed it"
        if not ledger.verify_signature(new, entry["chain_hash"], entry["signature"]):
            return set(), f"{label}: its signature is not valid for the public key {new_id}"
        if old is None or not ledger.verify_signature(old, entry["chain_hash"],
                                                      entry.get("handover_signature") or ""):
            return set(), f"{label}: its key change is not co-signed by the retired key {old_id}"
        publics[new_id] = new
        handovers.append((str(old_id), new_id))
    linked = {ledger.key_id(trusted)}
    grew = True
    while grew:
        grew = False
        for old_id, new_id in handovers:
            if (old_id in linked) != (new_id in linked):
                linked |= {old_id, new_id}
                grew = True
    return linked, None


def _verify_chain(manifest: dict[str, Any], trusted: Ed25519PublicKey,
                  report: BundleReport) -> Iterator[str]:
    runs, anchor, window = manifest["runs"], manifest["anchor"], manifest["window"]
    if not runs:
        yield f"{MANIFEST}: lists no run"
        return
    publics: dict[str, Ed25519PublicKey] = {ledger.key_id(trusted): trusted}
    for key, hex_key in (manifest.get("keys") or {}).items():
        try:
            public = Ed25519PublicKey.from_public_bytes(bytes.fromhex(hex_key))
        except ValueError:
            yield f"{MANIFEST}: key {key} is not a valid Ed25519 public key"
            return
        if ledger.key_id(public) == key:
            publics.setdefault(key, public)
    linked, problem = _trusted_keys(manifest, trusted, publics)
    if problem:
        yield problem
        return
    history = ledger.KeyHistory(publics.get)
    prev: dict[str, Any] | None = None
    for entry in [anchor, *runs] if anchor else runs:
        label, header = _label(entry), entry["header"]
        if ledger.chain_hash(header) != entry["chain_hash"]:
            yield f"{label}: its header does not match its chain hash (run record altered)"
            return
        if entry["key_id"] not in linked:
            yield (f"{label}: signed by key {entry['key_id']}, not by the bundle's public key "
                   f"{ledger.key_id(trusted)} nor by a key its key history links to it (the "
                   "public key was replaced?)")
            return
        problem = history.step(header["seq"], entry["key_id"], entry["chain_hash"],
                               entry["signature"], header.get("key_change"),
                               entry.get("handover_signature"))
        if problem:
            yield f"{label}: {problem}"
            return
        if prev is None:
            if header["seq"] != 1 and entry is not anchor:
                yield (f"{label}: the run before it (#{header['seq'] - 1}), which anchors the "
                       "chain, is missing (a run was removed)")
                return
            if header["seq"] == 1 and header["prev"] != ledger.GENESIS:
                yield f"{label}: the first run of the chain does not start from the genesis hash"
                return
        else:
            if header["seq"] != prev["header"]["seq"] + 1:
                yield (f"{label}: run #{prev['header']['seq'] + 1} is missing from the window "
                       f"(the chain jumps from #{prev['header']['seq']} to #{header['seq']})")
                return
            if header["prev"] != prev["chain_hash"]:
                yield (f"{label}: its link to run #{prev['header']['seq']} is broken (runs "
                       "removed, replaced or reordered)")
                return
        prev = entry
    first, last = runs[0]["header"]["seq"], runs[-1]["header"]["seq"]
    if (window["first_seq"], window["last_seq"]) != (first, last):
        yield (f"{MANIFEST}: the window is runs #{window['first_seq']} to #{window['last_seq']} "
               f"but the bundle holds #{first} to #{last} (a run was removed)")
        return
    report.runs, report.first_seq, report.last_seq = len(runs), first, last


def _verify_files(zf: zipfile.ZipFile, names: set[str], manifest: dict[str, Any],
                  report: BundleReport) -> Iterator[str]:
    listed = {MANIFEST, PUBLIC_KEY, REPORT}
    for entry in manifest["evidence"]:
        digest = entry["digest"]
        if entry.get("pruned"):
            report.warnings.append(f"evidence {digest}: its body was pruned by retention; only "
                                   "its digest is proved")
            continue
        path = evidence_path(digest)
        listed.add(path)
        if path not in names:
            yield f"{path}: missing from the bundle"
            return
        if sha256_hex(zf.read(path)) != digest:
            yield f"{path}: content does not match its digest (evidence file edited)"
            return
        report.files += 1
    for name in sorted(names - listed):
        yield f"{name}: not listed in {MANIFEST} (a file was added to the bundle)"
        return


def _verify_records(manifest: dict[str, Any], report: BundleReport) -> Iterator[str]:
    runs = {e["header"]["run"]: e["header"] for e in manifest["runs"]}
    digests = {e["digest"] for e in manifest["evidence"]}
    sizes: dict[int, int] = {}
    for v in manifest["resources"]:
        label = f"{MANIFEST}: resource version {v['key']} ({v['digest']})"
        if v["digest"] not in digests:
            yield f"{label}: its evidence file {evidence_path(v['digest'])} is not in the bundle"
            return
        leaf = ledger.resource_leaf(v["key"], v["digest"])
        for problem in _verify_proof(label, leaf, v, runs, sizes):
            yield problem
            return
        report.resources += 1
    for r in manifest["results"]:
        label = f"{MANIFEST}: result of {r['check']} on {r['subject']} (run {r['valid_from_run']})"
        digest = ledger.result_digest(r["check"], r["subject"], r["status"], r["reason"],
                                      r["evidence"])
        if digest != r["result_digest"]:
            yield f"{label}: its content does not match its digest (result altered)"
            return
        missing = [d for d in r["evidence"] if d not in digests]
        if missing:
            yield f"{label}: its evidence {missing[0]} is not in the bundle"
            return
        leaf = ledger.result_leaf(r["check"], r["subject"], digest)
        for problem in _verify_proof(label, leaf, r, runs, sizes):
            yield problem
            return
        report.results += 1


def _verify_proof(label: str, leaf: bytes, row: dict[str, Any], runs: dict[int, dict[str, Any]],
                  sizes: dict[int, int]) -> Iterator[str]:
    proof = row["proof"]
    header = runs.get(proof["run"])
    if header is None:
        yield (f"{label}: its proof is against run {proof['run']}, which is not in the bundle "
               "(a run was removed)")
        return
    if header["source"] != row["source"]:
        yield f"{label}: its proof is against run {proof['run']} of another source"
        return
    valid_to = row["valid_to_run"]
    if not row["valid_from_run"] <= proof["run"] < (valid_to if valid_to is not None
                                                      else proof["run"] + 1):
        yield f"{label}: it is not valid at run {proof['run']}, against which it is proved"
        return
    if sizes.setdefault(proof["run"], proof["size"]) != proof["size"]:
        yield f"{label}: its proof gives run {proof['run']} a different number of leaves"
        return
    if not ledger.verify_inclusion(leaf, proof["index"], proof["size"], proof["path"],
                                   header["merkle_root"]):
        yield (f"{label}: not in the Merkle root of run {proof['run']} (#{header['seq']}): the "
               "record or its proof was altered")


def _state_runs(runs: list[dict[str, Any]], at: datetime) -> dict[str, int]:
    """Per source, the last run that had finished by `at` (as `annexa controls --at` picks)."""
    out: dict[str, int] = {}
    for h in runs:
        if h["finished_at"] and datetime.fromisoformat(h["finished_at"]) <= at:
            out[h["source"]] = max(out.get(h["source"], 0), h["run"])
    return out


def _exclusions(zf: zipfile.ZipFile, manifest: dict[str, Any]
                ) -> dict[str, list[dict[str, Any]]]:
    """Per control, the bundled SoA versions that exclude it (their files were verified)."""
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for version in manifest["resources"]:
        if version["kind"] != SOA_KIND or version["file"] not in zf.namelist():
            continue
        if json.loads(zf.read(version["file"])).get("applicable") is False:
            out[version["key"].removeprefix(SOA_KEY_PREFIX)].append(version)
    return out


def _excluded(versions: list[dict[str, Any]], state: dict[str, int]) -> bool:
    return any(v["source"] in state and v["valid_from_run"] <= state[v["source"]]
               and (v["valid_to_run"] is None or state[v["source"]] < v["valid_to_run"])
               for v in versions)


def _verify_posture(manifest: dict[str, Any],
                    exclusions: dict[str, list[dict[str, Any]]]) -> Iterator[str]:
    """Each control is `fail` at a point exactly when a result of one of its checks fails in
    the state of that point, unless the SoA in force then excludes it (`not_applicable`); the
    mapping of checks to controls agrees with itself."""
    mapped: dict[str, list[str]] = defaultdict(list)
    for check_id, check in manifest["checks"].items():
        for control_id in check["controls"]:
            mapped[control_id].append(check_id)
    fails: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in manifest["results"]:
        if r["status"] == "fail":
            fails[r["check"]].append(r)
    headers = [e["header"] for e in manifest["runs"]]
    window = manifest["window"]
    start, end = (datetime.fromisoformat(window[k]) for k in ("from", "to"))
    expected = [(h["run"], h["seq"], h["finished_at"]) for h in headers
                if start < datetime.fromisoformat(h["finished_at"]) <= end]
    stated = [(p["run"], p["seq"], p["at"]) for p in manifest["points"][1:]]
    if manifest["points"][0]["at"] != window["from"] or stated != expected:
        yield (f"{MANIFEST}: the points of the window's timeline are not its start and the runs "
               "that finished in it (a run was removed or a point altered)")
        return
    for control in manifest["controls"]:
        if sorted(control["checks"]) != sorted(mapped.get(control["id"], [])):
            yield (f"{MANIFEST}: control {control['id']}: its checks do not match the checks "
                   "that map to it")
            return
        if len(control["status"]) != len(manifest["points"]):
            yield f"{MANIFEST}: control {control['id']}: one status per point is expected"
            return
    for i, point in enumerate(manifest["points"]):
        state = _state_runs(headers, datetime.fromisoformat(point["at"]))
        failing = {check for check, rows in fails.items() for r in rows
                   if r["source"] in state and r["valid_from_run"] <= state[r["source"]]
                   and (r["valid_to_run"] is None or state[r["source"]] < r["valid_to_run"])}
        for control in manifest["controls"]:
            fail = any(c in failing for c in control["checks"])
            stated = control["status"][i]
            if _excluded(exclusions.get(control["id"], []), state):
                if stated != "not_applicable":
                    yield (f"{MANIFEST}: control {control['id']} is excluded by the SoA in force"
                           f" at {point['at']} but stated {stated}")
                    return
                continue
            if fail != (stated == "fail"):
                yield (f"{MANIFEST}: control {control['id']} is stated {stated} at {point['at']}"
                       f" but its results {'show' if fail else 'show no'} failure")
                return
