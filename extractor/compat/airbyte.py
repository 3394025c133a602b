"""Airbyte's conventions, as data: metadata columns, eras, names, change records. Pure."""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

Era = Literal["legacy", "1.x", "other"]
ERAS: tuple[Era, ...] = ("legacy", "1.x", "other")

# The role of each metadata column: how a compatible write fills it.
Role = Literal[
    "data",
    "ab_id",
    "emitted_at",
    "additional_properties",
    "raw_id",
    "extracted_at",
    "meta",
    "generation_id",
    "unknown_metadata",
]
METADATA: dict[str, Role] = {
    "_airbyte_ab_id": "ab_id",
    "_airbyte_emitted_at": "emitted_at",
    "_airbyte_additional_properties": "additional_properties",
    "_airbyte_raw_id": "raw_id",
    "_airbyte_extracted_at": "extracted_at",
    "_airbyte_meta": "meta",
    "_airbyte_generation_id": "generation_id",
}
METADATA_PREFIX = "_airbyte_"

# `_airbyte_meta.changes` entries, from the Airbyte protocol's AirbyteRecordMessageMetaChange.
NULLED = "NULLED"
TRUNCATED = "TRUNCATED"
FIELD_SIZE = "DESTINATION_FIELD_SIZE_LIMITATION"
TYPECAST = "DESTINATION_TYPECAST_ERROR"
SERIALIZATION = "DESTINATION_SERIALIZATION_ERROR"

_NOT_NAME = re.compile(r"[^A-Za-z0-9_]")


def era_of(names: list[str]) -> Era:
    """Which Airbyte writer made a file with these top-level columns."""
    found = set(names)
    if {"_airbyte_raw_id", "_airbyte_extracted_at"} & found:
        return "1.x"
    if {"_airbyte_ab_id", "_airbyte_emitted_at"} & found:
        return "legacy"
    return "other"


def role_of(name: str) -> Role:
    if name in METADATA:
        return METADATA[name]
    return "unknown_metadata" if name.startswith(METADATA_PREFIX) else "data"


def sanitize(name: str) -> str:
    """A MySQL column name as Airbyte's name transformer wrote it.

    Accents are dropped (NFKD), every other character outside [A-Za-z0-9_] becomes `_`, and
    a leading digit gets a `_` before it: Avro names must start with a letter or `_`.
    """
    plain = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    out = _NOT_NAME.sub("_", plain)
    return f"_{out}" if out[:1].isdigit() else out
