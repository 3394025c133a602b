"""The servers bench.py runs against: what each is (flavour, TLS), its CLI contender, its CPU.

`--servers mariadb,mysql` names the two servers of this machine (SERVERS); `--url` any other.
The CLI contender reads in the TLS mode radar-extract reads in: radar-extract's default
ssl_mode (`preferred`) encrypts whenever the server offers TLS (through its local TLS proxy,
extractor/source/tls_proxy.py), so the CLI then gets `--ssl-mode=REQUIRED` (MySQL's client)
or `--ssl` (MariaDB's). For MySQL the real `mysql` client is preferred: the one inside the
chroot that shared/mysql/start-mysql.sh installs (MYSQL_ROOT_DIR), else `mysql` on PATH.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from extractor.config import MySQLSettings, load_settings
from extractor.source.connection import control_connection, query, server_offers_tls

SERVERS = {
    "mariadb": "mysql+pymysql://root@127.0.0.1:3306/radar_bench",
    "mysql": "mysql+pymysql://radar:radar@127.0.0.1:3307/radar_bench",
}
MYSQL_ROOT = Path(os.environ.get("MYSQL_ROOT_DIR", "~/.cache/radar-mysql")).expanduser()


@dataclass(frozen=True)
class ServerInfo:
    flavor: Literal["mariadb", "mysql"]
    version: str
    offers_tls: bool
    tls: bool  # radar-extract reads over TLS (ssl_mode is not `disabled` and TLS is offered)
    pid: int | None  # the server's process on this machine, for its CPU time (None: unknown)

    @property
    def name(self) -> str:
        flavor = "MariaDB" if self.flavor == "mariadb" else "MySQL"
        return f"{flavor} {self.version.split('-')[0]}"


def settings(url: str) -> MySQLSettings:
    return load_settings(env={"RADAR_MYSQL_URL": url}).mysql


def probe(url: str) -> ServerInfo:
    mysql = settings(url)
    with control_connection(mysql) as conn:
        version = str(query(conn, "SELECT VERSION() AS v")[0]["v"])
        offers = server_offers_tls(conn)
        pid_file = str(query(conn, "SELECT @@pid_file AS p")[0]["p"] or "")
    flavor: Literal["mariadb", "mysql"] = "mariadb" if "mariadb" in version.lower() else "mysql"
    tls = offers and mysql.ssl_mode != "disabled"
    return ServerInfo(flavor, version, offers, tls, _pid(pid_file, mysql.port))


def _pid(pid_file: str, port: int) -> int | None:
    """The server's pid from its pid file (on the host, or inside the MySQL chroot), if that
    process is alive here; a server in another container gives None."""
    for root in (Path("/"), MYSQL_ROOT):
        path = root / pid_file.lstrip("/") if pid_file else None
        if path is not None and path.is_file():
            try:
                pid = int(path.read_text().split()[0])
            except (ValueError, IndexError):
                continue
            if Path(f"/proc/{pid}/stat").exists():
                return pid
    return None


def cpu_seconds(pid: int | None) -> float | None:
    """user + system CPU seconds of a live process (/proc/<pid>/stat), None if unknown."""
    if pid is None:
        return None
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client_flavor(binary: list[str]) -> str:
    try:
        out = subprocess.run(
            [*binary, "--version"], capture_output=True, text=True, timeout=10
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return "mariadb" if "mariadb" in out.lower() else "mysql"


def cli_argv(info: ServerInfo, mysql: MySQLSettings, sql: str) -> tuple[list[str], str]:
    """The `--quick` CLI contender for this server, in radar-extract's TLS mode; its label."""
    chrooted = MYSQL_ROOT / "usr" / "bin" / "mysql"
    binary: list[str]
    if info.flavor == "mysql" and chrooted.exists() and os.geteuid() == 0:
        binary = ["chroot", str(MYSQL_ROOT), "mysql"]
    elif info.flavor == "mysql":
        binary = [shutil.which("mysql") or shutil.which("mariadb") or "mysql"]
    else:
        binary = [shutil.which("mariadb") or shutil.which("mysql") or "mariadb"]
    client = _client_flavor(binary)
    if client == "mysql":
        tls = ["--ssl-mode=REQUIRED" if info.tls else "--ssl-mode=DISABLED"]
    else:
        tls = ["--ssl"] if info.tls else []  # as before: the client's own default
    password = [f"-p{mysql.password.reveal()}"] if mysql.password else []
    argv = [
        *binary,
        "--quick",
        *tls,
        "-h",
        mysql.host,
        "-P",
        str(mysql.port),
        "-u",
        mysql.user,
        *password,
        mysql.database,
        "-e",
        sql,
    ]
    name = "mysql" if client == "mysql" else "mariadb"
    return argv, f"{name} --quick{', TLS' if info.tls else ''}"
