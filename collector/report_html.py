"""`report.html` of an evidence bundle: the manifest, for humans.

The page is a pure function of the manifest (no clock, no database, no external asset), so that
`annexa verify-bundle` can render it again and prove that it says what the manifest says.
"""

from __future__ import annotations

import html
from collections import defaultdict
from typing import Any

from collector.bundle_layout import MANIFEST, PUBLIC_KEY, evidence_path
from collector.safe_output import printable

# Bumped whenever the page changes, so that a verifier of another version does not mistake a
# different rendering for an edited report. 2: control characters shown as escapes.
RENDERER = 2


def escape(text: str) -> str:
    """Text of the manifest as HTML text: markup escaped, and controls (ESC, bidi overrides)
    shown as escapes, so a name can neither drive a terminal that prints the page nor reorder
    what the auditor reads."""
    return html.escape(printable(text))

_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em;color:#1d1d1f;padding:0 1em}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ccc}h3{margin-top:1.6em}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ddd;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f4f4f4}code,.mono{font-family:ui-monospace,monospace;
font-size:.92em;word-break:break-all}.status{font-weight:600;padding:.05em .4em;border-radius:3px}
.pass{background:#d8f3dc}.fail{background:#ffd6d6}.stale,.unknown,.error{background:#fff1c2}
.manual,.not_applicable{background:#e8e8ee}.strip span{display:inline-block;width:1.1em;
height:1.1em;margin-right:1px;border-radius:2px}.muted{color:#666}
"""


def _status(status: str) -> str:
    return f'<span class="status {escape(status)}">{escape(status)}</span>'


def _link(digest: str, pruned: set[str]) -> str:
    if digest in pruned:
        return (f'<code>{escape(digest)}</code> '
                '<span class="muted">(body pruned by retention)</span>')
    href = escape(evidence_path(digest))
    return f'<a class="mono" href="{href}">{escape(digest)}</a>'


class _Index:
    """Look-ups over the manifest that every section needs."""

    def __init__(self, manifest: dict[str, Any]) -> None:
        self.runs = {r["header"]["run"]: r["header"] for r in manifest["runs"]}
        self.pruned = {e["digest"] for e in manifest["evidence"] if e.get("pruned")}
        self.results: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for result in manifest["results"]:
            self.results[result["check"]].append(result)
        self.by_key: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        self.by_digest: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for version in manifest["resources"]:
            self.by_key[(version["source"], version["key"])].append(version)
            self.by_digest[(version["source"], version["digest"])].append(version)

    def run_label(self, run_id: int | None, end: bool = False) -> str:
        if run_id is None:
            return "still valid" if end else "-"
        header = self.runs.get(run_id)
        if header is None:
            return f"run {run_id}, {'after' if end else 'before'} the window"
        return f"#{header['seq']} ({header['finished_at']})"

    def evidence_of(self, results: list[dict[str, Any]]) -> list[dict[str, Any]]:
        found: dict[tuple[str, str, str], dict[str, Any]] = {}
        for result in results:
            matches = list(self.by_key.get((result["source"], result["subject"]), []))
            for digest in result["evidence"]:
                matches.extend(self.by_digest.get((result["source"], digest), []))
            for version in matches:
                found[(version["source"], version["key"], version["digest"])] = version
        return sorted(found.values(), key=lambda v: (v["key"], v["valid_from_run"]))


def _point_label(point: dict[str, Any]) -> str:
    if point.get("run") is None:
        return f"window start ({point['at']})"
    return f"after run #{point['seq']} of {point['source']} ({point['at']})"


def _segments(points: list[dict[str, Any]], statuses: list[str]) -> list[tuple[str, str, str]]:
    """Consecutive equal statuses folded into (status, from, until)."""
    out: list[tuple[str, str, str]] = []
    for i, (point, status) in enumerate(zip(points, statuses, strict=True)):
        if out and out[-1][0] == status:
            continue
        until = next((_point_label(points[j]) for j in range(i + 1, len(points))
                      if statuses[j] != status), "window end")
        out.append((status, _point_label(point), until))
    return out


def _runs_table(manifest: dict[str, Any]) -> list[str]:
    html = ["<table><tr><th>seq</th><th>run</th><th>source</th><th>status</th><th>finished</th>"
            "<th>resources</th><th>results</th><th>collection errors</th><th>chain hash</th></tr>"]
    for entry in manifest["runs"]:
        h = entry["header"]
        html.append(
            f"<tr><td>#{h['seq']}</td><td>{h['run']}</td><td>{escape(h['source'])}</td>"
            f"<td>{_status(h['status'])}</td><td>{escape(str(h['finished_at']))}</td>"
            f"<td>{h['resources']}</td><td>{h['results']}</td><td>{len(h['errors'])}</td>"
            f"<td><code>{escape(entry['chain_hash'])}</code></td></tr>")
    html.append("</table>")
    return html


def _summary(manifest: dict[str, Any]) -> list[str]:
    points = manifest["points"]
    html = ["<table><tr><th>control</th><th>title</th><th>at window end</th>"
            "<th>over the window</th></tr>"]
    for control in manifest["controls"]:
        strip = "".join(
            f'<span class="{escape(s)}" title="{escape(_point_label(p))}: {escape(s)}"></span>'
            for p, s in zip(points, control["status"], strict=True))
        html.append(
            f'<tr><td><a href="#{escape(control["id"])}">{escape(control["id"])}</a></td>'
            f"<td>{escape(control['title'])}</td><td>{_status(control['status'][-1])}</td>"
            f'<td class="strip">{strip}</td></tr>')
    html.append("</table>")
    return html


def _control(manifest: dict[str, Any], control: dict[str, Any], index: _Index) -> list[str]:
    cid = escape(control["id"])
    html = [f'<h3 id="{cid}">{cid} {escape(control["title"])} '
            f'<span class="muted">({escape(control["theme"])})</span></h3>']
    if not control["checks"]:
        html.append("<p>No automated check maps to this control: it rests on attestations "
                    "(<em>manual</em>).</p>")
        return html
    html.append("<table><tr><th>status</th><th>from</th><th>until</th></tr>")
    for status, start, until in _segments(manifest["points"], control["status"]):
        html.append(f"<tr><td>{_status(status)}</td><td>{escape(start)}</td>"
                    f"<td>{escape(until)}</td></tr>")
    html.append("</table>")
    results: list[dict[str, Any]] = []
    for check_id in control["checks"]:
        check = manifest["checks"][check_id]
        rows = index.results.get(check_id, [])
        results.extend(rows)
        bad = [r for r in rows if r["status"] in ("fail", "error")]
        html.append(f"<h4><code>{escape(check_id)}</code> {escape(check['title'])} "
                    f"<span class='muted'>({escape(check['severity'])}; "
                    f"{len(rows)} result{'' if len(rows) == 1 else 's'} over the window)"
                    "</span></h4>")
        if not bad:
            html.append("<p>No failing resource in the window.</p>")
            continue
        html.append("<table><tr><th>result</th><th>resource</th><th>reason</th><th>since run</th>"
                    "<th>replaced at run</th><th>evidence</th></tr>")
        for r in sorted(bad, key=lambda r: (r["subject"], r["valid_from_run"])):
            links = "<br>".join(_link(d, index.pruned) for d in r["evidence"]) or "-"
            html.append(
                f"<tr><td>{_status(r['status'])}</td><td><code>{escape(r['subject'])}</code></td>"
                f"<td>{escape(r['reason'])}</td><td>{escape(index.run_label(r['valid_from_run']))}"
                f"</td><td>{escape(index.run_label(r['valid_to_run'], end=True))}</td>"
                f"<td>{links}</td></tr>")
        html.append("</table>")
    evidence = index.evidence_of(results)
    html.append(f"<h4>Evidence files ({len(evidence)} resource versions)</h4>")
    if evidence:
        html.append("<table><tr><th>resource</th><th>kind</th><th>since run</th>"
                    "<th>replaced at run</th><th>evidence file</th></tr>")
        for v in evidence:
            html.append(
                f"<tr><td><code>{escape(v['key'])}</code></td><td>{escape(v['kind'])}</td>"
                f"<td>{escape(index.run_label(v['valid_from_run']))}</td>"
                f"<td>{escape(index.run_label(v['valid_to_run'], end=True))}</td>"
                f"<td>{_link(v['digest'], index.pruned)}</td></tr>")
        html.append("</table>")
    return html


def render_report(manifest: dict[str, Any]) -> str:
    """The whole page; equal manifests give equal bytes."""
    window = manifest["window"]
    index = _Index(manifest)
    selected = ", ".join(manifest["controls_selected"]) or "all Annex A controls"
    title = f"Annexa evidence bundle: {window['from']} to {window['to']}"
    html = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f"<p>Controls: {escape(selected)}. Runs #{window['first_seq']} to "
        f"#{window['last_seq']} of the evidence chain ({len(manifest['runs'])} runs), "
        f"generated {escape(manifest['generated_at'])}. Signed by the Ed25519 key "
        f"<code>{escape(manifest['public_key']['key_id'])}</code> "
        f"(<a href=\"{PUBLIC_KEY}\">{PUBLIC_KEY}</a>).</p>",
        "<p>Trust nothing on this page until you have verified the bundle yourself, offline: "
        "<code>annexa verify-bundle BUNDLE.zip --public-key KEY</code> checks every evidence "
        "file against its digest, every result and file against the Merkle root of its run, "
        "every run against its chain hash, its signature and the run before it, and that this "
        f"page says what <a href=\"{MANIFEST}\">{MANIFEST}</a> says.</p>",
        "<p>The window includes, per source, the last run before its start: the state at the "
        "start rests on it.</p>",
        "<h2>Controls</h2>", *_summary(manifest),
        "<h2>Runs</h2>", *_runs_table(manifest),
        "<h2>Per control</h2>",
    ]
    for control in manifest["controls"]:
        html.extend(_control(manifest, control, index))
    html.append("</body></html>")
    return "\n".join(html) + "\n"
