"""Column types in one form whatever the server: MariaDB's information_schema as MySQL 8's."""

from __future__ import annotations

import pytest

from extractor.source.discovery import neutral_type


@pytest.mark.parametrize(
    ("mariadb", "mysql"),
    [
        (("int", "int(11)"), ("int", "int")),
        (("int", "int(10) unsigned"), ("int", "int unsigned")),
        (("bigint", "bigint(20) unsigned"), ("bigint", "bigint unsigned")),
        (("tinyint", "tinyint(4)"), ("tinyint", "tinyint")),
        (("tinyint", "tinyint(1)"), ("tinyint", "tinyint(1)")),  # MySQL keeps this one
        (("tinyint", "tinyint(1) unsigned"), ("tinyint", "tinyint unsigned")),
        (("int", "int(5) unsigned zerofill"), ("int", "int(5) unsigned zerofill")),
        (("year", "year(4)"), ("year", "year")),
        (("geometrycollection", "geometrycollection"), ("geomcollection", "geomcollection")),
        (("decimal", "decimal(10,2)"), ("decimal", "decimal(10,2)")),
        (("varchar", "varchar(11)"), ("varchar", "varchar(11)")),
        (("bit", "bit(1)"), ("bit", "bit(1)")),
        (("float", "float(7,3)"), ("float", "float(7,3)")),
    ],
)
def test_mariadb_types_read_as_mysql_states_them(
    mariadb: tuple[str, str], mysql: tuple[str, str]
) -> None:
    assert neutral_type(*mariadb) == mysql
    assert neutral_type(*mysql) == mysql  # MySQL's own form is left as it is
