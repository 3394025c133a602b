"""A scripted one-connection MySQL server, for what MariaDB cannot show the TLS proxy.

MariaDB speaks mysql_native_password (and ed25519); MySQL 8's caching_sha2_password, with
its fast and full authentication and the auth switch into it, is played here, over a real
TLS leg, precisely enough for pymysql as the client (which checks every sequence id). It
also cuts a result set cleanly at a packet boundary, the case where only the proxy's TCP
reset keeps a cut from looking like a normal end of stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import ssl
import struct
import threading
from dataclasses import dataclass, field

CLIENT_LONG_PASSWORD = 0x1
CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SSL = 0x800
CLIENT_TRANSACTIONS = 0x2000
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
CAPABILITIES = (
    CLIENT_LONG_PASSWORD
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_PLUGIN_AUTH
)
OK = b"\x00\x00\x00\x02\x00\x00\x00"  # affected 0, insert id 0, autocommit, no warnings
ROWS_BEFORE_CUT = 50

# Authentication scripts: what the server does after the client's HandshakeResponse41.
SCRIPTS = ("native", "sha2_fast", "sha2_full", "switch_sha2_full", "switch_ed25519", "deny")


def scramble_sha2(password: bytes, nonce: bytes) -> bytes:
    """caching_sha2 fast-auth token: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce)."""
    first = hashlib.sha256(password).digest()
    second = hashlib.sha256(hashlib.sha256(first).digest() + nonce).digest()
    return bytes(a ^ b for a, b in zip(first, second, strict=True))


@dataclass
class FakeMySQL:
    """Listens on 127.0.0.1:port for one connection, in a thread."""

    script: str
    password: str
    tls: ssl.SSLContext | None = None  # a server context: offer TLS
    cached: bool = False  # sha2_fast: the password's hash is "in the cache"
    received: list[bytes] = field(default_factory=list)  # packets from the client, in order
    secure_when_password_came: bool | None = None
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.script in SCRIPTS
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._listener.close()
        self._thread.join(timeout=10)

    # ------------------------------------------------------------------ wire helpers

    def _read(self, sock: socket.socket, expected_seq: int) -> bytes:
        header = self._exactly(sock, 4)
        size, seq = int.from_bytes(header[:3], "little"), header[3]
        if seq != expected_seq:
            raise AssertionError(f"client packet seq {seq}, expected {expected_seq}")
        payload = self._exactly(sock, size)
        self.received.append(payload)
        return payload

    @staticmethod
    def _exactly(sock: socket.socket, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = sock.recv(size - len(data))
            if not chunk:
                raise EOFError("client closed")
            data += chunk
        return data

    @staticmethod
    def _send(sock: socket.socket, seq: int, payload: bytes) -> None:
        sock.sendall(len(payload).to_bytes(3, "little") + bytes([seq]) + payload)

    def _greeting(self, nonce: bytes, plugin: bytes) -> bytes:
        caps = CAPABILITIES | (CLIENT_SSL if self.tls else 0)
        return (
            b"\x0a8.0.36-fake\x00"
            + struct.pack("<I", 7)
            + nonce[:8]
            + b"\x00"
            + struct.pack("<H", caps & 0xFFFF)
            + b"\x2d"
            + struct.pack("<H", 2)
            + struct.pack("<H", caps >> 16)
            + bytes([21])
            + b"\x00" * 10
            + nonce[8:]
            + b"\x00"
            + plugin
            + b"\x00"
        )

    # ------------------------------------------------------------------ the conversation

    def _serve(self) -> None:
        try:
            conn, _ = self._listener.accept()
        except OSError:
            return
        sock: socket.socket = conn
        try:
            sock = self._connection_phase(conn)
            self._commands(sock)
        except (EOFError, ConnectionError):
            pass
        except BaseException as exc:  # surfaced by the test
            self.errors.append(exc)
        finally:
            with contextlib.suppress(OSError):
                sock.close()
            self._listener.close()

    def _connection_phase(self, conn: socket.socket) -> socket.socket:
        nonce = os.urandom(20)
        first = (
            b"caching_sha2_password" if self.script.startswith("sha2") else b"mysql_native_password"
        )
        self._send(conn, 0, self._greeting(nonce, first))
        packet, seq, sock = self._read(conn, 1), 2, conn
        secure = False
        if len(packet) == 32:  # SSLRequest
            assert self.tls is not None, "SSLRequest to a server that offers no TLS"
            assert int.from_bytes(packet[:4], "little") & CLIENT_SSL
            sock = self.tls.wrap_socket(conn, server_side=True)
            secure = True
            packet, seq = self._read(sock, 2), 3
        caps = int.from_bytes(packet[:4], "little")
        assert caps & CLIENT_PROTOCOL_41
        assert bool(caps & CLIENT_SSL) == secure, "CLIENT_SSL must match the leg's TLS"
        if self.script == "deny":
            self._send(sock, seq, b"\xff\x15\x04#28000Access denied for user 'fake'")
            raise EOFError
        if self.script == "native":
            self._send(sock, seq, OK)
            return sock
        if self.script == "switch_ed25519":  # MariaDB's, which connectorx lacks
            self._send(sock, seq, b"\xfeclient_ed25519\x00" + os.urandom(32))
            self._read(sock, seq + 1)
            raise AssertionError("an answer to the switch to client_ed25519 came")
        if self.script == "switch_sha2_full":
            nonce = os.urandom(20)
            self._send(sock, seq, b"\xfecaching_sha2_password\x00" + nonce + b"\x00")
            token = self._read(sock, seq + 1)
            assert token == scramble_sha2(self.password.encode(), nonce), "bad scramble"
            seq += 2
        if self.script == "sha2_fast":
            self._send(sock, seq, b"\x01\x03")
            self._send(sock, seq + 1, OK)
            return sock
        # Full authentication: a MySQL 8 server on a TLS connection expects the password
        # in clear; on plaintext the client would have to ask for the RSA key (0x02).
        self._send(sock, seq, b"\x01\x04")
        answer = self._read(sock, seq + 1)
        self.secure_when_password_came = secure
        if answer != self.password.encode() + b"\x00":
            self._send(sock, seq + 2, b"\xff\x15\x04#28000Access denied (full auth)")
            raise EOFError
        self._send(sock, seq + 2, OK)
        return sock

    def _commands(self, sock: socket.socket) -> None:
        while True:
            command = self._read(sock, 0)
            if command[:1] == b"\x01":  # COM_QUIT
                return
            if command[:1] == b"\x03" and b"CUT" in command:
                self._result_then_cut(sock)
                return
            self._send(sock, 1, OK)

    def _result_then_cut(self, sock: socket.socket) -> None:
        """A one-column result set, cut cleanly (FIN) after whole packets: no final EOF."""

        def lenenc(text: bytes) -> bytes:
            return bytes([len(text)]) + text

        column = (
            lenenc(b"def")
            + lenenc(b"")
            + lenenc(b"")
            + lenenc(b"")
            + lenenc(b"v")
            + lenenc(b"v")
            + b"\x0c"
            + struct.pack("<HIBHB", 45, 64, 0xFD, 0, 0)
            + b"\x00\x00"
        )
        packets = [b"\x01", column, b"\xfe\x00\x00\x02\x00"]
        packets += [lenenc(f"row {i}".encode()) for i in range(ROWS_BEFORE_CUT)]
        for seq, payload in enumerate(packets, start=1):
            self._send(sock, seq, payload)
        with contextlib.suppress(OSError):
            if isinstance(sock, ssl.SSLSocket):
                sock = sock.unwrap()  # close_notify: a clean TLS end, at a packet boundary
            sock.shutdown(socket.SHUT_RDWR)
