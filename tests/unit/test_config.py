"""Settings: file < environment < flags, every problem at once, the password never shown."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from extractor.config import Secret, load_settings
from extractor.errors import ConfigError


def test_precedence_file_then_environment_then_flags(tmp_path: Path) -> None:
    config = tmp_path / "radar.toml"
    config.write_text('dest = "s3://from-file/x"\nworkers = 3\nprefix = "a=b/c=d"\n')
    settings = load_settings(config, env={"RADAR_WORKERS": "5"}, overrides={"workers": 7})
    assert settings.dest == "s3://from-file/x" and settings.dest_is_s3
    assert settings.workers == 7
    assert settings.prefix == "a=b/c=d"
    assert load_settings(config, env={"RADAR_WORKERS": "5"}).workers == 5


def test_url_and_parts() -> None:
    s = load_settings(
        env={
            "RADAR_MYSQL_URL": "mysql+pymysql://ro%40x:p%3Ass@db.local:3307/radar",
            "RADAR_MYSQL_SSL_MODE": "REQUIRED",
        }
    )
    assert (s.mysql.user, s.mysql.host, s.mysql.port, s.mysql.database) == (
        "ro@x",
        "db.local",
        3307,
        "radar",
    )
    assert s.mysql.password.reveal() == "p:ss" and s.mysql.ssl_mode == "required"
    parts = load_settings(
        env={"RADAR_MYSQL_URL": "mysql+pymysql://u:old@h/db", "RADAR_MYSQL_PASSWORD": "new"}
    )
    assert parts.mysql.password.reveal() == "new"


def test_defaults() -> None:
    s = load_settings(env={})
    assert (s.dest, s.prefix, s.mysql.port, s.mysql.database, s.mysql.ssl_mode) == (
        "./data",
        "origin=airbyte/database=bronze_radar",
        3306,
        "radar",
        "preferred",
    )
    assert s.row_group_bytes == 96 * 2**20 and s.page_bytes == 2**20


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_settings(
            env={
                "RADAR_WORKERS": "0",
                "RADAR_MYSQL_PORT": "http",
                "RADAR_DEST": "s3://Bad_Bucket",
                "RADAR_PREFIX": "../escape",
                "RADAR_MYSQL_SSL_CA": str(tmp_path / "missing.pem"),
            }
        )
    problems = info.value.problems
    assert len(problems) == 5, problems
    assert info.value.exit_code == 2


def test_unknown_keys_and_bad_toml(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("dest = \n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(bad, env={})
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('desk = "x"\n')
    with pytest.raises(ConfigError, match="unknown keys: desk"):
        load_settings(unknown, env={})


def test_password_never_in_repr_or_errors() -> None:
    s = load_settings(env={"RADAR_MYSQL_URL": "mysql+pymysql://u:Sup3rSecret@h/db"})
    assert "Sup3rSecret" not in repr(s) and "Sup3rSecret" not in str(s.mysql)
    assert pickle.loads(pickle.dumps(s)).mysql.password.reveal() == "Sup3rSecret"
    with pytest.raises(ConfigError) as info:
        load_settings(env={"RADAR_MYSQL_URL": "postgres://u:Sup3rSecret@h/db"})
    assert "Sup3rSecret" not in str(info.value)
    assert repr(Secret("x")) == "Secret('***')"
