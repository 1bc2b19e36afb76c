"""The GCP connector: streams the projects of an organization, of folders or named projects,
and their resources and IAM policies, from Cloud Asset Inventory (ListAssets) through
google-cloud-asset. One inventory stream per parent covers every project below it. It never
judges."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from collector.model import ALL_REGIONS, FETCH_ERRORS, CollectionError, Resource, Scope
from connectors.gcp.inventory import CredentialsUnavailable, Inventory
from connectors.gcp.kinds import ALL_KINDS, ANCESTOR_TYPES, KINDS, PROJECT, Kind, by_type
from connectors.gcp.settings import Settings
from connectors.http import HttpError, MalformedResponse, Observer
from connectors.spool import KeyedSpool

__all__ = ["KINDS", "CredentialsUnavailable", "Settings", "SourceUnreachable", "collect"]

SERVICE = "cloudasset"
MANAGER = "//cloudresourcemanager.googleapis.com/"
OPERATION = "assets.list"


class SourceUnreachable(RuntimeError):
    """No parent could be read: nothing can be collected from this source."""


def scope_of(name: str) -> Scope:
    """`projects/NUMBER` (or a folder, when a whole folder is unreadable) as its scope."""
    key = MANAGER + name
    # Each listing errors its kinds in every project when it fails, so a kind with no
    # resource in a project is empty there.
    return Scope(provider="gcp", id=key, key=key, kinds=ALL_KINDS)


@dataclass
class _Parent:
    """One parent's projects, as read at the start, or why they could not be."""

    name: str
    projects: list[dict[str, Any]] = field(default_factory=list)
    problem: str | None = None


def collect(settings: Settings, observer: Observer | None = None
            ) -> Iterator[Scope | Resource | CollectionError]:
    """For each parent: the Scope of each project and the project itself, then its resources.
    A parent that cannot be read is a CollectionError for every kind in its scope; a listing
    that fails, one for its kinds in each project of the parent; an asset without its data,
    one for that asset. Raises SourceUnreachable when no parent can be read,
    CredentialsUnavailable when there are no credentials."""
    inventory = Inventory(settings, observer)
    parents = [_projects(inventory, name) for name in settings.parents]
    if all(p.problem is not None for p in parents):
        raise SourceUnreachable("; ".join(f"{p.name}: {p.problem}" for p in parents))
    seen: set[str] = set()
    for parent in parents:
        if parent.problem is not None:
            scope = scope_of(parent.name)
            yield scope
            yield scope.error(SERVICE, ALL_REGIONS, ALL_KINDS, parent.problem)
        else:
            yield from _Stream(inventory, parent, seen, settings.earlier_folders).run()


def _projects(inventory: Inventory, parent: str) -> _Parent:
    """The parent's projects; a project without its full resource name is a malformed
    answer, since its scope is made of that name."""
    try:
        projects = []
        for page in inventory.pages(parent, [by_kind(PROJECT).asset_type]):
            for asset in page:
                name = asset.get("name")
                if not isinstance(name, str) or not name.startswith(MANAGER + "projects/"):
                    raise MalformedResponse(OPERATION, f"a project of {parent} named {name!r}")
                projects.append(asset)
    except HttpError as exc:
        return _Parent(parent, problem=str(exc))
    return _Parent(parent, projects)


def by_kind(name: str) -> Kind:
    return next(kind for kind in KINDS if kind.kind == name)


def _project_of(asset: dict[str, Any]) -> str:
    """`projects/NUMBER`: the first of an asset's ancestors (a project's own name)."""
    name = asset.get("name")
    if asset.get("assetType") == by_kind(PROJECT).asset_type and isinstance(name, str) \
            and name.startswith(MANAGER + "projects/"):
        return name.removeprefix(MANAGER)
    ancestors = asset.get("ancestors")
    first = ancestors[0] if isinstance(ancestors, list) and ancestors else None
    if not isinstance(first, str) or not first.startswith("projects/"):
        raise MalformedResponse(OPERATION, f"asset {asset.get('name')!r} has no project among "
                                           "its ancestors")
    return first


def _data(asset: dict[str, Any]) -> dict[str, Any]:
    resource = asset.get("resource") or {}
    return {"name": asset["name"], "assetType": asset["assetType"],
            "ancestors": asset.get("ancestors", []), "location": resource.get("location"),
            "resource": resource.get("data")}


class _Stream:
    """Everything under one readable parent: its IAM policies first, kept on disk by asset
    name, then its projects and the resources of every other kind, joined with them."""

    def __init__(self, inventory: Inventory, parent: _Parent, seen: set[str],
                 elsewhere: set[str]) -> None:
        self.inventory, self.parent, self.seen = inventory, parent, seen
        self.elsewhere = elsewhere  # folders whose units collect the projects below them
        self.scopes: dict[str, Scope] = {}
        self.skipped: set[str] = set()  # projects an earlier (overlapping) parent collects
        self.audit_configs: dict[str, list[Any]] = {}  # organizations/N, folders/N -> theirs
        self.iam_problem: str | None = None
        self.types = by_type()

    def run(self) -> Iterator[Scope | Resource | CollectionError]:
        with KeyedSpool() as policies:
            self._read_policies(policies)
            yield from self._project_resources(policies)
            yield from self._others(policies)

    def _read_policies(self, policies: KeyedSpool) -> None:
        types = [k.asset_type for k in KINDS if k.iam] + list(ANCESTOR_TYPES)
        try:
            for page in self.inventory.pages(self.parent.name, types, iam=True):
                pairs = []
                for asset in page:
                    name, policy = asset.get("name"), asset.get("iamPolicy") or {}
                    if not isinstance(name, str) or not isinstance(policy, dict):
                        raise MalformedResponse(OPERATION, "an IAM policy asset without a name")
                    if asset.get("assetType") in ANCESTOR_TYPES:
                        self.audit_configs[name.removeprefix(MANAGER)] = list(
                            policy.get("auditConfigs") or [])
                    else:
                        pairs.append((name, policy))
                policies.put(pairs)
                del page
        except HttpError as exc:
            self.iam_problem = str(exc)

    def _scope(self, project: str) -> Iterator[Scope]:
        if project not in self.scopes:
            scope = scope_of(project)
            self.scopes[project] = scope
            self.seen.add(scope.key)
            yield scope

    def _project_resources(self, policies: KeyedSpool
                           ) -> Iterator[Scope | Resource | CollectionError]:
        kept: list[dict[str, Any]] = []
        for asset in self.parent.projects:
            project = _project_of(asset)
            if scope_of(project).key in self.seen or self.elsewhere & set(
                    asset.get("ancestors") or ()):
                self.skipped.add(project)
                continue
            yield from self._scope(project)
            kept.append(asset)
        found = policies.take([a["name"] for a in kept])
        for asset in kept:
            item = self._resource(asset, found.get(asset.get("name")))
            if isinstance(item, Resource):
                self._inherited(item.data)
            yield item

    def _inherited(self, data: dict[str, Any]) -> None:
        """The audit configs of the project's ancestors within the parent read; those above it
        were not read, so what they pass down is unknown."""
        ancestors = [a for a in data["ancestors"][1:] if isinstance(a, str)]
        covered = ancestors[:ancestors.index(self.parent.name) + 1] \
            if self.parent.name in ancestors else []
        data["inheritedAuditConfigs"] = [
            {"ancestor": a, "auditConfigs": self.audit_configs.get(a, [])} for a in covered]
        above = ancestors[len(covered):]
        if self.iam_problem is not None:
            data.setdefault(FETCH_ERRORS, {})["inheritedAuditConfigs"] = self.iam_problem
        elif above:
            data.setdefault(FETCH_ERRORS, {})["inheritedAuditConfigs"] = (
                f"the IAM policies of {', '.join(above)} are outside {self.parent.name}, "
                "which is all this source reads")

    def _resource(self, asset: dict[str, Any], policy: dict[str, Any] | None
                  ) -> Resource | CollectionError:
        name, type_ = asset.get("name"), asset.get("assetType")
        if not isinstance(name, str) or not name.startswith("//"):
            raise MalformedResponse(OPERATION, "an asset without its full resource name")
        kind = self.types.get(str(type_))
        if kind is None:
            raise MalformedResponse(OPERATION, f"asset {name} of type {type_}, not asked for")
        scope = self.scopes[_project_of(asset)]
        if not isinstance((asset.get("resource") or {}).get("data"), dict):
            return CollectionError(scope.id, ALL_REGIONS, SERVICE, (kind.kind,),
                                   f"{OPERATION}: asset {name} came without its resource data",
                                   key=name)
        data = _data(asset)
        if kind.iam:
            data["iamPolicy"] = policy
            if self.iam_problem is not None:
                data.setdefault(FETCH_ERRORS, {})["iamPolicy"] = self.iam_problem
        region = str(data["location"] or "global").lower()
        return scope.resource(kind.kind, name, data, region=region)

    def _others(self, policies: KeyedSpool) -> Iterator[Scope | Resource | CollectionError]:
        kinds = [k for k in KINDS if k.kind != PROJECT]
        iam = {k.asset_type for k in kinds if k.iam}
        try:
            for page in self.inventory.pages(self.parent.name, [k.asset_type for k in kinds]):
                mine = [a for a in page if _project_of(a) not in self.skipped]
                found = policies.take([str(a.get("name")) for a in mine
                                       if a.get("assetType") in iam])
                for asset in mine:
                    yield from self._scope(_project_of(asset))
                    yield self._resource(asset, found.get(str(asset.get("name"))))
                del page, mine
        except HttpError as exc:
            names = tuple(k.kind for k in kinds)
            for scope in self.scopes.values():
                yield scope.error(SERVICE, ALL_REGIONS, names, str(exc))
