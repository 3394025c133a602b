"""What every file radar-extract writes has in common: deterministic JSON with a `format`.

Each file has one owner: a dataclass with one writer (`to_json`) and one reader
(`from_json`), beside the code of the layer that writes it (manifest, journal and lock here
in sink/, plan and run report in run/, merged report and validation in ops/, stored schema in
drift/). Later releases read what earlier ones wrote (`recover()`, `--resume`, `report
merge`), so:

- `format` is an integer. A file without one was written before the field existed, by a
  release that wrote the same keys: it is format 1.
- A reader accepts every format up to its own, and refuses a newer one with one line (a
  later release wrote it; this one could misread it). Keys a reader does not know are
  ignored: adding an optional key keeps the format, changing the meaning of one bumps it.
- The JSON is deterministic: sorted keys, two-space indent, a trailing newline. The golden
  files (tests/golden/) hold each format byte for byte.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from extractor.errors import FormatError

UNVERSIONED = 1  # the format of a file written before the `format` field existed


def dumps(data: Mapping[str, Any], *, ensure_ascii: bool = True) -> str:
    """The one serialisation of every file we write."""
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=ensure_ascii) + "\n"


def loads(text: str, what: str, where: str, known: int) -> dict[str, Any]:
    """The JSON object of a `what` file (e.g. "manifest") of a format up to `known`;
    else FormatError, one line naming the file at `where`."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FormatError(f"{what} {where} is not readable: {_detail(exc)}") from exc
    return checked(data, what, where, known)


def checked(data: Any, what: str, where: str, known: int) -> dict[str, Any]:
    """`data` if it is a JSON object of a format up to `known` (a file's, or one nested in
    another file, such as a journal's manifest); else FormatError."""
    if not isinstance(data, dict):
        raise FormatError(f"{what} {where} is not readable: not a JSON object")
    version = data.get("format", UNVERSIONED)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FormatError(
            f"{what} {where} is not readable: format {version!r} is not a "
            "format radar-extract writes"
        )
    if version > known:
        raise FormatError(
            f"{what} {where} has format {version}, newer than the {known} this "
            "radar-extract reads: a later release wrote it, upgrade to read it"
        )
    return data


@contextmanager
def reading(what: str, where: str) -> Iterator[None]:
    """A reader's field access: a missing key or a value of the wrong type is one line."""
    try:
        yield
    except FormatError:
        raise
    except KeyError as exc:
        raise FormatError(f"{what} {where} is not readable: it has no {exc}") from exc
    except (TypeError, ValueError, AttributeError) as exc:
        raise FormatError(f"{what} {where} is not readable: {_detail(exc)}") from exc


def _detail(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:200]


# -- typed field access for the readers: a value of another type is a TypeError -------------


def as_int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return value


def as_float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{value!r} is not a number")
    return float(value)


def as_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def as_opt_str(value: Any) -> str | None:
    return None if value is None else as_str(value)


def as_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{value!r} is not true or false")
    return value


def as_list(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise TypeError(f"{value!r} is not a list")
    return value


def as_dict(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"{value!r} is not an object")
    return value


def as_strs(value: Any) -> list[str]:
    return [as_str(v) for v in as_list(value)]


def as_counts(value: Any) -> dict[str, int]:
    return {as_str(k): as_int(v) for k, v in as_dict(value).items()}
