"""People joined across five sources, from the store alone: N people in a Google Workspace
customer (the authoritative identity provider), each with an Entra ID user, an IAM user in each
of two AWS accounts and an Azure role assignment, stored through the pipeline as their sources
would store them; then one run of the derived source `annexa-people` (read, join, judge, seal)
in a process of its own, timed, with its peak RSS. Every tenth person has left and every
twentieth of those keeps an AWS key, so the checks have leftovers to name.

    python bench/people.py                      # 1,000 and 10,000 people, SQLite
    python bench/people.py --n 10000 --db postgresql
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.measure import database, run_child

DOMAIN = "example.com"
SOURCES = ("workspace", "entra", "aws-a", "aws-b", "azure")


def _email(i: int) -> str:
    return f"person{i:06d}@{DOMAIN}"


def _left(i: int) -> bool:
    return i % 10 == 0


def _stream(source: str, n: int) -> Iterator[object]:
    from collector.model import Scope

    if source == "workspace":
        scope = Scope("google_workspace", "C0bench", "google_workspace:customer:C0bench")
        yield scope
        for i in range(n):
            yield scope.resource("google_workspace.user", f"google_workspace:user:{i}", {
                "id": str(i), "primaryEmail": _email(i), "suspended": _left(i),
                "isAdmin": i % 500 == 0, "isEnrolledIn2Sv": i % 7 != 0})
    elif source == "entra":
        scope = Scope("entra", "tenant", "entra:tenant:bench")
        yield scope
        for i in range(n):
            yield scope.resource("entra.user", f"entra:user:{i:032x}", {
                "id": f"{i:032x}", "mail": _email(i), "userPrincipalName": _email(i),
                "accountEnabled": not _left(i), "userType": "Member",
                "userRegistrationDetails": {"isAdmin": False, "isMfaRegistered": True}})
    elif source.startswith("aws-"):
        account = "111111111111" if source == "aws-a" else "222222222222"
        scope = Scope("aws", account, f"aws:account:{account}")
        yield scope
        for i in range(n):
            leftover = _left(i) and i % 200 == 0
            keys = [{"slot": 1, "active": not _left(i) or leftover}]
            yield scope.resource("aws.iam.user", f"arn:aws:iam::{account}:user/{_email(i)}", {
                "UserName": _email(i), "Arn": f"arn:aws:iam::{account}:user/{_email(i)}",
                "AttachedManagedPolicies": [], "UserPolicyList": [], "Tags": [],
                "credential_report": {"password_enabled": False, "mfa_active": True,
                                      "access_keys": keys}})
    else:
        sub = "/subscriptions/33333333-3333-3333-3333-333333333333"
        scope = Scope("azure", sub, sub)
        yield scope
        for i in range(n):
            rid = f"{sub}/providers/Microsoft.Authorization/roleAssignments/{i:032x}"
            yield scope.resource("azure.authorization.role_assignment", rid, {
                "id": rid, "properties": {
                    "principalId": f"{i:032x}", "principalType": "User", "scope": sub,
                    "roleDefinitionId": f"{sub}/providers/Microsoft.Authorization/"
                                        "roleDefinitions/acdd72a7-3385-48ef-bd42-f606fba81ae7"}})


def _config(url: str, workdir: Path):  # type: ignore[no-untyped-def]
    from collector.config import Config

    return Config.model_validate({
        "database": url, "signing_key": str(workdir / "bench.key"),
        "sources": [{"name": s, "kind": k, **extra} for s, k, extra in (
            ("workspace", "google_workspace", {"admin_email": f"admin@{DOMAIN}"}),
            ("entra", "entra", {"tenant_id": "00000000-0000-0000-0000-00000000000b"}),
            ("aws-a", "aws", {"regions": ["us-east-1"]}),
            ("aws-b", "aws", {"regions": ["us-east-1"]}),
            ("azure", "azure", {"tenant_id": "00000000-0000-0000-0000-00000000000b"}))],
        "people": {"authoritative": "workspace"}})


def seed(url: str, n: int, workdir: Path) -> None:
    from checks.registry import load_all
    from collector import migrate
    from collector.db import engine_for
    from collector.ledger import load_or_create_signer
    from collector.pipeline import collect_source

    migrate.upgrade(engine_for(url, check_schema=False))
    load_all()
    engine = engine_for(url)
    cfg = _config(url, workdir)
    signer = load_or_create_signer(cfg.signing_key)
    for source in cfg.sources:
        out = collect_source(engine, source, signer, items=_stream(source.name, n),
                             writer="inline")
        assert out.status == "complete", (source.name, out.status)
    print(json.dumps({}))


def join(url: str, workdir: Path) -> None:
    from checks.registry import load_all
    from collector.db import engine_for
    from collector.ledger import load_or_create_signer
    from collector.people.join import join as people_join
    from collector.people.mapping import Mapping
    from collector.people.run import collect_people

    load_all()
    engine = engine_for(url)
    cfg = _config(url, workdir)
    with engine.connect() as conn:  # the join alone, as the run does it first
        started = time.monotonic()
        people_join(conn, "workspace", list(SOURCES), Mapping()).close()
        join_seconds = time.monotonic() - started
    started = time.monotonic()
    out = collect_people(engine, cfg, load_or_create_signer(cfg.signing_key))
    seconds = time.monotonic() - started
    print(json.dumps({"seconds": seconds, "join_seconds": join_seconds, "status": out.status,
                      "records": out.stats.resources,
                      "results": out.stats.results,
                      "failures": out.stats.by_status.get("fail", 0),
                      "writer": out.extra["writer"],
                      "writer_peak_rss_kb": out.extra.get("writer_peak_rss_kb"),
                      "own_peak_rss_kb": out.extra.get("collector_peak_rss_kb_with_writer")}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--child", nargs=3, metavar=("WHAT", "URL", "N"), help=argparse.SUPPRESS)
    parser.add_argument("--workdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        what, url, n = args.child
        workdir = Path(args.workdir)
        seed(url, int(n), workdir) if what == "seed" else join(url, workdir)
        return
    print(f"{'db':<11} {'people':>7} {'sources':>7} {'records':>8} {'results':>8} "
          f"{'fail':>6} {'join s':>7} {'peak RSS':>9}")
    with tempfile.TemporaryDirectory(prefix="annexa-bench-") as tmp:
        workdir = Path(tmp)
        for n in args.n:
            with database(args.db, workdir) as url:
                run_child([__file__, "--workdir", str(workdir), "--child", "seed", url, str(n)])
                for which in ("first", "unchanged"):
                    run = run_child([__file__, "--workdir", str(workdir), "--child", "join",
                                     url, str(n)])
                    o = run.output
                    # Peak RSS is the largest of the run's processes (wait4's), the writer
                    # process's included; with one, each process's own is said apart.
                    writer = (f": the run {o['own_peak_rss_kb'] / 1024:.0f} MB, the writer "
                              f"{o['writer_peak_rss_kb'] / 1024:.0f} MB"
                              if o["writer_peak_rss_kb"] else "")
                    print(f"{args.db:<11} {n:>7} {len(SOURCES):>7} {o['records']:>8} "
                          f"{o['results']:>8} {o['failures']:>6} {o['seconds']:>7.1f} "
                          f"{run.peak_rss_mb:>7.0f}MB {which} run ({o['status']}; the join "
                          f"itself {o['join_seconds']:.1f} s; writer {o['writer']}{writer})",
                          flush=True)


if __name__ == "__main__":
    main()
