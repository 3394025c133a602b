"""Fixtures shared by the integration modules: one private TLS MariaDB per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.integration import tls_mariadb
from tests.integration.tls_mariadb import TLS_ONLY_USER, TlsMariaDB, running_tls_mariadb


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
