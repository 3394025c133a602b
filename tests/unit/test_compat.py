"""The cut-over without services: names, eras, type trees, the output-schema file, the
`compat` setting, every conversion route over the type matrix, the kernels, the writer."""

from __future__ import annotations

import base64
import json
import os
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from extractor.compat import kernels
from extractor.compat.airbyte import era_of, sanitize
from extractor.compat.output_schema import (
    OutputColumn,
    OutputSchema,
    dumps,
    load_output_schema,
    output_schema_path,
    type_from_json,
    type_to_json,
    write_output_schema,
)
from extractor.compat.rules import route
from extractor.compat.writer import CompatWriter, run_started
from extractor.config import load_settings
from extractor.contract.types import Column, plan_column
from extractor.drift.store import load_schemas
from extractor.drift_policy import DriftPolicy
from extractor.errors import ConfigError, SchemaDrift, UsageError
from tests import airbyte
from tests.type_matrix import CASES, Case


@pytest.mark.parametrize(
    ("name", "sanitized"),
    [
        ("store name", "store_name"),
        ("2nd score", "_2nd_score"),
        ("preço", "preco"),
        ("a-b.c", "a_b_c"),
        ("ok_1", "ok_1"),
    ],
)
def test_sanitized_names_as_airbyte_wrote_them(name: str, sanitized: str) -> None:
    assert sanitize(name) == sanitized == airbyte.sanitize(name)


def test_eras_from_the_metadata_columns() -> None:
    assert era_of(["_airbyte_ab_id", "_airbyte_emitted_at", "id"]) == "legacy"
    assert era_of(["_airbyte_raw_id", "_airbyte_extracted_at", "_airbyte_meta", "id"]) == "1.x"
    assert era_of(["id", "name"]) == "other"


@pytest.mark.parametrize(
    "t",
    [
        pa.int32(),
        pa.float64(),
        pa.bool_(),
        pa.string(),
        pa.binary(),
        pa.date32(),
        pa.timestamp("ms", tz="UTC"),
        pa.timestamp("us"),
        pa.time64("us"),
        pa.time32("ms"),
        pa.decimal128(14, 2),
        pa.binary(16),
        airbyte.TS_UNION,
        airbyte.META,
        pa.map_(pa.string(), pa.string()),
    ],
    ids=str,
)
def test_type_trees_round_trip(t: pa.DataType) -> None:
    tree = type_to_json(t)
    assert type_from_json(json.loads(json.dumps(tree))) == t


def _schema() -> OutputSchema:
    return OutputSchema(
        "db",
        "t",
        "legacy",
        [
            OutputColumn("_airbyte_ab_id", "ab_id", None, {"type": "string"}, False),
            OutputColumn(
                "_airbyte_emitted_at",
                "emitted_at",
                None,
                type_to_json(pa.timestamp("ms", tz="UTC")),
                False,
            ),
            OutputColumn("id", "data", "id", {"type": "int64"}, True),
            OutputColumn("store_name", "data", "store name", {"type": "string"}, True),
            OutputColumn("active", "data", "active", {"type": "boolean"}, True),
            OutputColumn(
                "_airbyte_additional_properties",
                "additional_properties",
                None,
                type_to_json(pa.map_(pa.string(), pa.string())),
                True,
            ),
        ],
        {"partition": "2024-04-30", "file": "file_t_001.parquet", "created_by": "x"},
    )


def test_output_schema_file_is_deterministic_and_beside_the_stored_schemas(tmp_path: Path) -> None:
    schema = _schema()
    assert write_output_schema(tmp_path, schema) is True
    assert write_output_schema(tmp_path, schema) is False
    path = output_schema_path(tmp_path, "db", "t")
    assert path == tmp_path / "db" / "output" / "t.json"
    assert path.read_text(encoding="utf-8") == dumps(schema)
    assert load_output_schema(tmp_path, "db", "t") == schema
    assert load_output_schema(tmp_path, "db", "other") is None
    assert load_schemas(tmp_path, "db") == {}  # the drift store does not read the folder


def test_an_invalid_output_schema_is_a_usage_error(tmp_path: Path) -> None:
    path = output_schema_path(tmp_path, "db", "t")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**_schema().to_dict(), "table": "u"}), encoding="utf-8")
    with pytest.raises(UsageError, match="describes"):
        load_output_schema(tmp_path, "db", "t")
    with pytest.raises(UsageError):
        output_schema_path(tmp_path, "db", "../x")


def test_compat_setting_file_env_flag(tmp_path: Path) -> None:
    assert load_settings(env={}).compat.mode_for("t") == "none"
    config = tmp_path / "radar.toml"
    config.write_text(
        '[compat]\nmode = "airbyte"\n[compat.tables.t]\nmode = "none"\n', encoding="utf-8"
    )
    settings = load_settings(config, env={})
    assert (settings.compat.mode_for("t"), settings.compat.mode_for("u")) == ("none", "airbyte")
    forced = load_settings(config, env={"RADAR_COMPAT": "airbyte"})
    assert forced.compat.mode_for("t") == "airbyte"  # an operator's switch: every table
    flag = load_settings(config, env={"RADAR_COMPAT": "airbyte"}, overrides={"compat": "none"})
    assert flag.compat.mode_for("u") == "none"
    config.write_text('compat = "airbyte"\n', encoding="utf-8")
    assert load_settings(config, env={}).compat.mode_for("t") == "airbyte"


def test_bad_compat_settings_are_reported_together(tmp_path: Path) -> None:
    config = tmp_path / "radar.toml"
    config.write_text(
        '[compat]\nmode = "dlt"\nextra = 1\n[compat.tables.t]\nmode = "x"\n', encoding="utf-8"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config, env={"RADAR_COMPAT": "fivetran"})
    text = str(caught.value)
    for part in ("mode = 'dlt'", "unknown keys: extra", "[compat.tables.t]", "'fivetran'"):
        assert part in text


def _column(case: Case) -> Column:
    return Column(
        "v",
        case.data_type,
        case.column_type,
        True,
        case.precision,
        case.scale,
        6 if case.column_type.endswith("(6)") else 0,
    )


@pytest.mark.parametrize("era", ["legacy", "1.x"])
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_every_contract_type_has_a_route_to_airbyte(case: Case, era: str) -> None:
    column = _column(case)
    found = airbyte.airbyte_type(
        airbyte.Col("v", case.data_type, case.column_type, case.precision, case.scale, None), era
    )
    chosen = route(column, plan_column(column).arrow_type, found)
    assert chosen.kind != "unsupported"
    assert (chosen.counted is not None) == (chosen.kind == "lossy")


@pytest.mark.parametrize(
    ("column", "contract", "found", "values", "out", "changed"),
    [
        (
            Column("v", "decimal", "decimal(20,2)", precision=20, scale=2),
            pa.decimal128(20, 2),
            pa.float64(),
            [Decimal("12345678901234567.89"), Decimal("0.10"), None],
            [1.2345678901234568e16, 0.1, None],
            1,
        ),
        (
            Column("v", "tinyint", "tinyint(1)"),
            pa.int8(),
            pa.bool_(),
            [0, 1, 2, -1, None],
            [False, True, True, True, None],
            2,
        ),
        (
            Column("v", "bigint", "bigint(20) unsigned"),
            pa.decimal128(20, 0),
            pa.int64(),
            [Decimal(2**63 - 1), Decimal(2**63), None],
            [2**63 - 1, None, None],
            1,
        ),
        (
            Column("v", "int", "int(11)"),
            pa.int64(),
            pa.int32(),
            [2**31, -(2**31), None],
            [None, -(2**31), None],
            1,
        ),
        (
            Column("v", "datetime", "datetime(6)", datetime_precision=6),
            pa.timestamp("us"),
            pa.timestamp("ms", tz="UTC"),
            [1_500, -1_500, 2_000],
            [datetime.fromtimestamp(t / 1000, UTC) for t in (1, -2, 2)],
            2,
        ),
        (
            Column("v", "time", "time"),
            pa.string(),
            pa.time64("us"),
            ["24:00:00", "-01:00:00", "23:59:59"],
            [None, None, datetime(1, 1, 1, 23, 59, 59).time()],
            2,
        ),
        (
            Column("v", "bit", "bit(12)", precision=12),
            pa.int64(),
            pa.string(),
            [0xAAA, None],
            [base64.b64encode(bytes([0x0A, 0xAA])).decode(), None],
            0,
        ),
        (Column("v", "float", "float"), pa.float32(), pa.float64(), [1.1], [1.1], 0),
        (Column("v", "year", "year(4)"), pa.int16(), pa.string(), [1999], ["1999"], 0),
    ],
    ids=["decimal", "tinyint1", "unsigned", "int32", "millis", "time", "bit", "float", "year"],
)
def test_conversions_give_airbyte_values_and_count_changes(
    column: Column,
    contract: pa.DataType,
    found: pa.DataType,
    values: list[object],
    out: list[object],
    changed: int,
) -> None:
    converted, changes = route(column, contract, found).apply(pa.array(values, contract))
    assert converted.type == found
    assert converted.to_pylist() == out
    assert sum(pa.compute.sum(m.cast(pa.int64())).as_py() or 0 for m, _, _ in changes) == changed


def test_a_type_with_no_conversion_is_unsupported() -> None:
    column = Column("v", "varchar", "varchar(10)")
    assert route(column, pa.string(), pa.int64()).kind == "unsupported"


@pytest.mark.parametrize("large", [False, True])
def test_base64_matches_the_standard_library(large: bool) -> None:
    values = [os.urandom(n) for n in range(40)] + [None, b""]
    array = pa.array(values, pa.large_binary() if large else pa.binary()).slice(3)
    want = [None if v is None else base64.b64encode(v).decode() for v in values[3:]]
    assert kernels.base64(array).to_pylist() == want


def test_uuids_are_version_4_and_distinct() -> None:
    ids = kernels.uuid4(5000).to_pylist()
    assert len(set(ids)) == 5000
    assert all(uuid.UUID(i).version == 4 and uuid.UUID(i).variant == uuid.RFC_4122 for i in ids)


def _plans() -> list:  # type: ignore[type-arg]
    return [
        plan_column(Column("id", "int", "int(11)")),
        plan_column(Column("store name", "varchar", "varchar(10)")),
        plan_column(Column("active", "tinyint", "tinyint(1)")),
    ]


def test_writer_fills_metadata_and_counts() -> None:
    started = run_started("2024-05-03_20240503T020000Z_abcd1234")
    writer = CompatWriter(_schema(), _plans(), "t", started, DriftPolicy())
    batch = pa.record_batch(
        [pa.array([1, 2], pa.int32()), pa.array(["a", None]), pa.array([1, 5], pa.int8())],
        names=["id", "store name", "active"],
    )
    out = writer.convert(batch)
    assert out.schema.names == [c.name for c in _schema().columns]
    assert out.column("active").to_pylist() == [True, True]
    assert out.column("_airbyte_emitted_at").to_pylist() == [started, started]
    assert out.column("_airbyte_additional_properties").null_count == 2
    assert dict(writer.converted) == {"active": 1}
    assert writer.manifest().converted == {"active": 1}


def test_writer_drift_goes_through_the_policy() -> None:
    plans = [*_plans()[:2], plan_column(Column("new", "int", "int(11)"))]
    with pytest.raises(SchemaDrift, match="column_removed active"):
        CompatWriter(_schema(), plans, "t", datetime.now(UTC), DriftPolicy())
    lenient = DriftPolicy(tables={"t": {"column_removed": "warn"}})
    writer = CompatWriter(_schema(), plans, "t", datetime.now(UTC), lenient)
    assert writer.schema.names[-1] == "new"
    assert [(d.kind, d.action) for d in writer.drift] == [
        ("column_removed", "warn"),
        ("column_added", "warn"),
    ]


def test_inspect_reads_only_the_footer(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from extractor.compat.inspect import read_footer
    from extractor.sink.destination import Destination

    path = tmp_path / "f.parquet"
    big = pa.table({"v": pa.array([os.urandom(64) for _ in range(20_000)])})
    pq.write_table(big, path, compression="none")
    destination = Destination(load_settings(env={"RADAR_DEST": str(tmp_path)}))
    reads: list[tuple[int, int]] = []
    real = destination.fs

    class Recording:
        def size(self, p: str) -> int:
            return int(real.size(p))

        def cat_file(self, p: str, start: int, end: int) -> bytes:
            reads.append((start, end))
            return bytes(real.cat_file(p, start=start, end=end))

    destination.fs = Recording()
    metadata = read_footer(destination, str(path))
    assert metadata.num_rows == 20_000 and metadata.schema.names == ["v"]
    size = path.stat().st_size
    assert reads == [(size - 64 * 1024, size)]  # one ranged read of the end, never the data
