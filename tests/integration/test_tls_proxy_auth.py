"""The TLS proxy admits only a client that proves the password (tls_proxy.py, mysql_auth.py).

Any local process can reach the proxy's port (in a pod, every sidecar). One that comes
first, with the right user name and a wrong password, must get the proxy's ERR and
nothing of the server's, the server must not see a byte of it, and the table's read must
go on. Over the private TLS MariaDB (mysql_native_password); over the test server when
it is MySQL (caching_sha2_password, with an empty cache: full authentication, where the
proxy itself answers with the password, and with a warm one: fast authentication); after
auth switches on both; and against the scripted server for what a real one won't show.
"""

from __future__ import annotations

import logging
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pyarrow as pa
import pymysql
import pytest

from extractor.config import load_settings
from extractor.contract.types import plan_column
from extractor.run.catalog import discover
from extractor.source import reader
from extractor.source.batching import BatchPlan
from extractor.source.tls import client_context
from extractor.source.tls_proxy import TlsProxy, Upstream
from tests.conftest import Server
from tests.integration.fake_mysql import FakeMySQL
from tests.integration.raw_client import (
    RawClient,
    error_code,
    greeting_nonce,
    handshake_response,
    scramble,
)
from tests.integration.tls_mariadb import TLS_ONLY_USER, TlsMariaDB

pytestmark = pytest.mark.integration
NATIVE = "mysql_native_password"
SHA2 = "caching_sha2_password"
NAMES = ["a store", "another", "a third"]


@dataclass(frozen=True)
class Account:
    """A server, the account the reader uses over TLS, and where its table `store` is."""

    flavor: Literal["mariadb", "mysql"]
    host: str
    port: int
    user: str
    password: str
    database: str
    ssl_mode: str
    ssl_ca: str | None
    admin_url: str  # for discovery, so that the account's own first login is the read's

    def env(self) -> dict[str, str]:
        url = f"mysql+pymysql://{self.user}@{self.host}:{self.port}/{self.database}"
        env = {
            "RADAR_MYSQL_URL": url,
            "RADAR_MYSQL_PASSWORD": self.password,
            "RADAR_MYSQL_SSL_MODE": self.ssl_mode,
        }
        return env | ({"RADAR_MYSQL_SSL_CA": self.ssl_ca} if self.ssl_ca else {})

    def upstream(self) -> Upstream:
        return Upstream(
            self.host, self.port, self.ssl_mode, self.ssl_ca, self.user, self.password, 5.0
        )


def _read(account: Account) -> list[str]:
    """The table's read, as the pipeline runs it: connectorx through the TLS proxy."""
    catalog = discover(load_settings(env={"RADAR_MYSQL_URL": account.admin_url}))
    plans = [plan_column(c) for c in catalog.tasks["store"].columns]
    settings = load_settings(env=account.env())
    batches = reader.read_batches(
        settings.mysql,
        "store",
        plans,
        BatchPlan(1000, 8),
        server=reader.Server(account.flavor, tls=True),
    )
    table = pa.Table.from_batches(list(batches)).sort_by("id")
    return [str(name) for name in table.column("name").to_pylist()]


def _first_at_the_port(monkeypatch: pytest.MonkeyPatch, visit: Callable[[int], None]) -> None:
    """Let `visit` connect to the reader's proxy before connectorx does."""

    class Raced(TlsProxy):
        def __enter__(self) -> TlsProxy:
            super().__enter__()
            visit(self.port)
            return self

    monkeypatch.setattr(reader, "TlsProxy", Raced)


def _assert_refused(client: RawClient, final: bytes, code: int = 1045) -> str:
    """The proxy's ERR, after the greeting and nothing else, then the end: no OK, no data."""
    assert error_code(final) == code, final
    assert len(client.received) == 2 and client.received[0][:1] == b"\x0a", client.received
    assert b"TLS proxy" in final, final
    assert client.closed()
    return final[9:].decode()


# ----------------------------------------------------------------------------- accounts


@pytest.fixture
def mariadb(tls_server: TlsMariaDB) -> Account:
    """The REQUIRE SSL account: a read that works with it had a TLS leg to the server."""
    return Account(
        "mariadb",
        "127.0.0.1",
        tls_server.port,
        TLS_ONLY_USER,
        tls_server.password,
        tls_server.database,
        "verify_identity",
        str(tls_server.certs.ca),
        tls_server.url(),
    )


@pytest.fixture(scope="module")
def mysql_database(server: Server, make_module_database: Callable[..., str]) -> str:
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        (version,) = cur.fetchone()
    conn.close()
    if "mariadb" in str(version).lower():
        pytest.skip("the test server is MariaDB (RADAR_TEST_MYSQL_URL selects MySQL)")
    conn = server.connect(ssl=client_context("required", None))
    with conn.cursor() as cur:
        cur.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        ((_, cipher),) = cur.fetchall()
    conn.close()
    if not cipher:
        pytest.skip("the MySQL test server offers no TLS")
    return make_module_database(
        "CREATE TABLE store (id INT PRIMARY KEY, name VARCHAR(20))",
        "INSERT INTO store VALUES " + ", ".join(f"({i}, '{n}')" for i, n in enumerate(NAMES)),
    )


@contextmanager
def _mysql_account(server: Server, database: str, plugin: str = SHA2) -> Iterator[Account]:
    """A new account: nothing of it in caching_sha2's cache until it first logs in."""
    user, password = f"radar_px_{uuid.uuid4().hex[:8]}", f"px-{uuid.uuid4().hex}"
    conn = server.connect()
    with conn.cursor() as cur:
        cur.execute(f"CREATE USER %s@'%%' IDENTIFIED WITH {plugin} BY %s", (user, password))
        cur.execute(f"GRANT SELECT ON `{database}`.* TO %s@'%%'", (user,))
    try:
        yield Account(
            "mysql",
            server.host,
            server.port,
            user,
            password,
            database,
            "required",
            None,
            server.url(database),
        )
    finally:
        with conn.cursor() as cur:
            cur.execute("DROP USER %s@'%%'", (user,))
        conn.close()


@pytest.fixture
def mysql(server: Server, mysql_database: str) -> Iterator[Account]:
    with _mysql_account(server, mysql_database) as account:
        yield account


def _sha2_cache_is_warm(account: Account) -> bool:
    """Ask the server itself (plaintext, a scramble only): fast auth (0x01 0x03) or full
    (0x01 0x04); then hang up, which leaves the cache as it was."""
    client = RawClient(account.port, account.host)
    nonce = greeting_nonce(client.read())
    client.send(handshake_response(account.user, SHA2, scramble(SHA2, account.password, nonce)))
    answer = client.read()
    client.close()
    assert answer in (b"\x01\x03", b"\x01\x04"), answer
    return answer == b"\x01\x03"


# ------------------------------------------------- a stranger first, then the read goes on


STRANGERS: dict[str, Callable[[RawClient, Account], bytes]] = {
    "wrong_password": lambda c, a: c.login(a.user, "not-the-password", NATIVE),
    "wrong_password_sha2": lambda c, a: c.login(a.user, "not-the-password", SHA2),
    "wrong_user": lambda c, a: c.login("root", a.password, NATIVE),
    "empty_answer": lambda c, a: c.login(a.user, "", NATIVE),
    "unknown_plugin": lambda c, a: c.login(a.user, "", "mysql_clear_password", auth=b"guess\x00"),
}


@pytest.mark.parametrize("how", list(STRANGERS))
def test_a_stranger_first_is_refused_and_the_read_goes_on_mariadb(
    mariadb: Account,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    refusals: list[str] = []

    def stranger(port: int) -> None:
        client = RawClient(port)
        refusals.append(_assert_refused(client, STRANGERS[how](client, mariadb)))
        client.close()

    _first_at_the_port(monkeypatch, stranger)
    with caplog.at_level(logging.WARNING, logger="extractor.source.reader"):
        names = _read(mariadb)
    assert names == ["Farmácia Central 😀", "Drogaria Sul", "Loja 3"]
    (message,) = refusals
    assert "Access denied for user" in message
    if how == "unknown_plugin":
        assert "'mysql_clear_password' cannot be verified" in message
    (warning,) = [r.getMessage() for r in caplog.records if r.name == reader.__name__]
    assert "refused a local client that did not prove the password" in warning
    assert "the read went on" in warning
    assert mariadb.password not in warning + message


def test_a_silent_stranger_holds_up_nobody(
    mariadb: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It connects and says nothing (the proxy gives it 10 s): connectorx is admitted meanwhile."""
    silent: list[RawClient] = []

    def stranger(port: int) -> None:
        client = RawClient(port)
        client.read()  # the greeting; then nothing
        silent.append(client)

    _first_at_the_port(monkeypatch, stranger)
    started = time.monotonic()
    assert len(_read(mariadb)) == 3
    assert time.monotonic() - started < 8
    silent[0].close()


@pytest.mark.parametrize("cache", ["empty", "warm"])
def test_a_stranger_first_is_refused_and_the_read_goes_on_mysql(
    mysql: Account, monkeypatch: pytest.MonkeyPatch, cache: str
) -> None:
    """The measured flaw: with an empty cache the server asks for full authentication, and
    the proxy used to answer it with the password for whoever had connected."""
    if cache == "warm":
        pymysql.connect(
            host=mysql.host,
            port=mysql.port,
            user=mysql.user,
            password=mysql.password,
            ssl=client_context("required", None),
        ).close()
    assert _sha2_cache_is_warm(mysql) is (cache == "warm")
    refusals: list[str] = []

    def stranger(port: int) -> None:
        for how in ("wrong_password_sha2", "wrong_password"):
            client = RawClient(port)
            refusals.append(_assert_refused(client, STRANGERS[how](client, mysql)))
            client.close()

    _first_at_the_port(monkeypatch, stranger)
    assert _read(mysql) == NAMES
    assert len(refusals) == 2
    assert _sha2_cache_is_warm(mysql)  # the read authenticated, fully if it was empty


def test_the_refused_stranger_is_the_failure_when_no_one_else_came(mariadb: Account) -> None:
    with TlsProxy(mariadb.upstream()) as proxy:
        client = RawClient(proxy.port)
        _assert_refused(client, client.login(mariadb.user, "not-the-password", NATIVE))
        started = time.monotonic()
        failure = proxy.failure()
    assert time.monotonic() - started < 1.5  # the parent's end of stdin ends the wait
    assert failure is not None and failure.code == 1045
    assert failure.message == (
        f"TLS proxy: refused a local client that did not prove the password (user "
        f"'{TLS_ONLY_USER}': a wrong password), and none that did came"
    )
    assert proxy.refused() is not None


# ---------------------------------------------------------------------------- auth switch


def test_auth_switch_on_mariadb(tls_server: TlsMariaDB, mariadb: Account) -> None:
    """A client that answers the greeting with caching_sha2 (MariaDB lacks it) is switched
    to mysql_native_password with a new nonce; its answer is checked too."""
    with TlsProxy(mariadb.upstream()) as proxy:
        client = RawClient(proxy.port)
        assert client.login(mariadb.user, mariadb.password, SHA2)[:1] == b"\x00"
        assert client.received[1].startswith(b"\xfe" + NATIVE.encode() + b"\x00")
        client.quit()
        assert proxy.failure() is None
    with TlsProxy(mariadb.upstream()) as proxy:
        client = RawClient(proxy.port)
        final = client.login(mariadb.user, mariadb.password, SHA2, switch_password="wrong")
        failure = proxy.failure()
    assert error_code(final) == 1045 and b"switch to mysql_native_password" in final
    assert not any(packet[:1] == b"\x00" for packet in client.received)
    assert failure is not None and failure.code == 1045


@pytest.mark.parametrize("answer", ["right", "wrong"])
def test_auth_switch_on_mysql(mysql: Account, answer: str) -> None:
    """mysql_native_password is gone from MySQL 9: a client naming it is switched to
    caching_sha2_password (a new account: full authentication, answered by the proxy)."""
    with TlsProxy(mysql.upstream()) as proxy:
        client = RawClient(proxy.port)
        final = client.login(
            mysql.user,
            mysql.password,
            NATIVE,
            switch_password=mysql.password if answer == "right" else "wrong",
        )
        assert client.received[1].startswith(b"\xfe" + SHA2.encode() + b"\x00")
        if answer == "right":
            assert final[:1] == b"\x00"
            client.quit()
        else:
            client.close()
        failure = proxy.failure()
    if answer == "right":
        assert failure is None
        assert _sha2_cache_is_warm(mysql)
    else:
        assert error_code(final) == 1045 and b"did not prove the password" in final
        assert failure is not None and failure.code == 1045
        assert not _sha2_cache_is_warm(mysql)  # the wrong answer never reached the server


def test_a_switch_to_a_plugin_the_proxy_cannot_check_is_refused(
    server: Server, mysql_database: str
) -> None:
    """sha256_password (still in MySQL 9): the proxy could not tell a right answer."""
    with _mysql_account(server, mysql_database, plugin="sha256_password") as account:
        with TlsProxy(account.upstream()) as proxy:
            with pytest.raises(pymysql.OperationalError) as caught:
                pymysql.connect(
                    host="127.0.0.1",
                    port=proxy.port,
                    user=account.user,
                    password=account.password,
                    ssl_disabled=True,
                )
            failure = proxy.failure()
        assert caught.value.args[0] == 2059
        assert "'sha256_password', which the TLS proxy cannot verify" in caught.value.args[1]
        assert failure is not None and failure.code == 2059


# ------------------------------------------------ the scripted server: what it never saw


@pytest.mark.parametrize("script", ["sha2_full", "switch_sha2_full"])
def test_a_stranger_reaches_nothing_of_the_server(
    server_tls_context: tuple[ssl.SSLContext, Path], script: str
) -> None:
    context, ca = server_tls_context
    fake = FakeMySQL(script, "s3cret-pw", tls=context)
    try:
        with TlsProxy(
            Upstream("127.0.0.1", fake.port, "verify_ca", str(ca), "fake", "s3cret-pw", 5.0)
        ) as proxy:
            client = RawClient(proxy.port)
            _assert_refused(client, client.login("fake", "guess", SHA2))
            failure = proxy.failure()
    finally:
        fake.close()
    assert fake.received == []  # not even the SSLRequest
    assert not fake.errors, fake.errors
    assert failure is not None and failure.code == 1045


@pytest.mark.parametrize("script", ["switch_sha2_full", "switch_ed25519"])
def test_what_follows_a_switch_is_checked_before_the_server_sees_it(
    server_tls_context: tuple[ssl.SSLContext, Path], script: str
) -> None:
    """A wrong answer to a switch into caching_sha2, and a switch into client_ed25519,
    which the proxy refuses at once: the server gets nothing after the handshake."""
    context, ca = server_tls_context
    fake = FakeMySQL(script, "s3cret-pw", tls=context)
    try:
        with TlsProxy(
            Upstream("127.0.0.1", fake.port, "verify_ca", str(ca), "fake", "s3cret-pw", 5.0)
        ) as proxy:
            client = RawClient(proxy.port)
            final = client.login("fake", "s3cret-pw", NATIVE, switch_password="guess")
            failure = proxy.failure()
    finally:
        fake.close()
    assert len(fake.received) == 2  # the SSLRequest and the handshake response, no more
    assert not fake.errors, fake.errors
    code = 2059 if script == "switch_ed25519" else 1045
    assert error_code(final) == code and failure is not None and failure.code == code
    assert not any(packet[:1] == b"\x00" for packet in client.received)
