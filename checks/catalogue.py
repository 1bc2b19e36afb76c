"""The 93 controls of ISO/IEC 27001:2022 Annex A, shipped as package data."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from importlib.resources import files


@dataclass(frozen=True, slots=True)
class Control:
    id: str
    title: str
    theme: str


@cache
def controls() -> dict[str, Control]:
    text = files("checks").joinpath("annex_a_2022.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(text.splitlines())
    return {r["id"]: Control(r["id"], r["title"], r["theme"]) for r in rows}


def sort_key(control_id: str) -> tuple[int, ...]:
    """A.5.10 sorts after A.5.9."""
    return tuple(int(part) for part in control_id.removeprefix("A.").split("."))
