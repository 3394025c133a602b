"""Build a SYNTHETIC Radar-like demo database (for demos, integration tests and benchmarks).

Nothing here comes from Radar's production data: the names of 20 tables follow the real
documentation (store, store_metrics, user_access, product, contest, voucher, ...), every
other table, every column and every value is invented. Rows are a pure function of the row
number n and of `scale` (generated server-side with INSERT ... SELECT over a cross join of
digit tables, which works on MySQL 8 and MariaDB), so two builds at the same scale hold
identical data. scale=1 gives about 200k rows, store_metrics being the largest table.

The tables cover every MySQL type of radar-extract's type contract. Hand-written edge rows
are appended to some tables after the generated rows (which are inserted in strict mode),
in a session with sql_mode='' and time_zone='+00:00':

* zero and invalid dates: store.opened_on DATE ('0000-00-00', '2024-00-15', '1000-01-01',
  '9999-12-31'), store.created_at DATETIME ('0000-00-00 00:00:00', '2024-00-15 08:30:00'),
  product_pbm.valid_to DATE ('0000-00-00'), contest.ends_at DATETIME ('0000-00-00 00:00:00'),
  user_terms.accepted_at TIMESTAMP ('0000-00-00 00:00:00', in two identical rows of that
  table without a primary key);
* TIMESTAMP limits (UTC): voucher.expires_at ('1970-01-01 00:00:01', '2038-01-19 03:14:07'),
  user_access.last_login TIMESTAMP(6) ('1970-01-01 00:00:01', '2038-01-19 03:14:07.999999');
* TIME beyond 24 h and negative: performance_indicators.window_length TIME ('838:59:59',
  '-838:59:59') and .processing_time TIME(6) ('838:59:59', '-838:59:59', '-00:00:01.5');
  generated TIME values span about -555 h .. +555 h too;
* integer limits: store_general_strategy.priority TINYINT, product_pbm.max_units TINYINT
  UNSIGNED, contest_objective.offset_days SMALLINT, contest_score.rank_pos SMALLINT UNSIGNED,
  store_metrics.stock_delta MEDIUMINT and .tickets MEDIUMINT UNSIGNED,
  performance_indicators.delta INT and .raw_value BIGINT, user_access.login_count INT
  UNSIGNED, voucher.serial BIGINT UNSIGNED (0 and 18446744073709551615) and audit_log.id,
  a BIGINT UNSIGNED primary key holding 18446744073709551615;
* TINYINT(1) beyond 0/1: store.is_active (2, 127, -1, -128); product.stock_status is
  generated in -1..3;
* BIT: voucher.mask BIT(64) and voucher.flags BIT(8) all ones and all zeros;
* DECIMAL: performance_indicators.value_num DECIMAL(38,0) (+/- 38 nines), value_precise
  and contest_score.score DECIMAL(65,30) (max, min, 1e-30), store_general_strategy
  .target_units and contest_objective.target DECIMAL(20,0), product_pbm.discount_pct
  DECIMAL(5,2) (+/-999.99);
* FLOAT/DOUBLE limits: brand_metrics_average.avg_margin and .avg_price;
* YEAR: store_general_strategy.strategy_year (1901, 2155, 0000), product.launched (0000);
* text: 4-byte characters (emoji, U+1D11E) in store.name, user_access.name, contest.title,
  product.name, product_category.icon; '' next to NULL in store.trade_name, store.notes,
  store_address.complement, user_access.mfa_secret (VARBINARY) and store.services (SET);
  the invalid ENUM value '' in store.status; a ~1 MB LONGTEXT in product.leaflet; JSON with
  unicode in user_access.preferences, dashboard_data.payload, store_general_strategy.payload,
  JSON 'null' next to SQL NULL;
* geometry: region.boundary GEOMETRY holds POLYGONs and one POINT, store.location is a POINT
  and store_address.delivery_area a POLYGON column (both with NULLs);
* binary: all 256 byte values and an empty BLOB in store_document.content, a zero-padded
  BINARY(32) in store_document.sha256 and BINARY(16) in voucher.token;
* keys: product_ean has a VARCHAR primary key (with 'SEM GTIN'), user_terms none, user_store,
  store_distributor, store_general_strategy, store_hours and the link tables composite ones;
  import_error and email_outbox are empty; v_store_overview and v_contest_leaderboard are
  VIEWs.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import click
import pymysql

from extractor.config import load_settings

DEFAULT_URL = "mysql+pymysql://root@127.0.0.1:3306/radar_demo"
MAX_SCALE = 100  # id and code widths are sized for this
CHUNK = 500_000  # generated rows per INSERT ... SELECT (bounds each transaction)
_NAME = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")

Col = tuple[str, str, str]  # (column name, DDL type, SQL expression of the row number n)


@dataclass(frozen=True)
class Table:
    name: str
    rows: int  # generated rows at scale=1 (rows * scale at other scales)
    cols: tuple[Col, ...]
    key: tuple[str, ...] = ("id",)  # primary key columns; () for none
    edges: tuple[Mapping[str, str], ...] = ()  # extra rows: column -> SQL value override
    extra: tuple[str, ...] = ()  # further DDL lines: indexes, foreign keys


# --- expression helpers (all values derive from n; {table} is replaced by its row count) ---


def q(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


def rnd(mod: int | str, salt: int = 0) -> str:
    """A deterministic pseudo-random integer in [0, mod)."""
    return f"(CAST(CRC32(n * 31 + {salt}) AS SIGNED) % {mod})"


def hex_digits(expr: str, digits: int = 32) -> str:
    """Hex digits derived from `expr`, like MD5()/SHA1(), which MySQL 9 no longer has."""
    return f"LEFT(SHA2({expr}, 256), {digits})"


def pick(values: Sequence[str], salt: int = 0) -> str:
    return f"ELT(1 + {rnd(len(values), salt)}, {', '.join(q(v) for v in values)})"


def nulls(expr: str, every: int = 7) -> str:
    return f"IF(n % {every} = {every - 1}, NULL, {expr})"


def day(base: str, span_days: int, salt: int = 0) -> str:
    return f"DATE_ADD('{base}', INTERVAL {rnd(span_days, salt)} DAY)"


def when(base: str, span_seconds: int, salt: int = 0) -> str:
    return f"DATE_ADD('{base}', INTERVAL {rnd(span_seconds, salt)} SECOND)"


def micro(base: str, span_seconds: int, salt: int = 0) -> str:
    usec = rnd(1_000_000, salt + 1)
    return f"DATE_ADD({when(base, span_seconds, salt)}, INTERVAL {usec} MICROSECOND)"


def money(hi: int, salt: int = 0) -> str:
    return f"{rnd(hi * 100, salt)} / 100"


def fk(table: str, salt: int = 0, *, name: str = "", null: bool = False) -> Col:
    expr = f"1 + {rnd('{' + table + '}', salt)}"
    return (
        name or f"{table}_id",
        "INT UNSIGNED " + ("NULL" if null else "NOT NULL"),
        nulls(expr, 11) if null else expr,
    )


def enum(name: str, values: Sequence[str], salt: int = 0) -> Col:
    return (name, f"ENUM({', '.join(q(v) for v in values)}) NOT NULL", pick(values, salt))


def id_col(ddl: str = "INT UNSIGNED") -> Col:
    return ("id", f"{ddl} NOT NULL AUTO_INCREMENT", "n + 1")


def created(name: str = "created_at", ddl: str = "DATETIME NOT NULL", salt: int = 5) -> Col:
    return (name, ddl, when("2018-01-01", 190_000_000, salt))


def updated(name: str = "updated_at") -> Col:
    return (name, "TIMESTAMP NULL", nulls(when("2021-01-01", 120_000_000, 9), 5))


def polygon(x: str, y: str, size: str) -> str:
    corners = [
        (x, y),
        (f"{x} + {size}", y),
        (f"{x} + {size}", f"{y} + {size}"),
        (x, f"{y} + {size}"),
        (x, y),
    ]
    points = ", ', ', ".join(f"{a}, ' ', {b}" for a, b in corners)
    return f"ST_GeomFromText(CONCAT('POLYGON((', {points}, '))'))"


CITIES = [
    "São Paulo",
    "Ribeirão Preto",
    "Belém",
    "Goiânia",
    "Florianópolis",
    "Maceió",
    "João Pessoa",
    "Cuiabá",
    "Vitória",
    "Niterói",
    "Jundiaí",
    "Uberlândia",
]
UFS = ["SP", "RJ", "MG", "PR", "SC", "RS", "BA", "PE", "CE", "GO", "PA", "AM", "DF"]
FIRST = [
    "João",
    "Maria",
    "José",
    "Ana",
    "Antônio",
    "Francisca",
    "Luís",
    "Márcia",
    "Conceição",
    "Sebastião",
    "Letícia",
    "Caio",
]
LAST = [
    "Silva",
    "Santos",
    "Oliveira",
    "Souza",
    "Lima",
    "Pereira",
    "Araújo",
    "Gonçalves",
    "Simões",
    "Magalhães",
]
DRUGS = [
    "Dipirona Sódica 500mg",
    "Paracetamol 750mg",
    "Ibuprofeno 400mg",
    "Protetor Solar FPS 50",
    "Vitamina C Efervescente",
    "Losartana Potássica 50mg",
    "Omeprazol 20mg",
    "Sabonete Líquido Infantil",
    "Fralda Geriátrica M",
    "Água Micelar 200ml",
    "Colágeno Hidrolisado",
    "Pastilha de Própolis",
]
TERMS = [
    "Básico",
    "Avançado",
    "Promoção",
    "Gestão",
    "Atenção",
    "Saúde",
    "Higiene",
    "Nutrição",
    "Logística",
    "Operação",
]
EVENTS = ["login", "logout", "view", "update", "export", "approve", "reject"]
STORE_KINDS = ["Drogaria", "Farmácia", "Drogaria Popular", "Farmácia Saúde & Vida"]
CONTESTS = ["🏆 Campanha de Verão", "💊 Desafio Genéricos", "Meta Trimestral", "Copa Radar ⚽"]
FOUR_BYTE_STORE = "Drogaria São João 💊 𝄞 Ação"
UNICODE_JSON = '{"saudação": "Olá, São Paulo! 💊", "clave": "𝄞", "vazio": "", "nulo": null}'
ALL_BYTES = "X'" + bytes(range(256)).hex().upper() + "'"
DEC65_MAX = "99999999999999999999999999999999999.999999999999999999999999999999"
DEC65_TINY = "0." + "0" * 29 + "1"
NINES38 = "9" * 38
DEC65_GEN = (
    "CONCAT({}, '.', LPAD(CRC32(n), 10, '0'), LPAD(CRC32(n + 1), 10, '0'), "
    "LPAD(CRC32(n + 2), 10, '0'))"
)
IPV4 = "INET6_ATON(CONCAT('10.', n % 256, '.', n DIV 256 % 256, '.', n % 7))"

# --- templates for the filler tables ---


def lookup(name: str, rows: int, *extra: Col) -> Table:
    return Table(
        name,
        rows,
        (
            ("id", "SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT", "n + 1"),
            (
                "code",
                "VARCHAR(40) NOT NULL",
                f"CONCAT({q(name.upper())}, '_', LPAD(n + 1, 5, '0'))",
            ),
            ("name", "VARCHAR(120) NOT NULL", f"CONCAT({pick(TERMS, len(name))}, ' ', n + 1)"),
            ("is_active", "TINYINT(1) NOT NULL", "n % 6 <> 5"),
            ("sort_order", "INT NOT NULL", "n * 10"),
            *extra,
            created(),
        ),
        extra=(f"UNIQUE KEY uq_{name}_code (code)",),
    )


def entity(name: str, rows: int, *extra: Col) -> Table:
    text = f"CONCAT('Descrição nº ', n + 1, ' — ', {pick(TERMS)})"
    return Table(
        name,
        rows,
        (
            id_col(),
            (
                "name",
                "VARCHAR(150) NOT NULL",
                f"CONCAT({pick(TERMS + CITIES, len(name))}, ' ', n + 1)",
            ),
            ("description", "TEXT NULL", nulls(text)),
            *extra,
            created(),
            updated(),
        ),
    )


def link(name: str, left: str, right: str, rows: int, *extra: Col) -> Table:
    """A many-to-many table; needs rows <= count(left) * count(right)."""
    lk, rk = f"{left}_id", f"{right}_id"
    right_expr = f"1 + (n DIV {{{left}}} + n % {{{left}}} * 3) % {{{right}}}"
    return Table(
        name,
        rows,
        (
            (lk, "INT UNSIGNED NOT NULL", f"1 + n % {{{left}}}"),
            (rk, "INT UNSIGNED NOT NULL", right_expr),
            *extra,
            created(),
        ),
        key=(lk, rk),
        extra=(f"KEY ix_{name}_{rk} ({rk})",),
    )


def events(
    name: str, owner: str, rows: int, *extra: Col, edges: tuple[Mapping[str, str], ...] = ()
) -> Table:
    payload = f"JSON_OBJECT('evento', {pick(EVENTS)}, 'seq', n, 'ok', n % 3 = 0)"
    return Table(
        name,
        rows,
        (
            id_col("BIGINT UNSIGNED"),
            fk(owner),
            ("event", "VARCHAR(40) NOT NULL", pick(EVENTS, 3)),
            ("payload", "JSON NULL", nulls(payload, 4)),
            ("ip", "VARBINARY(16) NULL", nulls(IPV4, 6)),
            *extra,
            created("created_at", "DATETIME(6) NOT NULL"),
        ),
        edges=edges,
        extra=(f"KEY ix_{name}_owner ({owner}_id)",),
    )


def facts(name: str, owner: str, rows: int, *extra: Col) -> Table:
    return Table(
        name,
        rows,
        (
            id_col(),
            fk(owner),
            ("ref_date", "DATE NOT NULL", day("2022-01-01", 900, 1)),
            ("amount", "DECIMAL(14,2) NOT NULL", money(5000, 2)),
            ("quantity", "INT NOT NULL", f"1 + {rnd(50, 3)}"),
            enum("status", ["open", "paid", "cancelled", "refunded"], 4),
            *extra,
            updated(),
        ),
        extra=(f"KEY ix_{name}_owner ({owner}_id)",),
    )


# --- the schema (tables are created and filled in this order) ---

TABLES: tuple[Table, ...] = (
    Table(
        "region",
        5,
        (
            ("id", "SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT", "n + 1"),
            (
                "name",
                "VARCHAR(60) NOT NULL",
                "CONCAT(ELT(1 + n % 5, 'Norte', 'Nordeste', "
                "'Centro-Oeste', 'Sudeste', 'Sul'), IF(n < 5, '', CONCAT(' ', n DIV 5)))",
            ),
            (
                "boundary",
                "GEOMETRY NOT NULL",
                polygon("-60 + n % 20", "-30 + n DIV 20 % 20", "1.5"),
            ),
        ),
        edges=(
            {"name": q("Distrito Federal"), "boundary": "ST_GeomFromText('POINT(-47.93 -15.78)')"},
        ),
    ),
    lookup("state", 27, ("uf", "CHAR(2) NOT NULL", pick(UFS)), fk("region")),
    entity("city", 300, fk("state"), ("ibge_code", "INT UNSIGNED NOT NULL", "1100015 + n * 97")),
    Table(
        "store",
        500,
        (
            id_col(),
            ("code", "CHAR(8) NOT NULL", "CONCAT('L', LPAD(n + 1, 7, '0'))"),
            ("cnpj", "CHAR(14) NOT NULL", "LPAD(CRC32(n), 14, '0')"),
            (
                "name",
                "VARCHAR(120) NOT NULL",
                f"CONCAT({pick(STORE_KINDS)}, ' ', {pick(CITIES, 1)}, ' ', n + 1)",
            ),
            (
                "trade_name",
                "VARCHAR(120) NULL",
                "ELT(1 + n % 5, NULL, '', CONCAT('Radar ', n + 1), "
                "CONCAT('Rede Ação ', n), 'Matriz')",
            ),
            ("uf", "CHAR(2) NOT NULL", pick(UFS, 2)),
            enum("status", ["active", "inactive", "pending", "closed"], 3),
            (
                "services",
                "SET('delivery','pbm','vaccination','popular','drive_thru') NULL",
                nulls(
                    "MAKE_SET(n % 32, 'delivery', 'pbm', 'vaccination', 'popular', 'drive_thru')"
                ),
            ),
            ("is_active", "TINYINT(1) NOT NULL", "n % 9 <> 0"),
            fk("region", 4),
            fk("city", 5, null=True),
            ("area_m2", "DECIMAL(14,2) NULL", nulls(f"40 + {money(900, 6)}")),
            ("opened_on", "DATE NULL", nulls(day("1995-01-01", 10000, 7))),
            (
                "location",
                "POINT NULL",
                nulls(
                    f"ST_GeomFromText(CONCAT('POINT(', -34.8 - {rnd(3500, 8)}"
                    f" / 100, ' ', -33.7 + {rnd(3900, 9)} / 100, ')'))",
                    11,
                ),
            ),
            (
                "notes",
                "TEXT NULL",
                "ELT(1 + n % 4, NULL, '', 'ok', "
                "CONCAT('Observação: loja ', n + 1, ' — horário estendido'))",
            ),
            created(),
            updated(),
        ),
        edges=(
            {
                "name": q(FOUR_BYTE_STORE),
                "status": "''",
                "is_active": "2",
                "opened_on": "'0000-00-00'",
                "created_at": "'0000-00-00 00:00:00'",
                "trade_name": "''",
                "notes": q("Loja 🏥 com acentuação: ç ã é ü"),
            },
            {
                "name": q("Farmácia Coração 𝄞"),
                "is_active": "127",
                "trade_name": "NULL",
                "opened_on": "'2024-00-15'",
                "created_at": "'2024-00-15 08:30:00'",
            },
            {"is_active": "-1", "opened_on": "'1000-01-01'", "created_at": "'1000-01-01 00:00:00'"},
            {
                "is_active": "-128",
                "opened_on": "'9999-12-31'",
                "created_at": "'9999-12-31 23:59:59'",
            },
        ),
        extra=("UNIQUE KEY uq_store_code (code)",),
    ),
    Table(
        "store_address",
        500,
        (
            id_col(),
            ("store_id", "INT UNSIGNED NOT NULL", "n + 1"),
            (
                "street",
                "VARCHAR(200) NOT NULL",
                f"CONCAT({pick(['Rua', 'Avenida', 'Travessa'])}, "
                f"' ', {pick(FIRST, 1)}, ' ', {pick(LAST, 2)})",
            ),
            ("number", "VARCHAR(10) NOT NULL", f"IF(n % 13 = 0, 'S/N', {rnd(3000, 3)})"),
            (
                "complement",
                "VARCHAR(100) NULL",
                "ELT(1 + n % 3, NULL, '', CONCAT('Loja ', n % 40))",
            ),
            ("zip", "CHAR(8) NOT NULL", f"LPAD({rnd(99999999, 4)}, 8, '0')"),
            fk("city", 5),
            (
                "delivery_area",
                "POLYGON NULL",
                nulls(polygon(f"-50 + {rnd(100, 6)} / 10", f"-25 + {rnd(100, 7)} / 10", "0.05"), 4),
            ),
        ),
        extra=(
            "UNIQUE KEY uq_store_address_store (store_id)",
            "FOREIGN KEY (store_id) REFERENCES store (id)",
        ),
    ),
    Table(
        "store_metrics",
        100_000,
        (
            id_col("BIGINT UNSIGNED"),
            ("store_id", "INT UNSIGNED NOT NULL", "1 + n % {store}"),
            ("metric_date", "DATE NOT NULL", "DATE_ADD('2023-01-01', INTERVAL n DIV {store} DAY)"),
            ("revenue", "DECIMAL(14,2) NOT NULL", money(250_000, 1)),
            ("margin_pct", "DECIMAL(5,2) NULL", nulls(f"({rnd(8000, 2)} - 2000) / 100")),
            ("tickets", "MEDIUMINT UNSIGNED NOT NULL", rnd(5000, 3)),
            ("stock_delta", "MEDIUMINT NOT NULL", f"{rnd(20001, 4)} - 10000"),
            ("avg_ticket", "DOUBLE NULL", nulls(f"{rnd(10_000_000, 5)} / 997e0", 9)),
            ("conversion", "FLOAT NULL", nulls(f"{rnd(10000, 6)} / 10000e0", 8)),
            ("flags", "BIT(8) NOT NULL", rnd(256, 7)),
            enum("source", ["pos", "erp", "manual"], 8),
            (
                "captured_at",
                "DATETIME(3) NOT NULL",
                "DATE_ADD(DATE_ADD('2023-01-01 06:00:00', "
                f"INTERVAL n DIV {{store}} DAY), INTERVAL {rnd(43_200_000, 9)} * 1000 MICROSECOND)",
            ),
        ),
        edges=(
            {"tickets": "0", "stock_delta": "-8388608"},
            {"tickets": "16777215", "stock_delta": "8388607"},
        ),
        extra=("UNIQUE KEY uq_store_metrics_day (store_id, metric_date)",),
    ),
    Table(
        "store_general_strategy",
        3000,
        (
            ("store_id", "INT UNSIGNED NOT NULL", "1 + n % {store}"),
            ("strategy_year", "YEAR NOT NULL", "2015 + n DIV {store}"),
            enum("strategy", ["growth", "retention", "margin", "expansion"]),
            ("priority", "TINYINT NOT NULL", f"{rnd(21, 1)} - 10"),
            ("target_units", "DECIMAL(20,0) NULL", nulls("CRC32(n) * 1000")),
            (
                "payload",
                "JSON NULL",
                nulls(
                    f"JSON_OBJECT('foco', {pick(TERMS, 2)}, 'metas', JSON_ARRAY("
                    f"{rnd(100, 3)}, {rnd(100, 4)}), 'ação', 'expansão')",
                    6,
                ),
            ),
            ("approved", "BIT(1) NOT NULL", "n % 3 = 0"),
            updated(),
        ),
        key=("store_id", "strategy_year"),
        edges=(
            {
                "store_id": "1",
                "strategy_year": "1901",
                "priority": "-128",
                "target_units": "99999999999999999999",
                "payload": q(UNICODE_JSON),
            },
            {
                "store_id": "1",
                "strategy_year": "2155",
                "priority": "127",
                "target_units": "-99999999999999999999",
                "payload": "'null'",
            },
            {"store_id": "1", "strategy_year": "0", "payload": "'[]'"},
        ),
    ),
    Table(
        "store_document",
        1500,
        (
            id_col(),
            fk("store"),
            enum("doc_type", ["alvara", "crf", "avcb", "contrato", "outro"], 1),
            ("file_name", "VARCHAR(200) NOT NULL", "CONCAT('documento_', n + 1, '_licença.pdf')"),
            (
                "mime",
                "VARCHAR(60) NOT NULL",
                pick(["application/pdf", "image/jpeg", "image/png"], 2),
            ),
            ("size_bytes", "INT UNSIGNED NOT NULL", rnd(5_000_000, 3)),
            ("sha256", "BINARY(32) NOT NULL", "UNHEX(SHA2(n, 256))"),
            (
                "content",
                "BLOB NULL",
                nulls(f"UNHEX(REPEAT({hex_digits('n')}, 1 + {rnd(8, 4)}))", 5),
            ),
            ("uploaded_at", "DATETIME(6) NOT NULL", micro("2019-06-01", 150_000_000, 5)),
            ("expires_on", "DATE NULL", nulls(day("2024-01-01", 1500, 6), 3)),
        ),
        edges=({"content": ALL_BYTES, "sha256": "X'00FF'"}, {"content": "''"}),
    ),
    lookup("store_group", 20),
    link("store_group_member", "store_group", "store", 500),
    Table(
        "store_hours",
        3500,
        (
            ("store_id", "INT UNSIGNED NOT NULL", "1 + n % {store}"),
            ("weekday", "TINYINT UNSIGNED NOT NULL", "n DIV {store}"),
            ("opens_at", "TIME NOT NULL", f"SEC_TO_TIME(6 * 3600 + {rnd(8, 1)} * 1800)"),
            ("closes_at", "TIME NULL", nulls(f"SEC_TO_TIME(18 * 3600 + {rnd(13, 2)} * 1800)", 9)),
            ("is_24h", "TINYINT(1) NOT NULL", "n % 17 = 0"),
        ),
        key=("store_id", "weekday"),
    ),
    entity(
        "store_phone",
        800,
        fk("store"),
        ("phone", "VARCHAR(20) NOT NULL", f"CONCAT('+55 11 9', LPAD({rnd(99999999)}, 8, '0'))"),
    ),
    entity("distributor", 40, ("cnpj", "CHAR(14) NOT NULL", "LPAD(CRC32(n + 77), 14, '0')")),
    entity(
        "distributor_contact",
        120,
        fk("distributor"),
        ("email", "VARCHAR(190) NULL", nulls("CONCAT('contato', n, '@distribuidora.example')")),
    ),
    Table(
        "store_distributor",
        2000,
        (
            ("store_id", "INT UNSIGNED NOT NULL", "1 + n % {store}"),
            (
                "distributor_id",
                "INT UNSIGNED NOT NULL",
                "1 + (n DIV {store} * 7 + n % {store}) % {distributor}",
            ),
            ("priority", "TINYINT UNSIGNED NOT NULL", "1 + n DIV {store}"),
            ("credit_limit", "DECIMAL(14,2) NULL", nulls(money(90_000, 1))),
            ("since", "DATE NOT NULL", day("2015-01-01", 3000, 2)),
            ("active", "TINYINT(1) NOT NULL", "n % 8 <> 0"),
        ),
        key=("store_id", "distributor_id"),
    ),
    Table(
        "user_access",
        2000,
        (
            id_col(),
            ("email", "VARCHAR(190) NOT NULL", "CONCAT('usuario', n + 1, '@radar.example')"),
            ("name", "VARCHAR(120) NOT NULL", f"CONCAT({pick(FIRST)}, ' ', {pick(LAST, 1)})"),
            enum("role", ["admin", "manager", "pharmacist", "attendant", "auditor"], 2),
            ("is_admin", "TINYINT(1) NOT NULL", "n % 50 = 0"),
            ("password_hash", "CHAR(60) NOT NULL", "CONCAT('$2b$12$', LEFT(SHA2(n, 256), 53))"),
            (
                "mfa_secret",
                "VARBINARY(32) NULL",
                f"ELT(1 + n % 3, NULL, '', UNHEX({hex_digits('n')}))",
            ),
            ("login_count", "INT UNSIGNED NOT NULL", rnd(5000, 3)),
            ("last_login", "TIMESTAMP(6) NULL", nulls(micro("2022-01-01", 90_000_000, 4), 6)),
            ("birth_date", "DATE NULL", nulls(day("1950-01-01", 20000, 6), 4)),
            (
                "preferences",
                "JSON NULL",
                nulls(
                    "JSON_OBJECT('idioma', 'pt-BR', 'tema', "
                    f"{pick(['claro', 'escuro'], 7)}, 'n', n)",
                    3,
                ),
            ),
            created(),
        ),
        edges=(
            {
                "name": q("Zoë Gonçalves 𝄞 🙂"),
                "login_count": "4294967295",
                "last_login": "'2038-01-19 03:14:07.999999'",
                "preferences": q(UNICODE_JSON),
            },
            {
                "name": "''",
                "login_count": "0",
                "last_login": "'1970-01-01 00:00:01'",
                "preferences": "'null'",
                "mfa_secret": "''",
            },
        ),
        extra=("UNIQUE KEY uq_user_access_email (email)",),
    ),
    Table(
        "user_store",
        3000,
        (
            ("user_id", "INT UNSIGNED NOT NULL", "1 + n % {user_access}"),
            (
                "store_id",
                "INT UNSIGNED NOT NULL",
                "1 + (n DIV {user_access} + n % {user_access} * 3) % {store}",
            ),
            (
                "permissions",
                "SET('read','write','approve','export') NOT NULL",
                "MAKE_SET(1 + n % 15, 'read', 'write', 'approve', 'export')",
            ),
            ("is_primary", "TINYINT(1) NOT NULL", "n < {user_access}"),
            created("assigned_at"),
        ),
        key=("user_id", "store_id"),
        extra=(
            "KEY ix_user_store_store (store_id)",
            "FOREIGN KEY (user_id) REFERENCES user_access (id)",
            "FOREIGN KEY (store_id) REFERENCES store (id)",
        ),
    ),
    Table(
        "user_document",
        2500,
        (
            id_col(),
            fk("user_access", name="user_id"),
            enum("doc_kind", ["cpf", "rg", "crf", "cnh"], 1),
            ("number", "VARCHAR(20) NOT NULL", "LPAD(CRC32(n + 5), 11, '0')"),
            ("file", "BLOB NULL", nulls("UNHEX(SHA2(n, 512))", 3)),
            ("issued_on", "DATE NULL", nulls(day("2000-01-01", 8000, 2), 5)),
            ("verified", "BIT(1) NOT NULL", "n % 4 <> 0"),
            created(),
        ),
        edges=({"file": "''"},),
    ),
    Table(
        "user_terms",
        3000,
        (
            fk("user_access", name="user_id"),
            ("terms_version", "SMALLINT UNSIGNED NOT NULL", f"1 + {rnd(8, 1)}"),
            ("accepted_at", "TIMESTAMP NOT NULL", when("2019-01-01", 170_000_000, 2)),
            ("ip", "VARBINARY(16) NULL", nulls("INET6_ATON(CONCAT('192.168.', n % 256, '.1'))", 5)),
            (
                "user_agent",
                "VARCHAR(255) NULL",
                nulls(pick(["Mozilla/5.0", "RadarApp/3.1 (Android)", "RadarApp/3.0 (iOS)"], 3), 4),
            ),
        ),
        key=(),
        edges=(
            {
                "user_id": "1",
                "terms_version": "1",
                "ip": "NULL",
                "user_agent": "''",
                "accepted_at": "'0000-00-00 00:00:00'",
            },
        )
        * 2,
        extra=("KEY ix_user_terms_user (user_id)",),
    ),
    entity("manufacturer", 80, ("country", "CHAR(2) NOT NULL", pick(["BR", "US", "DE", "IN"]))),
    entity("brand", 300, fk("manufacturer")),
    Table(
        "product_category",
        120,
        (
            ("id", "SMALLINT UNSIGNED NOT NULL AUTO_INCREMENT", "n + 1"),
            ("parent_id", "SMALLINT UNSIGNED NULL", "IF(n < 12, NULL, 1 + n % 12)"),
            ("name", "VARCHAR(100) NOT NULL", f"CONCAT({pick(TERMS)}, ' ', n + 1)"),
            ("slug", "VARCHAR(120) NOT NULL", "CONCAT('categoria-', n + 1)"),
            ("depth", "TINYINT UNSIGNED NOT NULL", "IF(n < 12, 0, 1)"),
            ("icon", "VARCHAR(16) NULL", nulls(pick(["💊", "🧴", "🩹", "🍼", "🧼", "🌿"], 1), 5)),
        ),
    ),
    Table(
        "product",
        5000,
        (
            id_col(),
            ("sku", "VARCHAR(20) NOT NULL", "CONCAT('SKU-', LPAD(n + 1, 8, '0'))"),
            (
                "name",
                "VARCHAR(200) NOT NULL",
                f"CONCAT({pick(DRUGS)}, ' — ', "
                f"{pick(['cx 10', 'cx 20', 'frasco 100ml', 'bisnaga 50g'], 1)})",
            ),
            (
                "description",
                "MEDIUMTEXT NULL",
                nulls(
                    "CONCAT('Indicação: ', REPEAT('uso conforme "
                    f"orientação médica; ', 1 + {rnd(40, 2)}))",
                    6,
                ),
            ),
            fk("brand", 3),
            ("category_id", "SMALLINT UNSIGNED NOT NULL", f"1 + {rnd('{product_category}', 4)}"),
            ("price", "DECIMAL(14,2) NOT NULL", f"0.99 + {money(400, 5)}"),
            ("weight_g", "MEDIUMINT UNSIGNED NULL", nulls(f"1 + {rnd(5000, 6)}", 8)),
            ("is_controlled", "TINYINT(1) NOT NULL", "n % 7 = 0"),
            ("stock_status", "TINYINT(1) NOT NULL", f"{rnd(5, 7)} - 1"),
            ("active", "BIT(1) NOT NULL", "n % 10 <> 9"),
            ("launched", "YEAR NULL", nulls(f"1990 + {rnd(35, 8)}", 9)),
            (
                "leaflet",
                "LONGTEXT NULL",
                "IF(n % 10 = 0, CONCAT('Bula: ', REPEAT('Posologia. ', 50)), NULL)",
            ),
            created(),
        ),
        edges=(
            {
                "name": q("Pomada 💊 Cicatrizante 𝄞"),
                "launched": "0",
                "description": "''",
                "leaflet": "REPEAT('Bula — posologia, contraindicações, advertências. ', 20000)",
            },
        ),
        extra=("UNIQUE KEY uq_product_sku (sku)",),
    ),
    Table(
        "product_ean",
        6000,
        (
            ("ean", "VARCHAR(14) NOT NULL", "CONCAT('789', LPAD(n, 10, '0'))"),
            ("product_id", "INT UNSIGNED NOT NULL", "1 + n % {product}"),
            ("is_main", "TINYINT(1) NOT NULL", "n < {product}"),
            created(),
        ),
        key=("ean",),
        edges=({"ean": "'SEM GTIN'"},),
        extra=("FOREIGN KEY (product_id) REFERENCES product (id)",),
    ),
    lookup("pbm_program", 12, ("sponsor", "VARCHAR(80) NULL", nulls(pick(LAST), 4))),
    Table(
        "product_pbm",
        1200,
        (
            id_col(),
            fk("product"),
            fk("pbm_program", 1),
            ("discount_pct", "DECIMAL(5,2) NOT NULL", f"{rnd(6000, 2)} / 100"),
            ("max_units", "TINYINT UNSIGNED NOT NULL", f"1 + {rnd(12, 3)}"),
            ("valid_from", "DATE NOT NULL", day("2021-01-01", 700, 4)),
            ("valid_to", "DATE NULL", nulls(day("2024-01-01", 700, 5), 4)),
            ("requires_prescription", "TINYINT(1) NOT NULL", "n % 3 = 0"),
        ),
        edges=(
            {"discount_pct": "999.99", "max_units": "255", "valid_to": "'0000-00-00'"},
            {"discount_pct": "-999.99", "max_units": "0"},
        ),
    ),
    entity(
        "product_image",
        2000,
        fk("product"),
        ("url", "VARCHAR(255) NOT NULL", "CONCAT('https://cdn.example/p/', n, '.jpg')"),
    ),
    facts(
        "product_price", "product", 2000, ("list_price", "DECIMAL(14,2) NULL", nulls(money(500, 6)))
    ),
    facts("product_stock", "product", 2500, fk("store", 6)),
    lookup("tag", 50),
    link("product_tag", "product", "tag", 2000),
    Table(
        "contest",
        60,
        (
            id_col(),
            ("title", "VARCHAR(150) NOT NULL", f"CONCAT({pick(CONTESTS)}, ' ', n + 1)"),
            ("description", "TEXT NULL", nulls("CONCAT('Regulamento da campanha nº ', n + 1)", 4)),
            enum("status", ["draft", "running", "finished", "cancelled"], 1),
            ("starts_at", "DATETIME NOT NULL", when("2022-01-01", 60_000_000, 2)),
            ("ends_at", "DATETIME NULL", nulls(when("2024-01-01", 30_000_000, 3), 5)),
            ("budget", "DECIMAL(14,2) NULL", nulls(money(100_000, 4))),
            (
                "rules",
                "JSON NULL",
                nulls(
                    "JSON_OBJECT('pontos_por_real', n % 5 + 1, 'categorias', "
                    "JSON_ARRAY('genéricos', 'dermocosméticos'))",
                    3,
                ),
            ),
            fk("user_access", 5, name="created_by"),
        ),
        edges=({"title": q("Campeonato 𝄞 Música & Saúde 🎵"), "ends_at": "'0000-00-00 00:00:00'"},),
    ),
    Table(
        "contest_objective",
        240,
        (
            id_col(),
            fk("contest"),
            enum("kind", ["revenue", "units", "tickets", "margin", "nps"], 1),
            ("target", "DECIMAL(20,0) NOT NULL", f"{rnd(1_000_000, 2)} * 1000"),
            ("weight", "DECIMAL(5,2) NOT NULL", f"{rnd(10000, 3)} / 100"),
            ("offset_days", "SMALLINT NOT NULL", f"{rnd(61, 4)} - 30"),
            (
                "description",
                "VARCHAR(255) NULL",
                nulls("CONCAT('Objetivo ', n + 1, ': crescer ', n % 30, '%')"),
            ),
        ),
        edges=(
            {"offset_days": "-32768", "target": "99999999999999999999"},
            {"offset_days": "32767", "target": "0"},
        ),
    ),
    Table(
        "contest_score",
        8000,
        (
            id_col("BIGINT UNSIGNED"),
            fk("contest"),
            fk("store", 1),
            fk("user_access", 2, name="user_id", null=True),
            ("score", "DECIMAL(65,30) NOT NULL", DEC65_GEN.format(rnd(1_000_000, 3))),
            ("rank_pos", "SMALLINT UNSIGNED NOT NULL", "1 + n % 500"),
            ("scored_at", "DATETIME(6) NOT NULL", micro("2022-01-01", 60_000_000, 4)),
        ),
        edges=(
            {"score": DEC65_MAX, "rank_pos": "0"},
            {"score": "-" + DEC65_MAX, "rank_pos": "65535"},
            {"score": DEC65_TINY},
        ),
        extra=("KEY ix_contest_score_contest (contest_id, store_id)",),
    ),
    link("contest_store", "contest", "store", 600),
    entity("contest_prize", 150, fk("contest"), ("value", "DECIMAL(14,2) NOT NULL", money(5000))),
    Table(
        "voucher",
        5000,
        (
            id_col(),
            (
                "code",
                "CHAR(12) NOT NULL",
                f"CONCAT('V', LPAD(n + 1, 8, '0'), UPPER({hex_digits('n', 3)}))",
            ),
            ("value", "DECIMAL(14,2) NOT NULL", f"5 + {money(200, 1)}"),
            enum("status", ["issued", "redeemed", "expired", "cancelled"], 2),
            ("serial", "BIGINT UNSIGNED NOT NULL", "CRC32(n) * 4294967 + n"),
            ("token", "BINARY(16) NOT NULL", "UNHEX(" + hex_digits("CONCAT('v', n)") + ")"),
            ("flags", "BIT(8) NOT NULL", rnd(256, 3)),
            ("mask", "BIT(64) NOT NULL", "CRC32(n) * 4294967296 + CRC32(n + 7)"),
            ("expires_at", "TIMESTAMP NULL", nulls(when("2022-01-01", 200_000_000, 4), 6)),
            ("redeemed_at", "DATETIME NULL", nulls(when("2022-06-01", 60_000_000, 5), 3)),
            fk("store", 6, null=True),
        ),
        edges=(
            {
                "serial": "18446744073709551615",
                "mask": "b'" + "1" * 64 + "'",
                "flags": "b'11111111'",
                "token": "X'00'",
                "expires_at": "'1970-01-01 00:00:01'",
            },
            {"serial": "0", "mask": "0", "flags": "0", "expires_at": "'2038-01-19 03:14:07'"},
        ),
        extra=("UNIQUE KEY uq_voucher_code (code)",),
    ),
    facts("voucher_redemption", "voucher", 2000, fk("store", 5)),
    Table(
        "brand_metrics_average",
        2400,
        (
            id_col(),
            ("brand_id", "INT UNSIGNED NOT NULL", "1 + n % {brand}"),
            ("month", "DATE NOT NULL", "DATE_ADD('2022-01-01', INTERVAL n DIV {brand} MONTH)"),
            ("avg_price", "DOUBLE NOT NULL", f"{rnd(10_000_000, 1)} / 97e0"),
            ("avg_margin", "FLOAT NULL", nulls(f"{rnd(100_000, 2)} / 1000e0", 5)),
            ("share_pct", "DECIMAL(5,2) NOT NULL", f"{rnd(10000, 3)} / 100"),
            ("sample_size", "INT UNSIGNED NOT NULL", rnd(100_000, 4)),
            ("computed_at", "TIMESTAMP(6) NULL", nulls(micro("2022-02-01", 80_000_000, 5), 4)),
        ),
        edges=(
            {"avg_price": "1.7976931348623157e308", "avg_margin": "3.40282e38"},
            {"avg_price": "-1.7976931348623157e308", "avg_margin": "-3.40282e38"},
            {"avg_price": "2.2250738585072014e-308", "avg_margin": "1.17549e-38"},
        ),
        extra=("UNIQUE KEY uq_brand_month (brand_id, month)",),
    ),
    Table(
        "performance_indicators",
        4000,
        (
            id_col(),
            fk("store"),
            (
                "indicator",
                "VARCHAR(60) NOT NULL",
                pick(
                    ["ruptura", "giro_estoque", "ticket_médio", "nps", "conversão", "margem_bruta"],
                    1,
                ),
            ),
            (
                "period_month",
                "DATE NOT NULL",
                f"DATE_ADD('2023-01-01', INTERVAL {rnd(24, 2)} MONTH)",
            ),
            ("value_num", "DECIMAL(38,0) NULL", nulls(f"CRC32(n) * {rnd(1_000_000_000, 3)}", 6)),
            ("value_precise", "DECIMAL(65,30) NULL", nulls(DEC65_GEN.format(rnd(100000, 4)), 5)),
            (
                "raw_value",
                "BIGINT NOT NULL",
                f"(CAST(CRC32(n) AS SIGNED) - 2147483648) * {rnd(100000, 5)}",
            ),
            ("delta", "INT NOT NULL", f"{rnd(2_000_001, 6)} - 1000000"),
            ("ratio", "DOUBLE NULL", nulls(f"{rnd(1_000_000, 7)} / 3e0", 4)),
            ("window_length", "TIME NOT NULL", f"SEC_TO_TIME({rnd(4_000_000, 8)} - 2000000)"),
            (
                "processing_time",
                "TIME(6) NULL",
                nulls(
                    f"SEC_TO_TIME(CAST({rnd(4_000_000, 9)} - "
                    f"2000000 + {rnd(1_000_000, 10)} / 1000000 AS DECIMAL(14,6)))",
                    5,
                ),
            ),
            ("measured_at", "TIMESTAMP(6) NOT NULL", micro("2023-01-01", 60_000_000, 10)),
        ),
        edges=(
            {
                "value_num": NINES38,
                "value_precise": DEC65_MAX,
                "delta": "2147483647",
                "raw_value": "9223372036854775807",
                "window_length": "'838:59:59'",
                "processing_time": "'838:59:59.000000'",
            },
            {
                "value_num": "-" + NINES38,
                "value_precise": "-" + DEC65_MAX,
                "raw_value": "-9223372036854775808",
                "delta": "-2147483648",
                "window_length": "'-838:59:59'",
                "processing_time": "'-838:59:59.000000'",
            },
            {
                "value_num": "0",
                "value_precise": DEC65_TINY,
                "processing_time": "'-00:00:01.5'",
                "window_length": "'00:00:00'",
            },
        ),
    ),
    Table(
        "dashboard_data",
        1500,
        (
            id_col(),
            fk("user_access", name="user_id"),
            ("widget", "VARCHAR(60) NOT NULL", pick(["vendas", "ruptura", "ranking", "metas"], 1)),
            (
                "payload",
                "JSON NOT NULL",
                "JSON_OBJECT('título', CONCAT('Vendas ', n), 'série', "
                f"JSON_ARRAY(n, n * 2, n % 7), 'ícone', {pick(['📈', '📉', '💊'], 2)})",
            ),
            (
                "layout",
                "LONGTEXT NULL",
                nulls("REPEAT(CONCAT('{\"col\": ', n % 12, '}'), 1 + n % 20)", 4),
            ),
            ("cache", "VARBINARY(255) NULL", nulls("UNHEX(SHA2(n, 384))", 3)),
            ("version", "MEDIUMINT UNSIGNED NOT NULL", "1 + n % 40"),
            ("refreshed_at", "TIMESTAMP NOT NULL", when("2023-01-01", 50_000_000, 3)),
        ),
        edges=(
            {"payload": q(UNICODE_JSON), "layout": "''", "cache": "''"},
            {"payload": "'null'", "layout": "NULL", "cache": "NULL"},
        ),
    ),
    lookup("role", 6),
    lookup("permission", 40, ("scope", "VARCHAR(40) NOT NULL", pick(["loja", "rede", "admin"]))),
    link("role_permission", "role", "permission", 120),
    link("user_role", "user_access", "role", 2000),
    Table(
        "user_session",
        1000,
        (
            ("token", "CHAR(40) NOT NULL", hex_digits("CONCAT('sessão', n)", 40)),
            fk("user_access", name="user_id"),
            ("user_agent", "VARCHAR(255) NULL", nulls(pick(["Mozilla/5.0", "RadarApp/3.1"]), 3)),
            created("expires_at", "DATETIME NOT NULL"),
        ),
        key=("token",),
    ),
    Table(
        "app_setting",
        30,
        (
            ("setting_key", "VARCHAR(64) NOT NULL", "CONCAT('radar.setting.', LPAD(n, 6, '0'))"),
            ("value", "TEXT NULL", nulls("CONCAT('valor ', n)", 5)),
            updated(),
        ),
        key=("setting_key",),
    ),
    lookup("feature_flag", 25, ("enabled", "BIT(1) NOT NULL", "n % 2")),
    lookup("payment_method", 8),
    lookup("document_type", 15),
    lookup("terms_version", 8, ("body", "MEDIUMTEXT NOT NULL", "REPEAT('Termos de uso — ', 100)")),
    lookup("tax_rate", 27, ("rate", "DECIMAL(5,2) NOT NULL", f"7 + {rnd(1300)} / 100")),
    lookup("kpi_definition", 30, ("formula", "VARCHAR(255) NULL", nulls("CONCAT('x', n, ' / y')"))),
    entity("campaign", 80, ("starts_on", "DATE NOT NULL", day("2023-01-01", 500))),
    link("campaign_store", "campaign", "store", 2000),
    link("campaign_product", "campaign", "product", 1000),
    facts("order_header", "store", 3000, fk("user_access", 7, name="user_id", null=True)),
    facts("order_item", "order_header", 4000, fk("product", 7)),
    events("order_status_history", "order_header", 2000),
    facts("order_payment", "order_header", 2500, fk("payment_method", 8)),
    facts("invoice", "store", 2000, ("access_key", "CHAR(44) NOT NULL", "LPAD(n, 44, '0')")),
    facts("invoice_item", "invoice", 2000, fk("product", 9)),
    facts("sales_daily", "store", 2000, ("tickets", "INT UNSIGNED NOT NULL", rnd(900, 7))),
    facts("sales_monthly", "store", 1000),
    facts("goal", "store", 200),
    link("goal_store", "goal", "store", 1000),
    facts("pbm_enrollment", "pbm_program", 1200, fk("user_access", 3, null=True)),
    lookup("training_course", 40),
    facts("training_completion", "training_course", 1500, fk("user_access", 2)),
    lookup("survey", 10),
    entity("survey_question", 80, fk("survey")),
    facts("survey_answer", "survey_question", 2000, ("answer", "TEXT NULL", nulls("'Ótimo 👍'"))),
    lookup("banner", 30),
    events("banner_click", "banner", 1500),
    lookup("faq", 50, ("answer", "TEXT NOT NULL", "CONCAT('Resposta ', n, ': fale conosco.')")),
    entity("holiday", 60, ("day", "DATE NOT NULL", "DATE_ADD('2020-01-01', INTERVAL n * 23 DAY)")),
    events(
        "audit_log",
        "user_access",
        2000,
        ("table_name", "VARCHAR(64) NOT NULL", pick(["store", "product", "voucher"])),
        edges=({"id": "18446744073709551615"},),
    ),
    events("login_history", "user_access", 2500),
    events(
        "notification",
        "user_access",
        2000,
        ("title", "VARCHAR(200) NOT NULL", "'Nova campanha 🎉'"),
    ),
    link("notification_read", "notification", "user_access", 1500),
    events("sync_log", "store", 800),
    facts("import_batch", "user_access", 100),
    events("import_error", "import_batch", 0, ("message", "TEXT NULL", "NULL")),
    events("email_outbox", "user_access", 0),
    entity("api_token", 50, ("secret", "BINARY(20) NOT NULL", f"UNHEX({hex_digits('n', 40)})")),
    facts("store_ranking", "store", 500, ("position", "SMALLINT UNSIGNED NOT NULL", "n + 1")),
)

VIEWS: tuple[tuple[str, str], ...] = (
    (
        "v_store_overview",
        "SELECT s.id, s.code, s.name, s.status, a.city_id, COUNT(m.id) AS days,"
        " SUM(m.revenue) AS revenue FROM store s LEFT JOIN store_address a ON a.store_id = s.id"
        " LEFT JOIN store_metrics m ON m.store_id = s.id"
        " GROUP BY s.id, s.code, s.name, s.status, a.city_id",
    ),
    (
        "v_contest_leaderboard",
        "SELECT contest_id, store_id, MAX(score) AS best_score, "
        "MIN(rank_pos) AS best_rank FROM contest_score GROUP BY contest_id, store_id",
    ),
)


# --- building ---

_DIGITS = "(" + " UNION ALL ".join(f"SELECT {d} AS d" for d in range(10)) + ")"


def _qi(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def generated_rows(scale: int = 1) -> dict[str, int]:
    """Generated (non-edge) rows per table at `scale`."""
    return {t.name: t.rows * scale for t in TABLES}


def _numbers(start: int, stop: int) -> str:
    """A derived table `seq` with one column n = start .. stop-1, in order."""
    width = len(str(max(stop - start - 1, 1)))
    joins = " CROSS JOIN ".join(f"{_DIGITS} AS d{i}" for i in range(width))
    n = " + ".join([str(start)] + [f"d{i}.d * {10**i}" for i in range(width)])
    return f"(SELECT {n} AS n FROM {joins}) AS seq WHERE seq.n < {stop} ORDER BY seq.n"


def _create_sql(t: Table) -> str:
    lines = [f"{_qi(c)} {ddl}" for c, ddl, _ in t.cols]
    if t.key:
        lines.append(f"PRIMARY KEY ({', '.join(_qi(k) for k in t.key)})")
    lines.extend(t.extra)
    body = ",\n  ".join(lines)
    return f"CREATE TABLE {_qi(t.name)} (\n  {body}\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"


def _insert_sql(
    t: Table, counts: Mapping[str, int], source: str, overrides: Mapping[str, str] | None = None
) -> str:
    def value(col: str, expr: str) -> str:
        if overrides and col in overrides:
            return overrides[col]
        return _PLACEHOLDER.sub(lambda m: str(counts.get(m.group(1), m.group(0))), expr)

    names = ", ".join(_qi(c) for c, _, _ in t.cols)
    values = ",\n  ".join(value(c, e) for c, _, e in t.cols)
    return f"INSERT INTO {_qi(t.name)} ({names})\nSELECT {values}\nFROM {source}"


def _connect(url: str) -> Any:
    mysql = load_settings(env={"RADAR_MYSQL_URL": url}).mysql
    return pymysql.connect(
        host=mysql.host,
        port=mysql.port,
        user=mysql.user,
        password=mysql.password.reveal(),
        charset="utf8mb4",
        autocommit=True,
    )


def _url_database(url: str) -> str | None:
    return unquote(urlsplit(url).path.lstrip("/")) or None


def build_demo_database(
    url: str,
    database: str = "radar_demo",
    *,
    scale: int = 1,
    progress: Callable[[str], None] | None = None,
) -> dict[str, int]:
    """Drop and re-create `database` on the server at `url`, fill it, return its row counts.

    The database part of `url` is ignored. The result maps every base table (not the views)
    to its number of rows. `progress`, if given, receives a line every 10 tables.
    """
    if not _NAME.fullmatch(database):
        raise ValueError(f"invalid database name {database!r}: want ^[A-Za-z0-9_]{{1,64}}$")
    if not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"scale must be between 1 and {MAX_SCALE}, not {scale}")
    counts = generated_rows(scale)
    result: dict[str, int] = {}
    start = time.monotonic()
    conn = _connect(url)
    try:
        with conn.cursor() as cur:
            cur.execute("SET SESSION time_zone = '+00:00'")
            cur.execute(f"DROP DATABASE IF EXISTS {_qi(database)}")
            cur.execute(f"CREATE DATABASE {_qi(database)} CHARACTER SET utf8mb4")
            cur.execute(f"USE {_qi(database)}")
            for i, t in enumerate(TABLES, 1):
                cur.execute("SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ENGINE_SUBSTITUTION'")
                cur.execute(_create_sql(t))
                rows = 0
                for lo in range(0, counts[t.name], CHUNK):
                    source = _numbers(lo, min(lo + CHUNK, counts[t.name]))
                    rows += cur.execute(_insert_sql(t, counts, source))
                cur.execute("SET SESSION sql_mode = ''")
                for k, edge in enumerate(t.edges):
                    source = f"(SELECT {counts[t.name] + k} AS n) AS seq"
                    rows += cur.execute(_insert_sql(t, counts, source, edge))
                result[t.name] = rows
                if progress and (i % 10 == 0 or i == len(TABLES)):
                    progress(
                        f"{database}: {i}/{len(TABLES)} tables built "
                        f"({time.monotonic() - start:.1f} s)"
                    )
            for name, select in VIEWS:
                cur.execute(f"CREATE SQL SECURITY INVOKER VIEW {_qi(name)} AS {select}")
    finally:
        conn.close()
    return result


@click.command()
@click.option(
    "--url",
    envvar="RADAR_MYSQL_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="Server URL (env RADAR_MYSQL_URL); its database part is the default name.",
)
@click.option(
    "--database", default=None, help="Database to (re)create [default: the URL's, else radar_demo]."
)
@click.option(
    "--scale",
    type=click.IntRange(1, MAX_SCALE),
    default=1,
    show_default=True,
    help="Row-count multiplier (1 = about 200k rows).",
)
def main(url: str, database: str | None, scale: int) -> None:
    """Build the SYNTHETIC Radar-like demo database (drops it first if it exists)."""
    name = database or _url_database(url) or "radar_demo"
    counts = build_demo_database(
        url, name, scale=scale, progress=lambda line: click.echo(line, err=True)
    )
    click.echo(
        f"synthetic demo database {name}: {len(counts)} tables, {sum(counts.values())} rows",
        err=True,
    )


if __name__ == "__main__":
    main()
