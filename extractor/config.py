"""Typed settings: config file (TOML) < environment < flags, validated once, before any I/O.

Every problem is collected and reported together in one `ConfigError`. The MySQL
password and the Slack webhook URL are held in a `Secret`, whose repr and str never show it.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, cast
from urllib.parse import unquote, urlsplit

from extractor.compat_policy import MODES, CompatMode, CompatPolicy, validate_compat
from extractor.drift_policy import ACTIONS, Action, DriftPolicy, validate_policy
from extractor.errors import ConfigError
from extractor.streams_policy import StreamsPolicy, parse_streams, validate_streams

SslMode = Literal["disabled", "preferred", "required", "verify_ca", "verify_identity"]
SSL_MODES: tuple[SslMode, ...] = (
    "disabled",
    "preferred",
    "required",
    "verify_ca",
    "verify_identity",
)

DEFAULT_PREFIX = "origin=airbyte/database=bronze_radar"
MIB = 1024 * 1024
_NAME = re.compile(r"^[A-Za-z0-9_$-]{1,64}$")
_PREFIX_PART = re.compile(r"^[A-Za-z0-9_.=-]+$")
# Glue allows any single-line name up to 255 characters; surrounding blanks are a typo.
_CRAWLER = re.compile(r"^(?!\s)[^\x00-\x1f\x7f]{1,255}(?<!\s)$")
# Glue names (database, table prefix): Athena takes letters, digits, _ and -; Glue lower-cases.
_GLUE_NAME = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_WEB_URL = re.compile(r"^https?://[^/\s]+\S*$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> tuple[object, ...]:
        return (Secret, (self._value,))


@dataclass(frozen=True)
class MySQLSettings:
    host: str = "127.0.0.1"
    port: int = 3306
    user: str = "root"
    password: Secret = field(default_factory=lambda: Secret(""))
    database: str = "radar"
    ssl_mode: SslMode = "preferred"
    ssl_ca: str | None = None

    def describe(self) -> str:
        """Where we connect, for humans: never the password."""
        return f"{self.user}@{self.host}:{self.port}/{self.database}"


@dataclass(frozen=True)
class Settings:
    mysql: MySQLSettings = field(default_factory=MySQLSettings)
    dest: str = "./data"
    s3_endpoint_url: str | None = None
    prefix: str = DEFAULT_PREFIX
    workers: int = field(default_factory=lambda: max(1, os.cpu_count() or 1))
    log_file: str | None = None
    # A read batch holds about batch_bytes of Arrow data, and at most batch_rows rows:
    # rows per batch come from each table's width (extractor/source/batching.py). On 1 MiB
    # BLOB rows 2 MiB kept peak RSS near 450 MB, 8 MiB near 750 MB (connectorx grows its
    # builders by doubling and keeps 32 rows besides); narrow tables still get 17k+ rows.
    batch_bytes: int = 2 * MIB
    batch_rows: int = 50_000
    # Two buffers of 96 MiB keep peak RSS near 300 MB at 3M and 6M rows (128 MiB: up to
    # 425 MB); on disk a row group is then about 30 MB.
    row_group_bytes: int = 96 * MIB
    file_max_bytes: int = 1024 * MIB
    page_bytes: int = 1 * MIB
    # Reliability (extractor/run/retry.py, watchdog.py, breaker.py).
    retry_attempts: int = 3  # attempts per table in total, the first one included
    retry_base_s: float = 2.0  # backoff before retry n: uniform(0, min(cap, base * 2**(n-1)))
    retry_cap_s: float = 60.0
    table_timeout_s: float = 3600.0  # one table, all its attempts and waits included
    breaker_failures: int = 3  # consecutive transient table failures of one kind that stop a run
    # One writer per table and date (extractor/sink/lock.py): the lock's lease, renewed by a
    # heartbeat, and how long a second run waits for it. Waiting one lease outlasts the lock
    # of a killed run, so an orchestrator's retry after a dead pod proceeds.
    lock_lease_s: float = 300.0
    lock_wait_s: float = 300.0
    # Schema drift (extractor/drift/): stored schemas at <schemas_dir>/<database>/<table>.json;
    # the policy holds the file's [drift] section and on_drift (flag > env > file).
    schemas_dir: str = "schemas"
    drift_policy: DriftPolicy = field(default_factory=DriftPolicy)
    # The cut-over from Airbyte (extractor/compat/): tables written in their output schema.
    compat: CompatPolicy = field(default_factory=CompatPolicy)
    # One table on several primary-key ranges at once (extractor/streams_policy.py).
    streams: StreamsPolicy = field(default_factory=StreamsPolicy)
    # Operations (extractor/ops/after_run.py): Slack after a run, the Glue crawler after a success.
    slack_webhook_url: Secret = field(default_factory=lambda: Secret(""))
    glue_crawler: str | None = None
    # The Glue catalog without a crawler (extractor/ops/catalog.py): the database, the prefix of
    # its table names (a crawler's "table prefix"), and `extract`'s sync after a full success.
    glue_database: str | None = None
    glue_table_prefix: str = ""
    catalog_sync: bool = False
    logs_url: str | None = None  # where the logs are, linked from a failure message

    @property
    def dest_is_s3(self) -> bool:
        return self.dest.startswith("s3://")


# name -> environment variable. The TOML file uses the same names (lower case, flat).
ENV_VARS: dict[str, str] = {
    "mysql_url": "RADAR_MYSQL_URL",
    "mysql_host": "RADAR_MYSQL_HOST",
    "mysql_port": "RADAR_MYSQL_PORT",
    "mysql_user": "RADAR_MYSQL_USER",
    "mysql_password": "RADAR_MYSQL_PASSWORD",
    "mysql_database": "RADAR_MYSQL_DATABASE",
    "mysql_ssl_mode": "RADAR_MYSQL_SSL_MODE",
    "mysql_ssl_ca": "RADAR_MYSQL_SSL_CA",
    "dest": "RADAR_DEST",
    "s3_endpoint_url": "RADAR_S3_ENDPOINT_URL",
    "prefix": "RADAR_PREFIX",
    "workers": "RADAR_WORKERS",
    "log_file": "RADAR_LOG_FILE",
    "batch_mb": "RADAR_BATCH_MB",
    "batch_rows": "RADAR_BATCH_ROWS",
    "row_group_mb": "RADAR_ROW_GROUP_MB",
    "file_max_mb": "RADAR_FILE_MAX_MB",
    "retry_attempts": "RADAR_RETRY_ATTEMPTS",
    "retry_base_s": "RADAR_RETRY_BASE_S",
    "retry_cap_s": "RADAR_RETRY_CAP_S",
    "table_timeout_s": "RADAR_TABLE_TIMEOUT_S",
    "breaker_failures": "RADAR_BREAKER_FAILURES",
    "lock_lease_s": "RADAR_LOCK_LEASE_S",
    "lock_wait_s": "RADAR_LOCK_WAIT_S",
    "schemas_dir": "RADAR_SCHEMAS_DIR",
    "on_drift": "RADAR_ON_DRIFT",
    "compat": "RADAR_COMPAT",
    "streams": "RADAR_STREAMS",
    "slack_webhook_url": "RADAR_SLACK_WEBHOOK_URL",
    "glue_crawler": "RADAR_GLUE_CRAWLER",
    "glue_database": "RADAR_GLUE_DATABASE",
    "glue_table_prefix": "RADAR_GLUE_TABLE_PREFIX",
    "catalog_sync": "RADAR_CATALOG_SYNC",
    "logs_url": "RADAR_LOGS_URL",
}
# TOML tables besides the flat keys: [drift] (class = action) and [drift.tables.<table>];
# `compat` is a flat key or a [compat] table with [compat.tables.<table>]; so is `streams`
# ([streams] default, [streams.tables.<table>] streams).
_TOML_TABLES = ("drift",)


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Merge the three layers and validate the result, raising one ConfigError for all problems."""
    problems: list[str] = []
    raw: dict[str, Any] = {}
    if config_file is not None:
        raw.update(_read_toml(Path(config_file), problems))
    environ = os.environ if env is None else env
    for name, var in ENV_VARS.items():
        if environ.get(var, "") != "":
            raw[name] = environ[var]
    for name, value in (overrides or {}).items():
        if value is not None:
            raw[name] = value
    settings = _build(raw, problems)
    if problems:
        raise ConfigError(problems)
    assert settings is not None
    return settings


def _read_toml(path: Path, problems: list[str]) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        problems.append(f"config file {path} does not exist")
        return {}
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        problems.append(f"config file {path} is not valid TOML: {exc}")
        return {}
    unknown = sorted(set(data) - set(ENV_VARS) - set(_TOML_TABLES))
    if unknown:
        problems.append(f"config file {path} has unknown keys: {', '.join(unknown)}")
    out = {k: v for k, v in data.items() if k in ENV_VARS}
    if "drift" in data:
        out["drift"] = validate_policy(data["drift"], f"config file {path}", problems)
    if "compat" in data:  # the file's policy; "compat" itself is the flag's or environment's
        out["compat_file"] = validate_compat(out.pop("compat"), f"config file {path}", problems)
    if "streams" in data:  # likewise: "streams" itself is the flag's or environment's
        out["streams_file"] = validate_streams(out.pop("streams"), f"config file {path}", problems)
    return out


def _build(raw: Mapping[str, Any], problems: list[str]) -> Settings | None:
    mysql = _mysql_settings(raw, problems)
    defaults = Settings()
    workers = _integer(raw, "workers", defaults.workers, 1, 64, problems)
    batch_mb = _integer(raw, "batch_mb", defaults.batch_bytes // MIB, 1, 1024, problems)
    batch_rows = _integer(raw, "batch_rows", defaults.batch_rows, 1_000, 10_000_000, problems)
    row_group_mb = _integer(raw, "row_group_mb", defaults.row_group_bytes // MIB, 1, 4096, problems)
    file_max_mb = _integer(raw, "file_max_mb", defaults.file_max_bytes // MIB, 1, 65536, problems)
    retry_attempts = _integer(raw, "retry_attempts", defaults.retry_attempts, 1, 10, problems)
    # Tests set the backoff to milliseconds; above 10 minutes a wait only delays the alert.
    retry_base_s = _seconds(raw, "retry_base_s", defaults.retry_base_s, 0.001, 600, problems)
    retry_cap_s = _seconds(raw, "retry_cap_s", defaults.retry_cap_s, 0.001, 3600, problems)
    if retry_cap_s < retry_base_s:
        problems.append(
            f"retry_cap_s ({retry_cap_s:g}) must not be below retry_base_s ({retry_base_s:g})"
        )
    table_timeout_s = _seconds(
        raw, "table_timeout_s", defaults.table_timeout_s, 0.1, 7 * 86400, problems
    )
    breaker_failures = _integer(
        raw, "breaker_failures", defaults.breaker_failures, 1, 1000, problems
    )
    # Tests lease for a second; an hour-long lease would block the next run after a kill.
    lock_lease_s = _seconds(raw, "lock_lease_s", defaults.lock_lease_s, 1, 3600, problems)
    lock_wait_s = _seconds(raw, "lock_wait_s", defaults.lock_wait_s, 0, 86400, problems)
    dest = str(raw.get("dest", defaults.dest))
    _check_dest(dest, problems)
    prefix = str(raw.get("prefix", defaults.prefix)).strip("/")
    if not all(_PREFIX_PART.match(p) and p not in (".", "..") for p in prefix.split("/")):
        problems.append(f"prefix {prefix!r} must be path segments of letters, digits and _.=-")
    endpoint = raw.get("s3_endpoint_url")
    if endpoint is not None and not re.match(r"^https?://[^/\s]+", str(endpoint)):
        problems.append("s3_endpoint_url must start with http:// or https://")
    schemas_dir = str(raw.get("schemas_dir", defaults.schemas_dir))
    if not schemas_dir.strip():
        problems.append("schemas_dir must not be empty")
    on_drift = raw.get("on_drift")
    if on_drift is not None and on_drift not in ACTIONS:
        problems.append(f"on_drift {on_drift!r} must be one of {', '.join(ACTIONS)}")
    policy = raw.get("drift", defaults.drift_policy)
    compat = raw.get("compat_file", defaults.compat)
    forced = raw.get("compat")
    if forced is not None and forced not in MODES:
        problems.append(f"compat {forced!r} must be one of {', '.join(MODES)}")
        forced = None
    streams = raw.get("streams_file", defaults.streams)
    forced_streams = None
    if raw.get("streams") is not None:
        try:
            forced_streams = parse_streams(raw["streams"])
        except ValueError as exc:
            problems.append(str(exc))
    webhook = _webhook(raw, problems)
    glue_crawler = _optional_text(
        raw,
        "glue_crawler",
        _CRAWLER,
        problems,
        "must be 1-255 characters without control characters",
    )
    logs_url = _optional_text(
        raw, "logs_url", _WEB_URL, problems, "must be an http:// or https:// URL"
    )
    glue_database, glue_table_prefix, catalog_sync = _catalog(raw, dest, problems)
    if mysql is None or problems:
        return None
    return Settings(
        mysql=mysql,
        dest=dest,
        s3_endpoint_url=None if endpoint is None else str(endpoint),
        prefix=prefix,
        workers=workers,
        log_file=None if raw.get("log_file") is None else str(raw["log_file"]),
        batch_bytes=batch_mb * MIB,
        batch_rows=batch_rows,
        row_group_bytes=row_group_mb * MIB,
        file_max_bytes=file_max_mb * MIB,
        retry_attempts=retry_attempts,
        retry_base_s=retry_base_s,
        retry_cap_s=retry_cap_s,
        table_timeout_s=table_timeout_s,
        breaker_failures=breaker_failures,
        lock_lease_s=lock_lease_s,
        lock_wait_s=lock_wait_s,
        schemas_dir=schemas_dir,
        drift_policy=DriftPolicy(
            policy.keys, policy.tables, None if on_drift is None else cast(Action, on_drift)
        ),
        compat=CompatPolicy(
            compat.mode, compat.tables, None if forced is None else cast(CompatMode, forced)
        ),
        streams=StreamsPolicy(streams.default, streams.tables, forced_streams),
        slack_webhook_url=webhook,
        glue_crawler=glue_crawler,
        glue_database=glue_database,
        glue_table_prefix=glue_table_prefix,
        catalog_sync=catalog_sync,
        logs_url=logs_url,
    )


def _webhook(raw: Mapping[str, Any], problems: list[str]) -> Secret:
    """The Slack webhook is a credential: a problem with it never quotes it."""
    value = raw.get("slack_webhook_url", "")
    url = value.reveal() if isinstance(value, Secret) else str(value)
    if not url:
        return Secret("")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        parts, host = None, ""
    # Plain http only to this machine, where a test's server listens; never across a network.
    local = host in ("127.0.0.1", "localhost")
    if (
        parts is None
        or not host
        or not (parts.scheme == "https" or (parts.scheme == "http" and local))
    ):
        problems.append(
            "slack_webhook_url must be an https:// URL (http:// only to 127.0.0.1 or localhost)"
        )
    return Secret(url)


def _catalog(
    raw: Mapping[str, Any], dest: str, problems: list[str]
) -> tuple[str | None, str, bool]:
    rule = "must be 1-255 letters, digits, _ or -"
    database = _optional_text(raw, "glue_database", _GLUE_NAME, problems, rule)
    prefix = _optional_text(raw, "glue_table_prefix", _GLUE_NAME, problems, rule)
    sync = _boolean(raw, "catalog_sync", problems)
    if sync and database is None and raw.get("glue_database") is None:
        problems.append("catalog_sync needs glue_database (RADAR_GLUE_DATABASE)")
    if sync and not dest.startswith("s3://"):
        problems.append("catalog_sync needs an s3:// dest: Glue locations are S3 URLs")
    # Lower case as Glue stores them, so that what we look up is what Glue has.
    return (None if database is None else database.lower()), (prefix or "").lower(), sync


def _boolean(raw: Mapping[str, Any], key: str, problems: list[str]) -> bool:
    value = raw.get(key, False)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text not in ("0", "false", "no", "off"):
        problems.append(f"{key} must be true or false, got {str(value)[:40]!r}")
    return False


def _optional_text(
    raw: Mapping[str, Any], key: str, pattern: re.Pattern[str], problems: list[str], rule: str
) -> str | None:
    if raw.get(key) is None:
        return None
    value = str(raw[key])
    if not pattern.match(value):
        problems.append(f"{key} {value[:80]!r} {rule}")
        return None
    return value


def _mysql_settings(raw: Mapping[str, Any], problems: list[str]) -> MySQLSettings | None:
    base = MySQLSettings()
    parts: dict[str, Any] = {}
    if "mysql_url" in raw:
        parsed = _parse_url(str(raw["mysql_url"]), problems)
        if parsed is None:
            return None
        parts.update(parsed)
    # Explicit parts win over the URL: the password often arrives apart, from a secret store.
    for key in ("host", "port", "user", "password", "database", "ssl_mode", "ssl_ca"):
        if f"mysql_{key}" in raw:
            parts[key] = raw[f"mysql_{key}"]
    port = _integer(parts, "port", base.port, 1, 65535, problems, label="mysql_port")
    database = str(parts.get("database", base.database))
    if not _NAME.match(database):
        problems.append(f"mysql_database {database!r} is not a valid database name")
    ssl_mode = str(parts.get("ssl_mode", base.ssl_mode)).lower()
    if ssl_mode not in SSL_MODES:
        problems.append(f"mysql_ssl_mode {ssl_mode!r} must be one of {', '.join(SSL_MODES)}")
    ssl_ca = parts.get("ssl_ca")
    if ssl_ca is not None and not Path(str(ssl_ca)).is_file():
        problems.append(f"mysql_ssl_ca {ssl_ca} is not a readable file")
    host = str(parts.get("host", base.host))
    if not host or any(c.isspace() for c in host):
        problems.append("mysql_host must be a host name or address")
    password = parts.get("password", "")
    return MySQLSettings(
        host=host,
        port=port,
        user=str(parts.get("user", base.user)),
        password=password if isinstance(password, Secret) else Secret(str(password)),
        database=database,
        ssl_mode=cast(SslMode, ssl_mode),
        ssl_ca=None if ssl_ca is None else str(ssl_ca),
    )


def _parse_url(url: str, problems: list[str]) -> dict[str, Any] | None:
    # Parsed by hand so that no error message can echo the URL and its password.
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        problems.append("mysql_url is not a valid URL (mysql+pymysql://user:pass@host:3306/db)")
        return None
    if parts.scheme not in ("mysql", "mysql+pymysql", "mariadb", "mariadb+pymysql"):
        problems.append("mysql_url must start with mysql+pymysql:// (or mysql://)")
        return None
    out: dict[str, Any] = {}
    if parts.hostname:
        out["host"] = parts.hostname
    if port is not None:
        out["port"] = port
    if parts.username:
        out["user"] = unquote(parts.username)
    if parts.password is not None:
        out["password"] = Secret(unquote(parts.password))
    database = parts.path.lstrip("/")
    if database:
        out["database"] = unquote(database)
    query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
    for key in ("ssl_mode", "ssl_ca"):
        if key in query:
            out[key] = unquote(query[key])
    return out


def _integer(
    raw: Mapping[str, Any],
    key: str,
    default: int,
    low: int,
    high: int,
    problems: list[str],
    label: str | None = None,
) -> int:
    value = raw.get(key, default)
    try:
        number = int(value)
    except (TypeError, ValueError):
        problems.append(f"{label or key} must be an integer, got {value!r}")
        return default
    if not low <= number <= high:
        problems.append(f"{label or key} must be between {low} and {high}, got {number}")
        return default
    return number


def _seconds(
    raw: Mapping[str, Any],
    key: str,
    default: float,
    low: float,
    high: float,
    problems: list[str],
) -> float:
    value = raw.get(key, default)
    try:
        number = float(value)
    except (TypeError, ValueError):
        problems.append(f"{key} must be a number of seconds, got {value!r}")
        return default
    if not low <= number <= high:  # NaN fails this test too
        problems.append(f"{key} must be between {low:g} and {high:g} seconds, got {value!r}")
        return default
    return number


def _check_dest(dest: str, problems: list[str]) -> None:
    if dest.startswith("s3://"):
        bucket = dest[5:].split("/", 1)[0]
        if not _BUCKET.match(bucket):
            problems.append(f"dest {dest!r}: {bucket!r} is not a valid S3 bucket name")
    elif "://" in dest:
        problems.append(f"dest {dest!r} must be s3://bucket[/prefix] or a local path")
    elif not dest:
        problems.append("dest must not be empty")
