"""Fixtures shared by the integration modules: one private TLS MariaDB per test session, and
a server-side TLS context for the scripted server (fake_mysql.py)."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration import tls_mariadb
from tests.integration.tls_mariadb import (
    TLS_ONLY_USER,
    TlsMariaDB,
    make_certificates,
    running_tls_mariadb,
)


@pytest.fixture(scope="session")
def tls_server() -> Iterator[TlsMariaDB]:
    if not tls_mariadb.available():
        pytest.skip("mariadbd / mariadb-install-db not installed")
    with running_tls_mariadb() as running:
        running.execute(
            f"CREATE USER '{TLS_ONLY_USER}'@'%' IDENTIFIED BY '{running.password}' REQUIRE SSL",
            f"GRANT ALL ON *.* TO '{TLS_ONLY_USER}'@'%'",
        )
        yield running


@pytest.fixture(scope="module")
def server_tls_context(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    certs = make_certificates(tmp_path_factory.mktemp("fake-pki"))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(certs.server_cert, certs.server_key)
    return context, certs.ca
