"""The consumer's CPU, column by column: conversion to the contract and Parquet encoding (not a
test).

    python bench/consumer.py [--url URL] [--repeat 5] [--baseline DIR]

Reads radar_bench.store_metrics (bench/generate.py) once with radar-extract's reader, keeps
its batches in memory, then times, in this process, interleaved `--repeat` times, medians:
  convert <column>   contract/casts.py's convert_array on every batch of that column
  encode <column>    that column alone, converted, written as Parquet with the documented
                     settings and the writer's dictionary choice (sink/parquet.py)
With `--baseline DIR` the conversion is also timed with DIR's extractor/contract/casts.py (a
checkout of another revision), and every converted batch is compared with it: the same
values, or the script says which column differs.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from servers import SERVERS, probe

from extractor.config import load_settings
from extractor.contract import casts
from extractor.contract.types import arrow_schema, plan_column
from extractor.run.catalog import discover
from extractor.sink.parquet import DICTIONARY_SAMPLE_ROWS, PARQUET_OPTIONS, dictionary_columns
from extractor.source.batching import plan_batches
from extractor.source.reader import Server, read_batches

TABLE = "store_metrics"


def _casts_of(checkout: str) -> ModuleType:
    path = Path(checkout) / "extractor" / "contract" / "casts.py"
    spec = importlib.util.spec_from_file_location("baseline_casts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--url", default=SERVERS["mariadb"])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--baseline", metavar="DIR")
    args = p.parse_args()

    info = probe(args.url)
    config = load_settings(env={"RADAR_MYSQL_URL": args.url})
    mysql = config.mysql
    task = discover(config).tasks[TABLE]
    plans = [plan_column(c, TABLE) for c in task.columns]
    schema = arrow_schema(plans)
    sizing = plan_batches(
        task.columns,
        task.estimated_rows,
        task.estimated_bytes,
        config.batch_bytes,
        config.batch_rows,
    )
    server = Server(info.flavor, info.tls)
    batches = list(read_batches(mysql, TABLE, plans, sizing, server=server))
    rows = sum(b.num_rows for b in batches)
    print(f"{info.name}: {rows:,} rows in {len(batches)} batches of {sizing.rows:,} rows")

    versions: dict[str, ModuleType] = {"now": casts}
    if args.baseline:
        versions["baseline"] = _casts_of(args.baseline)
    times: dict[str, list[float]] = defaultdict(list)
    for _ in range(args.repeat):
        for name, module in versions.items():
            for index, plan in enumerate(plans):
                start = time.process_time()
                for batch in batches:
                    module.convert_array(batch.column(index), plan)
                times[f"convert {plan.name} ({name})"].append(time.process_time() - start)
    if args.baseline:
        for index, plan in enumerate(plans):
            for batch in batches:
                now = casts.convert_array(batch.column(index), plan)
                before = versions["baseline"].convert_array(batch.column(index), plan)
                if not now.equals(before):
                    print(f"DIFFERENT: column {plan.name} converts to other values than before")
                    break

    table = pa.Table.from_batches(
        [casts.convert_batch(b, plans, schema, TABLE)[0] for b in batches], schema=schema
    )
    dictionary = dictionary_columns(table.slice(0, DICTIONARY_SAMPLE_ROWS))
    for _ in range(args.repeat):
        for name in table.column_names:
            start = time.process_time()
            pq.write_table(
                table.select([name]),
                io.BytesIO(),
                row_group_size=1 << 30,
                data_page_size=config.page_bytes,
                use_dictionary=name in dictionary,
                **PARQUET_OPTIONS,  # type: ignore[arg-type]
            )
            times[f"encode {name}"].append(time.process_time() - start)

    print(f"CPU seconds, medians of {args.repeat}:")
    for step, values in times.items():
        print(f"  {step:40} {statistics.median(values):7.3f}")
    for name in versions:
        total = sum(statistics.median(v) for k, v in times.items() if k.endswith(f"({name})"))
        print(f"  {'convert, every column (' + name + ')':40} {total:7.3f}")
    encode = sum(statistics.median(v) for k, v in times.items() if k.startswith("encode"))
    print(f"  {'encode, every column':40} {encode:7.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
