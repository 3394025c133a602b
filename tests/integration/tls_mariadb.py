"""A private MariaDB server with TLS, for the tests of the TLS modes and the TLS proxy.

The shared server at 127.0.0.1:3306 has no TLS (have_ssl=DISABLED), so TLS needs a second
`mariadbd` of its own: a throwaway datadir, a throwaway CA and server certificate, a free
port on 127.0.0.1, a user with a password and a small database. Startup takes about 2 s.

    with running_tls_mariadb() as tls:   # or the session fixture a test module defines
        tls.url()                        # mysql+pymysql://radar:…@127.0.0.1:PORT/radar_tls
        tls.admin()                      # root, over the private unix socket

Certificates (all under the temp dir, see `Certificates`):
- `ca`: the CA that signed the server's certificate;
- `other_ca`: an unrelated CA, for "wrong CA" tests;
- the server starts with a certificate for DNS:localhost and IP:127.0.0.1;
  `with tls.certificate("localhost_only")` swaps in one for DNS:localhost alone
  (`FLUSH SSL` reloads it without a restart), for the identity tests.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pymysql

MARIADBD = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
INSTALL_DB = shutil.which("mariadb-install-db") or "/usr/bin/mariadb-install-db"
USER = "radar"
PASSWORD = "tls-Pw/7f3a@x"  # URL-special characters on purpose
DATABASE = "radar_tls"
_START_TIMEOUT_S = 30

_SMALL_TABLE = [
    "CREATE TABLE store (id INT PRIMARY KEY, name VARCHAR(50) NOT NULL, price DECIMAL(10,2),"
    " ratio FLOAT, score DOUBLE, opened DATE, at DATETIME(6), raw VARBINARY(8))",
    "INSERT INTO store VALUES"
    " (1, 'Farmácia Central 😀', 10.50, 1.2345678, 5e-324, '2020-01-02',"
    "  '2024-01-01 12:00:00.123456', 0x00ff10),"
    " (2, 'Drogaria Sul', NULL, -3.4028234e38, 1.7976931348623157e308, NULL, NULL, ''),"
    " (3, 'Loja 3', -0.01, NULL, NULL, '0000-00-00', '0000-00-00 00:00:00', NULL)",
]


# A REQUIRE SSL account: any plaintext connection of it is refused, so a read that works
# with it proves the server's leg was encrypted.
TLS_ONLY_USER = "radar_tls_only"


def available() -> bool:
    return os.path.exists(MARIADBD) and os.path.exists(INSTALL_DB)


@dataclass(frozen=True)
class Certificates:
    """PEM files of the throwaway PKI."""

    ca: Path
    other_ca: Path
    server_cert: Path  # what the server is configured with (swapped by `certificate()`)
    server_key: Path
    variants: dict[str, tuple[Path, Path]]  # name -> (cert, key)


def make_certificates(directory: Path) -> Certificates:
    """A CA, an unrelated CA, and server certificates (EC P-256: fast to make)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def key() -> ec.EllipticCurvePrivateKey:
        return ec.generate_private_key(ec.SECP256R1())

    def write(path: Path, pem: bytes) -> Path:
        path.write_bytes(pem)
        return path

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def ca(common: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        private = key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name(common))
            .issuer_name(name(common))
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(private.public_key()), critical=False
            )
            .sign(private, hashes.SHA256())
        )
        return cert, private

    def leaf(
        issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
        names: list[x509.GeneralName],
        stem: str,
    ) -> tuple[Path, Path]:
        private = key()
        cert = (
            x509.CertificateBuilder()
            .subject_name(name("localhost"))
            .issuer_name(issuer[0].subject)
            .public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer[1].public_key()),
                critical=False,
            )
            .sign(issuer[1], hashes.SHA256())
        )
        return (
            write(directory / f"{stem}.crt", cert.public_bytes(serialization.Encoding.PEM)),
            write(
                directory / f"{stem}.key",
                private.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            ),
        )

    root = ca("radar test CA")
    other = ca("radar unrelated CA")
    localhost = x509.DNSName("localhost")
    loopback = x509.IPAddress(ipaddress.ip_address("127.0.0.1"))
    variants = {
        "localhost_and_ip": leaf(root, [localhost, loopback], "server-full"),
        "localhost_only": leaf(root, [localhost], "server-localhost"),
    }
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    shutil.copyfile(variants["localhost_and_ip"][0], cert_path)
    shutil.copyfile(variants["localhost_and_ip"][1], key_path)
    return Certificates(
        ca=write(directory / "ca.crt", root[0].public_bytes(serialization.Encoding.PEM)),
        other_ca=write(
            directory / "other-ca.crt", other[0].public_bytes(serialization.Encoding.PEM)
        ),
        server_cert=cert_path,
        server_key=key_path,
        variants=variants,
    )


@dataclass
class TlsMariaDB:
    """A running private MariaDB with TLS; see the module docstring."""

    directory: Path
    port: int
    socket_path: Path
    certs: Certificates
    process: subprocess.Popen[bytes]
    host: str = "127.0.0.1"
    user: str = USER
    password: str = PASSWORD
    database: str = DATABASE

    def url(
        self,
        database: str | None = None,
        *,
        host: str | None = None,
        user: str | None = None,
        password: str | None = None,
    ) -> str:
        user = self.user if user is None else user
        password = self.password if password is None else password
        auth = f"{quote(user, safe='')}:{quote(password, safe='')}" if password else quote(user)
        return f"mysql+pymysql://{auth}@{host or self.host}:{self.port}/{database or self.database}"

    def admin(self, database: str | None = None) -> pymysql.Connection:
        """root over the private unix socket (root has no TCP account here)."""
        return pymysql.connect(
            unix_socket=str(self.socket_path),
            user="root",
            password="",
            database=database,
            charset="utf8mb4",
            autocommit=True,
        )

    def execute(self, *statements: str, database: str | None = None) -> None:
        conn = self.admin(database)
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    @contextmanager
    def certificate(self, variant: str) -> Iterator[None]:
        """Serve another certificate (reloaded by FLUSH SSL) for the duration of the block."""
        cert, key = self.certs.variants[variant]
        default_cert, default_key = self.certs.variants["localhost_and_ip"]
        shutil.copyfile(cert, self.certs.server_cert)
        shutil.copyfile(key, self.certs.server_key)
        self.execute("FLUSH SSL")
        try:
            yield
        finally:
            shutil.copyfile(default_cert, self.certs.server_cert)
            shutil.copyfile(default_key, self.certs.server_key)
            self.execute("FLUSH SSL")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_SERVER_OPTIONS = [
    # Small and quick: a test server, not a benchmark of InnoDB.
    "--innodb-buffer-pool-size=64M",
    "--innodb-log-file-size=16M",
    "--performance-schema=OFF",
    "--skip-log-bin",
    "--character-set-server=utf8mb4",
    "--collation-server=utf8mb4_general_ci",
]


@contextmanager
def running_tls_mariadb(base: Path | None = None) -> Iterator[TlsMariaDB]:
    """Start the private server, yield it ready (user, database, table), stop and remove it."""
    directory = Path(tempfile.mkdtemp(prefix="radar-tls-", dir=base))
    try:
        certs = make_certificates(directory)
        datadir = directory / "data"
        install = subprocess.run(
            [
                INSTALL_DB,
                "--no-defaults",
                "--auth-root-authentication-method=normal",
                f"--datadir={datadir}",
                "--user=root",
                "--skip-test-db",
                *_SERVER_OPTIONS,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        if install.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {install.stderr[-2000:]}")
        port = _free_port()
        socket_path = directory / "mysqld.sock"
        log = directory / "error.log"
        process = subprocess.Popen(
            [
                MARIADBD,
                "--no-defaults",
                f"--datadir={datadir}",
                f"--port={port}",
                f"--socket={socket_path}",
                f"--pid-file={directory / 'mysqld.pid'}",
                "--bind-address=127.0.0.1",
                f"--log-error={log}",
                "--user=root",
                f"--ssl-ca={certs.ca}",
                f"--ssl-cert={certs.server_cert}",
                f"--ssl-key={certs.server_key}",
                *_SERVER_OPTIONS,
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        server = TlsMariaDB(directory, port, socket_path, certs, process)
        try:
            _wait_ready(server, log)
            server.execute(
                f"CREATE USER '{USER}'@'%' IDENTIFIED BY '{PASSWORD}'",
                f"CREATE DATABASE {DATABASE} CHARACTER SET utf8mb4",
                f"GRANT ALL ON *.* TO '{USER}'@'%'",  # the tests create more databases
            )
            conn = server.admin(DATABASE)
            with conn.cursor() as cur:
                cur.execute("SET SESSION sql_mode = '', time_zone = '+00:00'")
                for statement in _SMALL_TABLE:
                    cur.execute(statement)
            conn.close()
            yield server
        finally:
            _stop(process)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _wait_ready(server: TlsMariaDB, log: Path) -> None:
    deadline = time.monotonic() + _START_TIMEOUT_S
    while True:
        if server.process.poll() is not None:
            raise RuntimeError(f"mariadbd exited ({server.process.returncode}): {_tail(log)}")
        try:
            server.admin().close()
            return
        except pymysql.MySQLError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"mariadbd not ready after {_START_TIMEOUT_S} s: {_tail(log)}"
                ) from None
            time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def _tail(log: Path) -> str:
    with suppress(OSError):
        return log.read_text(errors="replace")[-2000:]
    return "(no error log)"
