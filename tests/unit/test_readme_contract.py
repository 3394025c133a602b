"""The README's type-contract table is the contract's rules: one row per rule, in order, and
every type-matrix case finds its Arrow type and its projection in its rule's row."""

from __future__ import annotations

import pyarrow as pa
import pytest

from extractor.contract.types import RULES, Column, Read, Rule, plan_column
from tests.conftest import ROOT
from tests.type_matrix import CASES, Case


def _contract_rows() -> list[list[str]]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Type contract", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")]
    cells = [[c.strip() for c in row.strip("|").split(" | ")] for row in rows]
    return cells[1:]  # the header; the |---| line does not start with "| "


ROWS = _contract_rows()


def _rule_of(column: Column) -> Rule:
    return next(rule for rule in RULES if rule.matches(column))


def _column(case: Case) -> Column:
    return Column(
        "c",
        case.data_type,
        case.column_type,
        precision=case.precision,
        scale=case.scale,
        datetime_precision=6 if case.column_type.endswith("(6)") else 0,
    )


def _documented(arrow: pa.DataType, rule: Rule) -> str:
    """An Arrow type as the table names it: DECIMAL(p,s)'s by the family, the rest as Arrow
    spells them."""
    if pa.types.is_decimal(arrow):
        generic = rule.mysql.startswith("DECIMAL")
        return "decimal128(p,s)" if generic else f"decimal128({arrow.precision},{arrow.scale})"
    if pa.types.is_timestamp(arrow):
        return f"timestamp[{arrow.unit}, UTC]" if arrow.tz else f"timestamp[{arrow.unit}] (no zone)"
    return _SPELLING.get(str(arrow), str(arrow))


_SPELLING = {"double": "float64", "float": "float32", "date32[day]": "date32"}
# Types beyond the type matrix's cases: MariaDB's INET6 (and JSON, which the matrix has too).
_EXTRA = [Column("c", "json", "json"), Column("c", "inet6", "inet6")]


def test_one_row_per_rule_in_the_rules_order() -> None:
    assert [row[0] for row in ROWS] == [rule.mysql for rule in RULES]


SAMPLES = [(c.id, _column(c)) for c in CASES] + [(c.data_type, c) for c in _EXTRA]


@pytest.mark.parametrize(("case", "column"), SAMPLES, ids=[s[0] for s in SAMPLES])
def test_each_case_finds_its_type_and_projection_in_its_row(case: str, column: Column) -> None:
    plan = plan_column(column)
    rule = _rule_of(column)
    row = ROWS[RULES.index(rule)]
    assert _documented(plan.arrow_type, rule) in row[1], (case, row[1])
    if plan.read is Read.AS_IS:
        assert row[2] == "column as is", (case, row[2])
    else:
        # The projection as the README writes it: `c` for the column, 10^s for the factor.
        projection = plan.read.value.format(col="c", factor="10^s")
        assert f"`{projection}`" in row[2], (case, row[2])


def test_every_rule_is_exercised_by_a_type_matrix_case() -> None:
    used = {RULES.index(_rule_of(column)) for _, column in SAMPLES}
    unused = [RULES[i].mysql for i in range(len(RULES)) if i not in used]
    assert not unused, f"rules no type-matrix case covers: {unused}"
