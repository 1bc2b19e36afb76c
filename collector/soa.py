"""The Statement of Applicability (SoA): per Annex A control, whether it applies and why, who
owns it and how far it is implemented. It lives in a YAML file under version control
(`config/soa.yaml` is the template) and is loaded into the ledger as a run of the reserved
source `annexa-soa`: one resource per control listed (kind `annexa.soa.control`, key
`annexa:soa:A.5.1`, the entry as canonical JSON). A load that changes entries closes their old
versions and opens new ones, in one signed run; an unchanged load writes nothing. The SoA in
force at an instant is then the one of the last `annexa-soa` run sealed by that instant.

A file with any problem is refused whole, with every problem named by file and line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, StrictBool, ValidationError, model_validator
from sqlalchemy import Connection, Engine

from checks.catalogue import controls as catalogue
from checks.catalogue import sort_key
from collector import manual_ledger
from collector.canonical import canonical, sha256_hex
from collector.ledger import Signer
from collector.manual_ledger import Item, RunRef
from collector.progress import Progress

SOURCE = "annexa-soa"
KIND = "annexa.soa.control"
KEY_PREFIX = "annexa:soa:"
Implementation = Literal["implemented", "partially_implemented", "planned", "not_implemented"]
IMPLEMENTATION: tuple[str, ...] = get_args(Implementation)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class SoaError(ValueError):
    """An SoA file that cannot be loaded; each problem reads `file:line: what is wrong`."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


class Entry(BaseModel):
    """One control's line of the SoA."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    control: str
    applicable: StrictBool
    justification: str | None = None  # why it applies, or why not (required when it does not)
    owner: str | None = None  # who answers for it (an email address)
    implementation: Implementation | None = None
    how: str | None = None  # how the control is met, in the organisation's own words

    @model_validator(mode="after")
    def _consistent(self) -> Entry:
        if self.owner is not None and not EMAIL.match(self.owner):
            raise ValueError(f"owner {self.owner!r} is not an email address")
        if not self.applicable:
            if not (self.justification or "").strip():
                raise ValueError("an excluded control (applicable: false) needs a justification")
            if self.implementation is not None:
                raise ValueError("an excluded control has no implementation status")
        elif self.implementation is None:
            raise ValueError("an applicable control needs an implementation status: one of "
                             + ", ".join(IMPLEMENTATION))
        return self

    def as_dict(self) -> dict[str, Any]:
        return self.model_dump()


@dataclass(frozen=True)
class Soa:
    """The SoA in force at an instant: `run` is None when none had been loaded by then."""

    run: RunRef | None
    entries: dict[str, Entry]


@dataclass(frozen=True)
class Loaded:
    path: Path
    entries: int
    changed: list[str]  # controls added, changed or removed by this load
    run: RunRef | None  # None when the file matched the SoA in force: nothing was written


# ------------------------------------------------------------------------------ parsing

def parse(text: str, name: str) -> dict[str, Entry]:
    """The entries of an SoA file, or SoaError naming every problem by line."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise SoaError([f"{name}:{line}: invalid YAML: {getattr(exc, 'problem', exc)}"]) from None
    if not isinstance(root, yaml.MappingNode):
        line = root.start_mark.line + 1 if root is not None else 1
        raise SoaError([f"{name}:{line}: expected a mapping with a `controls:` key"])
    problems: list[str] = []
    top = _pairs(root, name, problems)
    for key in top:
        if key != "controls":
            problems.append(f"{name}:{_line(top[key][0])}: unknown key {key!r} (the file holds "
                            "`controls:`)")
    if "controls" not in top:
        problems.append(f"{name}:{_line(root)}: no `controls:` mapping")
        raise SoaError(problems)
    controls_node = top["controls"][1]
    if not isinstance(controls_node, yaml.MappingNode):
        raise SoaError([*problems, f"{name}:{_line(controls_node)}: `controls:` must map "
                                   "control ids to their entries"])
    known = catalogue()
    entries: dict[str, Entry] = {}
    for control_id, (key_node, value_node) in _pairs(controls_node, name, problems).items():
        where = f"{name}:{_line(key_node)}"
        if control_id not in known:
            problems.append(f"{where}: {control_id!r} is not an Annex A 2022 control id "
                            "(A.5.1 to A.8.34)")
            continue
        if not isinstance(value_node, yaml.MappingNode):
            problems.append(f"{where}: {control_id}: expected a mapping (applicable, "
                            "justification, owner, implementation, how)")
            continue
        fields = _pairs(value_node, name, problems)
        values = {k: _value(v) for k, (_, v) in fields.items()}
        try:
            entries[control_id] = Entry.model_validate({**values, "control": control_id})
        except ValidationError as exc:
            for err in exc.errors():
                field = str(err["loc"][0]) if err["loc"] else ""
                node = fields[field][0] if field in fields else key_node
                label = f"{control_id}.{field}" if field else control_id
                message = err["msg"].removeprefix("Value error, ")
                problems.append(f"{name}:{_line(node)}: {label}: {message}")
    if problems:
        raise SoaError(problems)
    return dict(sorted(entries.items(), key=lambda kv: sort_key(kv[0])))


def read(path: Path) -> dict[str, Entry]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SoaError([f"{path}: no such file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SoaError([f"{path}: cannot read: {exc}"]) from None
    return parse(text, str(path))


def _line(node: yaml.Node) -> int:
    return node.start_mark.line + 1


def _pairs(node: yaml.MappingNode, name: str, problems: list[str],
           ) -> dict[str, tuple[yaml.Node, yaml.Node]]:
    """A mapping's keys with their nodes; a key given twice is a problem (PyYAML would keep
    the last one silently)."""
    out: dict[str, tuple[yaml.Node, yaml.Node]] = {}
    for key_node, value_node in node.value:
        key = str(key_node.value)
        if key in out:
            problems.append(f"{name}:{_line(key_node)}: {key!r} is given twice (first on line "
                            f"{_line(out[key][0])})")
            continue
        out[key] = (key_node, value_node)
    return out


def _value(node: yaml.Node) -> Any:
    return yaml.SafeLoader("").construct_object(node, deep=True)


# ------------------------------------------------------------------------------ the ledger

def _item(entry: Entry) -> Item:
    return Item(KIND, KEY_PREFIX + entry.control, canonical(entry.as_dict()))


def load(engine: Engine, signer: Signer, path: Path, progress: Progress | None = None
         ) -> Loaded:
    """Validate the file, then record it as a new signed version if it differs from the SoA in
    force. Raises SoaError (and stores nothing) if the file has any problem. `progress` counts
    the controls read and stored."""
    task = str(path)
    entries = read(path)
    if progress is not None:
        progress.count(task, "read", resources=len(entries))
    items = {KEY_PREFIX + cid: _item(e) for cid, e in entries.items()}
    with engine.connect() as conn:
        current = manual_ledger.open_digests(conn, SOURCE, KIND)
    wanted = {key: sha256_hex(item.body) for key, item in items.items()}
    changed = sorted({k.removeprefix(KEY_PREFIX) for k in wanted.keys() | current.keys()
                      if wanted.get(k) != current.get(k)}, key=sort_key)
    if not changed:
        if progress is not None:
            progress.done(task, "unchanged")
        return Loaded(path, len(entries), [], None)
    written = manual_ledger.write_run(engine, signer, SOURCE, _counted(
        items.values(), progress, task), replace=True)
    if progress is not None:
        progress.done(task, "stored")
    return Loaded(path, len(entries), changed, written.run)


def _counted(items: Iterable[Item], progress: Progress | None, task: str) -> Iterator[Item]:
    for item in items:
        yield item
        if progress is not None:
            progress.count(task, "stored", resources=1)


def soa_at(conn: Connection, at: datetime) -> Soa:
    run = manual_ledger.last_run(conn, SOURCE, at)
    if run is None:
        return Soa(None, {})
    entries = {}
    for _key, _since, body in manual_ledger.bodies_at(conn, SOURCE, KIND, run):
        entry = Entry.model_validate(json.loads(body))
        entries[entry.control] = entry
    return Soa(run, entries)
