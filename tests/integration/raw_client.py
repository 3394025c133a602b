"""A MySQL client that says exactly what a test tells it to in the connection phase.

pymysql always answers with the plugin the greeting names and with the password it was
given; the TLS proxy's tests also need a client that names another plugin (to provoke an
auth switch), answers a switch with another password, or sends an empty answer. The
scrambles are pymysql's own (an implementation apart from the proxy's). Plaintext only,
as connectorx speaks to the proxy.
"""

from __future__ import annotations

import socket
import struct
from dataclasses import dataclass, field

from pymysql import _auth

LONG_PASSWORD = 0x1
CONNECT_WITH_DB = 0x8
PROTOCOL_41 = 0x200
SECURE_CONNECTION = 0x8000
PLUGIN_AUTH = 0x80000
CAPABILITIES = LONG_PASSWORD | PROTOCOL_41 | SECURE_CONNECTION | PLUGIN_AUTH


def scramble(plugin: str, password: str, nonce: bytes) -> bytes:
    secret = password.encode()
    if plugin == "mysql_native_password":
        return bytes(_auth.scramble_native_password(secret, nonce))
    if plugin == "caching_sha2_password":
        return bytes(_auth.scramble_caching_sha2(secret, nonce))
    raise ValueError(plugin)


def greeting_nonce(greeting: bytes) -> bytes:
    """The 20-byte nonce of an Initial Handshake v10."""
    at = greeting.index(b"\x00", 1) + 1 + 4
    first = greeting[at : at + 8]
    second_at = at + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10
    return first + greeting[second_at : second_at + 12]


def handshake_response(user: str, plugin: str, auth: bytes, database: str | None = None) -> bytes:
    caps = CAPABILITIES | (CONNECT_WITH_DB if database else 0)
    return (
        struct.pack("<IIB", caps, 1 << 24, 45)
        + b"\x00" * 23
        + user.encode()
        + b"\x00"
        + bytes([len(auth)])
        + auth
        + (database.encode() + b"\x00" if database else b"")
        + plugin.encode()
        + b"\x00"
    )


def error_code(payload: bytes) -> int:
    assert payload[:1] == b"\xff", payload[:1]
    return int.from_bytes(payload[1:3], "little")


@dataclass
class RawClient:
    """One plaintext connection; `received`: every packet's payload, in order."""

    port: int
    host: str = "127.0.0.1"
    received: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=15)
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def read(self) -> bytes:
        header = self._exactly(4)
        self.seq = header[3] + 1
        payload = self._exactly(int.from_bytes(header[:3], "little"))
        self.received.append(payload)
        return payload

    def send(self, payload: bytes) -> None:
        self.sock.sendall(len(payload).to_bytes(3, "little") + bytes([self.seq]) + payload)
        self.seq += 1

    def quit(self) -> None:
        """COM_QUIT (a command: sequence id 0), then close."""
        self.seq = 0
        self.send(b"\x01")
        self.close()

    def closed(self) -> bool:
        """Whether the other side has ended the connection (EOF or reset), nothing more sent."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.sock.recv(size - len(data))
            if not chunk:
                raise EOFError(f"connection closed after {len(self.received)} packets")
            data += chunk
        return data

    def login(
        self,
        user: str,
        password: str,
        plugin: str = "caching_sha2_password",
        *,
        switch_password: str | None = None,
        auth: bytes | None = None,
        database: str | None = None,
    ) -> bytes:
        """Log in, answering a switch with `switch_password` (default: `password`); `auth`
        replaces the first answer. The last packet: OK (0x00) or ERR (0xFF)."""
        nonce = greeting_nonce(self.read())
        first = scramble(plugin, password, nonce) if auth is None else auth
        self.send(handshake_response(user, plugin, first, database))
        while True:
            payload = self.read()
            if payload[:1] == b"\xfe":
                name, _, data = payload[1:].partition(b"\x00")
                again = password if switch_password is None else switch_password
                self.send(scramble(name.decode(), again, data.removesuffix(b"\x00")))
            elif payload[:1] in (b"\x00", b"\xff"):
                return payload
            else:
                assert payload == b"\x01\x03", payload  # through the proxy: never 0x01 0x04
