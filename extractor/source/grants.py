"""What the configured MySQL user may do, from SHOW GRANTS: the documented user is read-only."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from extractor.source.connection import query

# Privileges that let a user change data or schema; any of them on the database is a warning.
WRITE_PRIVILEGES = (
    "ALL PRIVILEGES",
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "INDEX",
    "TRIGGER",
    "CREATE ROUTINE",
    "ALTER ROUTINE",
    "EVENT",
    "SUPER",
    "FILE",
    "GRANT OPTION",
)
_GRANT = re.compile(r"^GRANT (?P<privileges>.+?) ON (?P<target>\S+) TO ", re.I)
_SECRET = re.compile(r"(IDENTIFIED BY PASSWORD|IDENTIFIED BY|AS) '[^']*'", re.I)


@dataclass(frozen=True)
class Grants:
    lines: list[str]  # SHOW GRANTS output, password hashes masked
    writable: list[str]  # write privileges that reach the database, e.g. "INSERT ON `radar`.*"


def read_grants(conn: Any, database: str) -> Grants:
    rows = query(conn, "SHOW GRANTS FOR CURRENT_USER()")
    return parse_grants([str(next(iter(r.values()))) for r in rows], database)


def parse_grants(lines: list[str], database: str) -> Grants:
    """The grants that apply to `database` and allow writing (global, database or table)."""
    masked = [_SECRET.sub(lambda m: f"{m.group(1)} '***'", line) for line in lines]
    writable: list[str] = []
    for line in masked:
        match = _GRANT.match(line)
        if match is None or "PROXY" in match.group("privileges").upper():
            continue
        target = match.group("target").replace("`", "")
        schema = target.split(".", 1)[0]
        if schema not in ("*", database) and not _wildcard_matches(schema, database):
            continue
        held = [p.strip().upper() for p in match.group("privileges").split(",")]
        found = [p for p in held if p.split("(")[0].strip() in WRITE_PRIVILEGES]
        if "WITH GRANT OPTION" in line.upper():
            found.append("GRANT OPTION")
        writable.extend(f"{p} ON {match.group('target')}" for p in found)
    # MySQL 8 grants static and dynamic privileges on two lines, both WITH GRANT OPTION.
    return Grants(masked, list(dict.fromkeys(writable)))


def _wildcard_matches(pattern: str, name: str) -> bool:
    """MySQL grant patterns use % and _ wildcards (\\_ is a literal underscore)."""
    regex = re.escape(pattern).replace("%", ".*").replace("\\\\_", "\0").replace("_", ".")
    return re.fullmatch(regex.replace("\0", "_"), name) is not None
