"""The Dockerfile read as data, so tests check the image's recipe rather than a copy of it."""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Stage:
    base: str
    instructions: list[tuple[str, str]]  # (INSTRUCTION, rest of the line)

    def all(self, name: str) -> list[str]:
        return [rest for instruction, rest in self.instructions if instruction == name]


def stages(path: Path = ROOT / "Dockerfile") -> list[Stage]:
    """The build stages, with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    found: list[Stage] = []
    for line in lines:
        instruction, _, rest = line.partition(" ")
        if instruction.upper() == "FROM":
            found.append(Stage(rest.split()[0], []))
        else:
            found[-1].instructions.append((instruction.upper(), rest.strip()))
    return found


def build_sources(stage: Stage) -> list[str]:
    """What the build stage copies from the context (the wheel's sources)."""
    sources: list[str] = []
    for rest in stage.all("COPY"):
        parts = shlex.split(rest)
        if not parts[0].startswith("--from"):
            sources += parts[:-1]
    return sources


def exec_form(value: str) -> list[str]:
    parsed: list[str] = json.loads(value)
    return parsed
