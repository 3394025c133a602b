"""A one-connection MySQL TLS proxy, so that connectorx (which has no TLS) can read over TLS.

connectorx connects in plaintext to 127.0.0.1:<ephemeral port>; the proxy connects to the
real server and encrypts that leg. MySQL negotiates TLS inside its own protocol, so the
proxy takes part in the connection phase:

1. server -> proxy: Initial Handshake (v10). Without CLIENT_SSL the server offers no TLS:
   refused (ERR 2026 to the client) when the ssl_mode requires TLS, else relayed untouched
   and, once the client is admitted (3), the whole connection is a plain byte relay
   (`preferred`, as pymysql would do).
2. proxy -> client: the greeting, CLIENT_SSL cleared (seq 0).
3. client -> proxy: HandshakeResponse41 (seq 1). Admission: the proxy knows the user, the
   password and the server's nonce, so the client must name the configured user and send
   the scramble of the password (mysql_auth.py). Anything else is refused: an ERR 1045 to
   the client, and the server's leg is cut before anything of the client's reached it.
4. proxy -> server: SSLRequest (seq 1): the response's first 32 bytes (capabilities |
   CLIENT_SSL, max packet, charset, filler with MariaDB's extended capabilities); then the
   TLS handshake, with the context `client_context(ssl_mode)` (pymysql's, see tls.py) and
   server_hostname = the configured host, on memory BIOs over the raw socket (_TlsSocket:
   one recv per wake-up, not two per TLS record).
5. proxy -> server: the HandshakeResponse41 with CLIENT_SSL set (seq 2).
6. The authentication exchange (auth switch, caching_sha2 fast/full auth, OK/ERR) is
   relayed packet by packet. Each leg keeps its own sequence counter, so ids are
   rewritten (+1 towards the server, -1 towards the client) and a packet the proxy sends
   itself does not shift them. An AuthSwitchRequest brings a new nonce: the client's
   answer is checked as in 3 before it goes on, and a switch to a plugin the proxy cannot
   check is refused (ERR 2059). caching_sha2_password's "perform full authentication"
   (0x01 0x04) is answered by the proxy: the client, believing the line is plaintext,
   would ask for the server's RSA key (0x02), which a server on a TLS connection does not
   expect (it wants the password in clear). So the proxy sends the password in clear over
   the server's TLS leg, as pymysql and libmysqlclient do over TLS, and tells the client
   0x01 0x03 ("fast auth succeeded"), after which every client awaits the server's OK or
   ERR, which the proxy relays. The password goes only to a client that proved it in 3.
7. Once the server's OK (0x00) or ERR (0xFF) is relayed, a raw bidirectional byte relay.

Every local process can reach 127.0.0.1 (in a Kubernetes pod, every sidecar), so a
stranger may connect first: each client is admitted in its own thread (a silent one
holds up nobody), a refused one leaves the port open for the next, and the first client
admitted is the one relayed. The report then counts the refused ones; if no client was
admitted it says they were refused. On the plaintext path (1) the proxy adds nothing to
what the client proves, so past admission the server alone judges it.

The same helper, with `ssl_mode=disabled`, is a plaintext relay for a **gated** read
(`window_bytes` > 0): connectorx reads ahead into an unbounded queue whenever its consumer
is slower (it is, on rows of MiBs: the Parquet writer handles every byte again), so the relay
holds the server's bytes back instead. Its connection phase is the plaintext path of (1),
whatever the server offers (CLIENT_SSL cleared in the greeting): the client is admitted
as in (3), and past that the server alone judges it. Then, in the relay (7), it counts
the MySQL packets it forwards (a row is one packet, or several of 16 MiB - 1 and a shorter
one) and their bytes; the parent writes,
before and after each wait for a batch, how many rows it has taken and whether it is
waiting (8 bytes, little-endian, on a pipe: rows * 2 + waiting). The relay forwards while
the parent waits (so the two never wait for each other), and else only while the packets
not yet taken hold less than `window_bytes`. So the bytes read ahead while the consumer
works stay within the window, whatever the row width; the server waits on a full socket
meanwhile (net_write_timeout, reader.py).

A cut must never look like a normal end of data: when the server's leg ends or fails
while the client is still connected, the proxy drops the client with a TCP reset (never
a FIN at a packet boundary), and reports the failure to its parent.

Why a helper process, not a thread: connectorx holds the GIL while it connects (measured:
a proxy thread never ran and connectorx timed out after 30 s). The helper process is
`python -m extractor.source.tls_proxy`. It gets its settings (user and password included)
in a line on stdin, never in argv or the environment, the listening socket from its
parent (so the port is known before it starts), and writes one JSON line (`{}` or the
failure) to stdout. The end of stdin tells it that no client is to come any more (the
parent is done, or gone). Standard library only, to start fast (about 50 ms, overlapped
with connectorx's own start).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hmac
import json
import os
import select
import selectors
import signal
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, cast

from extractor.source import mysql_auth
from extractor.source.tls import client_context, tls_required

CLIENT_SSL = 0x0800
CHUNK = 512 * 1024  # bytes per relay read: a few dozen TLS records
TLS_READ = 256 * 1024  # ciphertext per recv from the server's TLS leg
# While the server streams, poll() wakes the relay only once this much has come (the kernel's
# SO_RCVLOWAT), not per TLS record: a few times fewer wake-ups. The end of a result set, short
# of it, waits at most _LOWAT_WAIT_MS, after which the mark is lifted until the next burst.
_LOWAT = 128 * 1024
_LOWAT_WAIT_MS = 5
_BURST = 16 * 1024  # a read at least this long: the server streams
_MAX_PACKET = 0xFFFFFF
_ACCEPT_TIMEOUT_S = 30  # connectorx connects as soon as the proxy is started
_ANSWER_TIMEOUT_S = 10  # for a client to answer the greeting (connectorx: milliseconds)
_AUTH_TIMEOUT_S = 30
_STOP_WAIT_S = 2.0
# Clients proving themselves at once; each holds a connection to the server meanwhile.
_MAX_ADMISSIONS = 8
# MySQL error numbers the proxy reports with (CR_* are the client's), so errors classify
# as usual.
ER_CON_COUNT_ERROR = 1040
ER_ACCESS_DENIED = 1045
CR_CONN_HOST_ERROR = 2003
CR_SERVER_LOST = 2013
CR_SSL_CONNECTION_ERROR = 2026
CR_MALFORMED_PACKET = 2027
CR_AUTH_PLUGIN_CANNOT_LOAD = 2059
_COM_QUIT = b"\x01\x00\x00\x00\x01"  # the client's last packet, after which the server closes


class ProxyError(Exception):
    """A failure of the proxy or of the server's leg, as (MySQL error number, message)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(code, message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return f"{self.code} {self.message}"


# ---------------------------------------------------------------------------- parent side


@dataclass(frozen=True)
class Upstream:
    """Where the proxy connects, and how."""

    host: str
    port: int
    ssl_mode: str
    ssl_ca: str | None
    user: str  # the only user admitted
    # The client must prove it; sent upstream only for caching_sha2's full authentication.
    password: str = field(repr=False)
    connect_timeout: float = 10.0


class TlsProxy:
    """The helper process and its listening port; a context manager.

    with TlsProxy(upstream) as proxy:
        read from 127.0.0.1:proxy.port ...   # on an error: proxy.failure()
    """

    def __init__(self, upstream: Upstream, *, window_bytes: int = 0) -> None:
        self.upstream = upstream
        self.window_bytes = window_bytes  # > 0: a gated read (module docstring)
        self.port = 0
        self._process: subprocess.Popen[bytes] | None = None
        self._report: dict[str, Any] | None = None
        self._gate: int | None = None  # the pipe's write end

    def __enter__(self) -> TlsProxy:
        listener = socket.create_server(("127.0.0.1", 0), backlog=_MAX_ADMISSIONS)
        gate_read: int | None = None
        try:
            self.port = int(listener.getsockname()[1])
            config = {"listen_fd": listener.fileno(), **dataclasses.asdict(self.upstream)}
            fds = [listener.fileno()]
            if self.window_bytes > 0:
                gate_read, self._gate = os.pipe()
                config.update(gate_fd=gate_read, window_bytes=self.window_bytes)
                fds.append(gate_read)
            self._process = subprocess.Popen(
                [sys.executable, "-m", "extractor.source.tls_proxy"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=fds,
                close_fds=True,
            )
            assert self._process.stdin is not None
            # Left open: its end tells the helper to stop waiting for a client.
            self._process.stdin.write(json.dumps(config).encode() + b"\n")
            self._process.stdin.flush()
        finally:
            listener.close()  # the helper holds its own copies
            if gate_read is not None:
                os.close(gate_read)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(wait=0.5)

    def taken(self, rows: int, *, waiting: bool) -> None:
        """A gated read: the consumer has taken `rows` rows in all, and waits for more or not."""
        if self._gate is not None:
            with contextlib.suppress(OSError):  # the helper is gone: its report tells why
                os.write(self._gate, (rows * 2 + waiting).to_bytes(8, "little"))

    def stop(self, wait: float = _STOP_WAIT_S) -> dict[str, Any]:
        """Tell the helper that no client is to come, let it finish for up to `wait`
        seconds, then kill it; its report."""
        if self._gate is not None:
            os.close(self._gate)
            self._gate = None
        if self._report is not None or self._process is None:
            return self._report or {}
        process = self._process
        assert process.stdin is not None
        with contextlib.suppress(OSError):
            process.stdin.close()
        try:
            process.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        assert process.stdout is not None and process.stderr is not None
        with process.stdout, process.stderr:  # a line, or a traceback: far below a pipe's size
            out, err = process.stdout.read(), process.stderr.read()
        try:
            report = json.loads(out.decode().strip().splitlines()[-1]) if out.strip() else {}
        except (ValueError, IndexError):
            report = {}
        if not report and process.returncode not in (0, -9):
            tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            report = {
                "code": CR_SERVER_LOST,
                "error": f"TLS proxy exited with {process.returncode}: {tail[0]}",
            }
        self._report = report
        return report

    def failure(self) -> ProxyError | None:
        """The proxy's own failure, if it had one (TLS refused, server cut, or only clients
        that did not prove the password came), else None."""
        report = self.stop()
        if "code" in report:
            return ProxyError(int(report["code"]), str(report["error"]))
        return None

    def refused(self) -> str | None:
        """An account of the clients refused for not proving the password, if there were."""
        account = self.stop().get("refused")
        return str(account) if account else None


# ----------------------------------------------------------------------------- helper side


class _Failure(Exception):
    """Ends the relay. `client_error`: the client awaits a packet and gets an ERR;
    `told`: it already got the server's ERR; neither: it gets a TCP reset. Code 0:
    nothing to report (the client itself went away)."""

    def __init__(
        self, code: int, message: str, *, client_error: bool = False, told: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_error = client_error
        self.told = told


class _Refused(_Failure):
    """A client that did not prove the password: it gets an ERR (`message`) if it is still
    there, the server's leg is cut before anything of the client's reached it, and the
    proxy waits for another client. `reason` is for the report."""

    def __init__(self, reason: str, code: int = ER_ACCESS_DENIED, message: str = "") -> None:
        super().__init__(code, message, client_error=bool(message))
        self.reason = reason


def _server_error(payload: bytes) -> _Failure:
    """The server's ERR packet (already relayed to the client), as the proxy's report."""
    code = int.from_bytes(payload[1:3], "little")
    text = payload[9:] if payload[3:4] == b"#" else payload[3:]
    return _Failure(code, text.decode("utf-8", "replace"), told=True)


def _packet(seq: int, payload: bytes) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq & 0xFF]) + payload


def _err_payload(code: int, message: str, *, protocol_41: bool) -> bytes:
    """An ERR packet; the SQL state only once the client has said it speaks protocol 4.1."""
    state = b"#HY000" if protocol_41 else b""
    return b"\xff" + struct.pack("<H", code) + state + message.encode()[:500]


def _wait(sock: socket.socket | _TlsSocket, events: int, deadline: float | None) -> None:
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    with selectors.DefaultSelector() as selector:
        selector.register(sock, events)
        if not selector.select(timeout):
            raise _Failure(
                CR_SERVER_LOST, "timed out during the connection phase", client_error=True
            )


class _TlsSocket:
    """TLS on a non-blocking socket through memory BIOs, in place of an SSLSocket (the calls
    the proxy makes of one). An SSLSocket has OpenSSL read each record from the kernel with
    two read()s, its 5-byte header then its body (Python sets no read-ahead); here one
    recv_into takes all the kernel holds (a dozen records, often) and OpenSSL decrypts them
    from memory: measured, a third of the proxy's syscalls and CPU on a long read."""

    def __init__(self, sock: socket.socket, context: ssl.SSLContext, hostname: str) -> None:
        self.raw = sock
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self.tls = context.wrap_bio(self._incoming, self._outgoing, server_hostname=hostname)
        self._buffer = memoryview(bytearray(TLS_READ))
        self._unsent = memoryview(b"")  # ciphertext the socket has not taken yet
        # The BIO holds no whole record: only the socket can bring one (no busy loop).
        self._dry = True
        self._short = False  # the last raw read did not fill the buffer: the kernel is empty
        self._eof = False

    def fileno(self) -> int:
        return self.raw.fileno()

    def setsockopt(self, level: int, option: int, value: int | bytes) -> None:
        self.raw.setsockopt(level, option, value)

    def close(self) -> None:
        self.raw.close()

    def pending(self) -> int:
        """Whether a read can make progress without the socket (no poll() would say)."""
        return self.tls.pending() or (0 if self._dry else self._incoming.pending)

    def backlog(self) -> bool:
        return bool(self._unsent) or self._outgoing.pending > 0

    def flush(self) -> bool:
        """Send the ciphertext waiting; False if the socket took only part of it."""
        while True:
            if not self._unsent:
                if not self._outgoing.pending:
                    return True
                self._unsent = memoryview(self._outgoing.read())
            try:
                sent = self.raw.send(self._unsent)
            except BlockingIOError:
                return False
            self._unsent = self._unsent[sent:]

    def _feed(self) -> bool:
        """Move what the kernel holds into the BIO; False if it held nothing."""
        if self._eof:
            return False
        try:
            got = self.raw.recv_into(self._buffer)
        except BlockingIOError:
            return False
        if not got:
            self._eof = True
            self._incoming.write_eof()
        else:
            self._incoming.write(self._buffer[:got])
        self._short = 0 < got < len(self._buffer)
        self._dry = False
        return True

    def do_handshake(self) -> None:
        """The handshake, as far as the socket allows: SSLWantReadError or SSLWantWriteError
        when it has to wait, as an SSLSocket's."""
        while True:
            if not self.flush():
                raise ssl.SSLWantWriteError("the handshake waits to send")
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                if not self.flush():
                    raise ssl.SSLWantWriteError("the handshake waits to send") from None
                if not self._feed():
                    if self._eof:  # no more will come: never a wait on a closed socket
                        raise ssl.SSLEOFError("EOF during the TLS handshake") from None
                    raise
        if not self.flush():
            raise ssl.SSLWantWriteError("the handshake waits to send")
        self._dry = False  # the server's first packet may have come with its last flight

    def recv_into(self, buffer: memoryview | bytearray) -> int:
        """Decrypted bytes into `buffer`; 0 at the end of the stream; SSLWantReadError when
        the kernel has nothing more for now."""
        try:
            while True:
                try:
                    return cast(int, self.tls.read(len(buffer), buffer))  # with a buffer: a count
                except ssl.SSLWantReadError:
                    # After a short read the kernel was empty: poll() rather than a
                    # recv() bound to fail.
                    if self._short or not self._feed():
                        if self._eof:
                            return 0
                        self._short, self._dry = False, True
                        raise
        except ssl.SSLEOFError:  # a TCP end without close_notify: an SSLSocket's 0 too
            return 0
        finally:
            if self._outgoing.pending:  # reading may answer (a key update)
                self.flush()

    def recv(self, size: int) -> bytes:
        buffer = bytearray(min(size, 64 * 1024))
        return bytes(buffer[: self.recv_into(buffer)])

    def send(self, data: bytes | memoryview) -> int:
        """Encrypt all of `data` (the BIO never refuses) once earlier ciphertext is out; the
        socket takes what it can, the rest waits in the backlog."""
        if not self.flush():
            raise ssl.SSLWantWriteError("earlier ciphertext waits to be sent")
        sent = self.tls.write(data)
        self.flush()
        return sent


_Socket = socket.socket | _TlsSocket


class _Leg:
    """One side: a non-blocking socket, bytes read but not yet used, the next sequence id."""

    def __init__(self, sock: _Socket, name: str) -> None:
        self.sock = sock
        self.name = name
        self.inbox = bytearray()
        self.seq = 0
        self.eof = False
        self.protocol_41 = False  # the client's HandshakeResponse41 was seen

    def fileno(self) -> int:
        return self.sock.fileno()

    def pending(self) -> int:
        """Decrypted bytes (or whole records) the proxy holds that no poll() will announce."""
        return self.sock.pending() if isinstance(self.sock, _TlsSocket) else 0

    def backlog(self) -> bool:
        """Ciphertext waiting for the socket (the server's TLS leg only)."""
        return isinstance(self.sock, _TlsSocket) and self.sock.backlog()

    def flush_backlog(self) -> None:
        if isinstance(self.sock, _TlsSocket) and self.sock.backlog():
            try:
                self.sock.flush()
            except OSError as exc:
                _broken(self, exc)

    def read_into_inbox(self) -> None:
        """Read what is available now (never blocks)."""
        while True:
            try:
                data = self.sock.recv(CHUNK)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            if not data:
                self.eof = True
                return
            self.inbox += data
            if not self.pending():
                return

    def packet(self) -> bytes | None:
        """The next whole packet in the inbox (its sequence id adopted), or None."""
        if len(self.inbox) < 4:
            return None
        size = int.from_bytes(self.inbox[:3], "little")
        if size >= _MAX_PACKET:  # connection-phase packets are small
            raise _Failure(
                CR_MALFORMED_PACKET, f"oversized packet from the {self.name}", client_error=True
            )
        if len(self.inbox) < 4 + size:
            return None
        self.seq = (self.inbox[3] + 1) & 0xFF
        payload = bytes(self.inbox[4 : 4 + size])
        del self.inbox[: 4 + size]
        return payload

    def send_packet(self, payload: bytes, deadline: float | None) -> None:
        data = _packet(self.seq, payload)
        self.seq = (self.seq + 1) & 0xFF
        self.send_all(data, deadline)

    def send_all(self, data: bytes | memoryview, deadline: float | None) -> None:
        view = memoryview(data)
        while view:
            try:
                sent = self.sock.send(view)
                view = view[sent:]
            except (ssl.SSLWantWriteError, BlockingIOError):
                _wait(self.sock, selectors.EVENT_WRITE, deadline)
            except ssl.SSLWantReadError:
                _wait(self.sock, selectors.EVENT_READ, deadline)
        if isinstance(self.sock, _TlsSocket):
            while not self.sock.flush():
                _wait(self.sock, selectors.EVENT_WRITE, deadline)


def _next_packet(legs: list[_Leg], deadline: float) -> tuple[_Leg, bytes]:
    """The next whole packet from either leg (in the connection phase, either may speak)."""
    with selectors.DefaultSelector() as selector:
        for leg in legs:
            selector.register(leg.sock, selectors.EVENT_READ, leg)
        while True:
            for leg in legs:
                payload = leg.packet()
                if payload is not None:
                    return leg, payload
                if leg.eof and leg.name == "server":
                    raise _Failure(
                        CR_SERVER_LOST,
                        "the server closed the connection during authentication",
                        client_error=True,
                    )
                if leg.eof:  # the client left: its own error says why, the proxy has none
                    raise _Failure(0, "the client left during authentication")
            ready = [leg for leg in legs if leg.pending()]
            if not ready:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise _Failure(
                        CR_SERVER_LOST, "timed out during authentication", client_error=True
                    )
                ready = [key.data for key, _ in selector.select(timeout)]
            for leg in ready:
                leg.read_into_inbox()


@dataclass
class _Greeting:
    payload: bytes
    caps_offset: int
    capabilities: int
    nonce: bytes  # the scramble's two parts, which the client's answer is computed from


def _parse_greeting(payload: bytes) -> _Greeting:
    """The fields of an Initial Handshake v10 that the proxy needs."""
    try:
        if payload[0] != 10:
            raise ValueError(f"protocol version {payload[0]}")
        at = payload.index(b"\x00", 1) + 1 + 4 + 8 + 1  # version, thread id, scramble, filler
        caps = int.from_bytes(payload[at : at + 2], "little")
        nonce = payload[at - 9 : at - 1]
        if len(payload) >= at + 2 + 1 + 2 + 2 + 1 + 10:
            caps |= int.from_bytes(payload[at + 5 : at + 7], "little") << 16
            rest = at + 8 + 10
            nonce += payload[rest : rest + max(12, payload[at + 7] - 9)]  # without its NUL
        if len(nonce) != mysql_auth.NONCE_LENGTH:
            raise ValueError(f"a nonce of {len(nonce)} bytes")
    except (IndexError, ValueError) as exc:
        raise _Failure(
            CR_MALFORMED_PACKET, f"unexpected server greeting ({exc})", client_error=True
        ) from exc
    return _Greeting(payload, at, caps, nonce)


def _with_ssl_flag(payload: bytes, at: int, on: bool) -> bytes:
    flags = int.from_bytes(payload[at : at + 2], "little")
    flags = flags | CLIENT_SSL if on else flags & ~CLIENT_SSL
    return payload[:at] + flags.to_bytes(2, "little") + payload[at + 2 :]


@dataclass
class _Admission:
    """One client's connection phase up to its proof (steps 1-3): admitted, or why not."""

    client: _Leg
    server: _Leg | None = None
    greeting: _Greeting | None = None
    response: bytes = b""  # the client's HandshakeResponse41, as it came
    plugin: str = ""  # the plugin it answered with, which the server goes on with
    failure: _Failure | None = None


def _admit(client_sock: socket.socket, config: dict[str, Any]) -> _Admission:
    """Steps 1-3 for one client; never raises. A failure on the server's side (unreachable,
    no TLS, an ERR for a greeting) is the proxy's own; one on the client's is a _Refused."""
    admission = _Admission(_Leg(client_sock, "client"))
    try:
        client_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        client_sock.setblocking(False)
        shown = _greet(admission, config)
        _check(admission, shown, config)
    except _Failure as failure:
        admission.failure = failure
    except Exception as exc:  # a stranger's bytes must not end the gate, nor flood stderr
        admission.failure = _Refused(
            f"the proxy could not handle its connection ({type(exc).__name__}: {exc})"
        )
    return admission


def _greet(admission: _Admission, config: dict[str, Any]) -> bytes:
    """Step 1: connect to the server and read its greeting; what the client is shown."""
    try:
        server_sock = socket.create_connection(
            (config["host"], config["port"]), timeout=config["connect_timeout"]
        )
    except OSError as exc:
        raise _Failure(
            CR_CONN_HOST_ERROR,
            f"Can't connect to MySQL server on {config['host']!r} ({exc})",
            client_error=True,
        ) from exc
    server_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _keepalive(server_sock)
    server_sock.setblocking(False)
    admission.server = server = _Leg(server_sock, "server")
    deadline = time.monotonic() + _AUTH_TIMEOUT_S
    try:
        _, payload = _next_packet([server], deadline)
    except OSError as exc:
        raise _Failure(
            CR_SERVER_LOST,
            f"Lost connection to MySQL server during the "
            f"connection phase ({type(exc).__name__}: {exc})",
            client_error=True,
        ) from exc
    if payload[:1] == b"\xff":  # e.g. too many connections: the client shall see it
        with contextlib.suppress(OSError, _Failure):
            admission.client.send_packet(payload, deadline)
        raise _server_error(payload)
    admission.greeting = greeting = _parse_greeting(payload)
    if config["ssl_mode"] == "disabled":  # a plaintext relay (a gated read): the path of
        greeting.capabilities &= ~CLIENT_SSL  # a server without TLS, whatever it offers
        return _with_ssl_flag(payload, greeting.caps_offset, on=False)
    if greeting.capabilities & CLIENT_SSL:
        return _with_ssl_flag(payload, greeting.caps_offset, on=False)
    if tls_required(config["ssl_mode"]):
        raise _Failure(
            CR_SSL_CONNECTION_ERROR,
            f"SSL connection error: the server offers no TLS and "
            f"ssl_mode={config['ssl_mode']} requires it",
            client_error=True,
        )
    return payload  # preferred: plaintext, as pymysql would


def _check(admission: _Admission, shown: bytes, config: dict[str, Any]) -> None:
    """Steps 2-3: greet the client; its answer must name the configured user and prove the
    password, else _Refused."""
    client, greeting = admission.client, admission.greeting
    assert greeting is not None
    deadline = time.monotonic() + _ANSWER_TIMEOUT_S
    try:
        client.send_packet(shown, deadline)
        _, payload = _next_packet([client], deadline)
    except _Failure as failure:
        if not failure.code:
            raise _Refused("it left before answering the greeting") from failure
        raise _Refused(
            f"it did not answer the greeting ({failure.message})", failure.code, failure.message
        ) from failure
    except OSError as exc:
        raise _Refused(f"its connection failed ({type(exc).__name__})") from exc
    try:
        response = mysql_auth.parse_response(payload)
    except ValueError as exc:
        raise _Refused(
            f"a malformed handshake response ({exc})",
            CR_MALFORMED_PACKET,
            "Malformed handshake response: refused by the TLS proxy",
        ) from exc
    client.protocol_41 = True
    user = _shown(response.user)
    denied = (
        f"Access denied for user {user} (using password: "
        f"{'YES' if response.auth else 'NO'}): refused by the TLS proxy"
    )
    if response.plugin not in mysql_auth.PLUGINS:
        raise _Refused(
            f"user {user}: authentication plugin {response.plugin!r}, which the "
            f"proxy cannot verify",
            message=f"{denied}: authentication plugin "
            f"{response.plugin!r} cannot be verified, only "
            f"{' and '.join(mysql_auth.PLUGINS)}",
        )
    right_user = hmac.compare_digest(response.user, config["user"].encode())
    proved = mysql_auth.proves_password(
        response.plugin, config["password"].encode(), greeting.nonce, response.auth
    )
    if not right_user:
        raise _Refused(f"user {user} is not the configured user", message=denied)
    if not proved:
        raise _Refused(
            f"user {user}: {'a wrong' if response.auth else 'no'} password", message=denied
        )
    admission.response, admission.plugin = payload, response.plugin


def _shown(name: bytes) -> str:
    """A user name a stranger chose, quoted and cut short, fit for a log line."""
    return repr(name.decode("utf-8", "replace")[:64])


def _authenticate(admission: _Admission, config: dict[str, Any]) -> _Leg:
    """Steps 4-6 for the admitted client; returns the server leg (TLS-wrapped or not)."""
    client, server, greeting = admission.client, admission.server, admission.greeting
    assert server is not None and greeting is not None
    deadline = time.monotonic() + _AUTH_TIMEOUT_S
    if not greeting.capabilities & CLIENT_SSL:  # plaintext: the server judges
        server.send_packet(admission.response, deadline)
        return server
    response = _with_ssl_flag(admission.response, 0, on=True)
    server.send_packet(response[:32], deadline)  # SSLRequest
    admission.server = server = _start_tls(server, config, deadline)
    server.send_packet(response, deadline)
    password = config["password"].encode()
    plugin, nonce = admission.plugin, b""
    answer_due = False  # after an auth switch: the client's answer, to be checked
    while True:
        leg, payload = _next_packet([client, server], deadline)
        if leg is client:
            if not answer_due:
                raise _Failure(
                    CR_MALFORMED_PACKET,
                    "TLS proxy: unexpected packet from the client during authentication",
                    client_error=True,
                )
            if not mysql_auth.proves_password(plugin, password, nonce, payload):
                raise _Failure(
                    ER_ACCESS_DENIED,
                    f"TLS proxy: refused the client's answer "
                    f"to the server's switch to {plugin} (it did not prove the "
                    f"password)",
                    client_error=True,
                )
            answer_due = False
            server.send_packet(payload, deadline)
            continue
        kind = payload[:1]
        if kind == b"\xfe":  # auth switch: another plugin, or a new nonce
            plugin, nonce = mysql_auth.parse_switch(payload)
            if plugin not in mysql_auth.PLUGINS:
                raise _Failure(
                    CR_AUTH_PLUGIN_CANNOT_LOAD,
                    f"the server asked for "
                    f"authentication plugin {plugin!r}, which the TLS proxy "
                    f"cannot verify (only {' and '.join(mysql_auth.PLUGINS)})",
                    client_error=True,
                )
            answer_due = True
        elif payload == b"\x01\x04" and plugin == mysql_auth.CACHING_SHA2:
            # Full authentication over TLS: the password in clear (see module docstring);
            # the client hears "fast auth succeeded" and awaits the server's OK or ERR.
            server.send_packet(password + b"\x00", deadline)
            payload = b"\x01\x03"
        client.send_packet(payload, deadline)
        if kind == b"\xff":  # access denied, unknown database...
            raise _server_error(payload)
        if kind == b"\x00":
            return server


def _start_tls(server: _Leg, config: dict[str, Any], deadline: float) -> _Leg:
    context = client_context(config["ssl_mode"], config["ssl_ca"])
    assert context is not None
    assert isinstance(server.sock, socket.socket)
    tls = _TlsSocket(server.sock, context, config["host"])
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            _wait(tls, selectors.EVENT_READ, deadline)
        except ssl.SSLWantWriteError:
            _wait(tls, selectors.EVENT_WRITE, deadline)
        except (ssl.SSLError, OSError) as exc:
            raise _Failure(
                CR_SSL_CONNECTION_ERROR, f"SSL connection error: {exc}", client_error=True
            ) from exc
    leg = _Leg(tls, "server")
    leg.seq = server.seq
    return leg


class _Direction:
    """Bytes from one leg waiting to be written to the other (at most CHUNK: backpressure)."""

    def __init__(self, source: _Leg, target: _Leg) -> None:
        self.source = source
        self.target = target
        self.buffer = bytearray(max(CHUNK, len(source.inbox)))
        self.view = memoryview(self.buffer)
        self.start = 0
        self.end = len(source.inbox)  # bytes read past the connection phase
        self.buffer[: self.end] = source.inbox

    @property
    def idle(self) -> bool:
        return self.start == self.end

    def fill(self) -> None:
        """Read what is available (never blocks); marks the source's end of stream."""
        self.start = self.end = 0
        while self.end < CHUNK:
            try:
                got = self.source.sock.recv_into(self.view[self.end : CHUNK])
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                return
            except OSError as exc:
                _broken(self.source, exc)
                return
            if not got:
                self.source.eof = True
                return
            self.end += got

    def flush(self) -> None:
        """Write what the target takes now (never blocks)."""
        while self.start < self.end:
            try:
                self.start += self.target.sock.send(self.view[self.start : self.end])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return
            except OSError as exc:
                _broken(self.target, exc)
                self.start = self.end  # nobody left to take them
                return


class _Window:
    """The read-ahead window of a gated read: packets forwarded, rows taken (module docstring)."""

    def __init__(self, fd: int, window_bytes: int) -> None:
        self.fd = fd
        os.set_blocking(fd, False)
        self.window_bytes = window_bytes
        self.forwarded = 0  # bytes towards the client
        self.packets = 0  # logical packets begun (rows, and the few before the first row)
        self.taken = 0  # rows the parent has taken
        self.waiting = False  # the parent waits for a batch
        self.starts: deque[int] = deque()  # where each packet not yet taken began, in bytes
        self.first = 0  # the number of the packet at starts[0]
        self.wide_open = False  # the parent is done
        self._message = bytearray()
        self._header = bytearray()
        self._header_at = 0
        self._skip = 0
        self._continued = False  # the last packet was 16 MiB - 1: the next one continues it

    def count(self, data: memoryview) -> None:
        """Find the packet headers in bytes forwarded to the client (few, for wide rows)."""
        i, n = 0, len(data)
        while i < n:
            if self._skip:
                step = min(self._skip, n - i)
                self._skip -= step
                i += step
                continue
            if not self._header:
                self._header_at = self.forwarded + i
            take = min(4 - len(self._header), n - i)
            self._header += data[i : i + take]
            i += take
            if len(self._header) == 4:
                self._skip = int.from_bytes(self._header[:3], "little")
                self._header.clear()
                if not self._continued:
                    self.packets += 1
                    self.starts.append(self._header_at)
                self._continued = self._skip == _MAX_PACKET
        self.forwarded += n

    def read(self) -> None:
        """Take the parent's latest count of rows taken (the pipe never blocks it)."""
        while not self.wide_open:
            try:
                got = os.read(self.fd, 4096)
            except BlockingIOError:
                break
            if not got:  # the parent closed its end: nothing left to hold back
                self.wide_open = True
                break
            self._message += got
            whole = len(self._message) // 8 * 8
            if whole:
                word = int.from_bytes(self._message[whole - 8 : whole], "little")
                self.taken, self.waiting = word >> 1, bool(word & 1)
                del self._message[:whole]
        while self.starts and self.first < self.taken:
            self.starts.popleft()
            self.first += 1

    def open(self) -> bool:
        if self.wide_open or self.waiting:
            return True
        # Packets before the first row count as rows: on the safe side, by a few.
        ahead_bytes = self.forwarded - self.starts[0] if self.starts else 0
        return ahead_bytes < self.window_bytes


def _broken(leg: _Leg, exc: OSError) -> None:
    """A leg failed: the server's is the proxy's failure; the client's just ends the relay."""
    if leg.name == "server":
        raise _Failure(
            CR_SERVER_LOST,
            f"Lost connection to MySQL server during query ({type(exc).__name__}: {exc})",
        ) from exc
    leg.eof = True


def _relay(client: _Leg, server: _Leg, window: _Window | None = None) -> None:
    """Step 7: bytes both ways until one side ends. Returns when the client ends; raises
    _Failure when the server's leg ends or fails first. A `window` holds the server's bytes
    back while the consumer is behind."""
    up = _Direction(client, server)
    down = _Direction(server, client)
    quit_sent = False
    # A wake-up per few dozen KB on a fast read (about 10k per 3M rows): the loop does as
    # little as it can per turn, and poll() registers only what changed.
    poller = select.poll()
    client_fd, server_fd = client.fileno(), server.fileno()
    client_mask = server_mask = 0
    ready: dict[int, int] = {}
    lowat = False
    if window is not None:
        window.count(down.view[: down.end])
        poller.register(window.fd, select.POLLIN)
    while True:
        downstream = True
        if window is not None:
            window.read()
            if window.wide_open:
                poller.unregister(window.fd)
                window = None
            else:
                downstream = window.open()
        # A source polled for input and not reported has none: no recv() bound to fail.
        if (
            up.start == up.end
            and not client.eof
            and (client_fd in ready or not client_mask & select.POLLIN)
        ):
            up.fill()
            if up.end:
                quit_sent = up.view[: up.end] == _COM_QUIT
        up.flush()
        server.flush_backlog()
        if (
            downstream
            and down.start == down.end
            and not server.eof
            and (server_fd in ready or not server_mask & select.POLLIN or server.pending())
        ):
            down.fill()
            if window is not None:
                window.count(down.view[: down.end])
            if not lowat and down.end >= _BURST:
                lowat = _low_water(server, _LOWAT)
        down.flush()
        up_idle, down_idle = up.start == up.end, down.start == down.end
        if client.eof and up_idle and not server.backlog():
            return  # the client quit or went away: done
        if server.eof and down_idle:
            if quit_sent:  # the server closes as told: the client will be gone too
                raise _Failure(0, "closed after COM_QUIT")
            raise _Failure(
                CR_SERVER_LOST,
                "Lost connection to MySQL server during query (the server closed the connection)",
            )
        if down_idle and downstream and server.pending():
            continue  # decrypted bytes already waiting: no poll() would see them
        mask = (0 if down_idle else select.POLLOUT) | (
            select.POLLIN if up_idle and not client.eof else 0
        )
        if mask != client_mask:
            client_mask = _poll_for(poller, client_fd, client_mask, mask)
        mask = (select.POLLOUT if not up_idle or server.backlog() else 0) | (
            select.POLLIN if down_idle and downstream and not server.eof else 0
        )
        if mask != server_mask:
            server_mask = _poll_for(poller, server_fd, server_mask, mask)
        # A shut window wakes for the parent's word; a low-water mark, by the time out too.
        waiting_for_server = lowat and server_mask & select.POLLIN
        ready = dict(poller.poll(_LOWAT_WAIT_MS if waiting_for_server else None))
        if waiting_for_server and not ready:  # the burst ended short of the mark
            lowat = not _low_water(server, 1)
            ready[server_fd] = select.POLLIN


def _low_water(leg: _Leg, size: int) -> bool:
    """Set the server socket's SO_RCVLOWAT; False where the system does not have it."""
    try:
        leg.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVLOWAT, size)
    except (OSError, AttributeError):
        return False
    return True


def _poll_for(poller: select.poll, fd: int, old: int, new: int) -> int:
    if not new:
        poller.unregister(fd)
    elif old:
        poller.modify(fd, new)
    else:
        poller.register(fd, new)
    return new


def _abort(sock: _Socket) -> None:
    """Close with a TCP reset: the peer sees an error, never a clean end of stream."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def _keepalive(sock: socket.socket) -> None:
    """Notice a server that vanished without a reset (the data phase has no timeout)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for option, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6)):
        if hasattr(socket, option):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, option), value)


def _end(client: _Leg, server: _Leg | None, failure: _Failure) -> None:
    """Close both legs after a failure, the client's the way `failure` says it must learn."""
    if failure.client_error:  # the client awaits a packet: an ERR ends it properly
        with contextlib.suppress(OSError, _Failure):
            client.send_packet(
                _err_payload(failure.code, failure.message, protocol_41=client.protocol_41),
                time.monotonic() + 1,
            )
        client.sock.close()
    elif failure.told:
        client.sock.close()
    else:
        _abort(client.sock)
    if server is not None:
        _abort(server.sock)


_TOO_MANY = "Too many connections: the TLS proxy serves one client"


class _Gate:
    """Admissions, each in a thread of its own so that a client that stays silent holds up
    nobody, at most _MAX_ADMISSIONS at once. Their outcomes wait for the main thread, which
    a byte on `wake` calls."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.wake, self._waker = socket.socketpair()
        self.wake.setblocking(False)
        self._waker.setblocking(False)
        self._lock = threading.Lock()
        self._outcomes: list[_Admission] = []
        self._running = 0
        self._open = True

    def admit(self, sock: socket.socket) -> bool:
        """Start a client's admission; False when too many are under way."""
        with self._lock:
            if self._running >= _MAX_ADMISSIONS:
                return False
            self._running += 1
        threading.Thread(target=self._run, args=(sock,), daemon=True).start()
        return True

    def _run(self, sock: socket.socket) -> None:
        admission = _admit(sock, self.config)
        with self._lock:
            self._running -= 1
            if self._open:
                self._outcomes.append(admission)
                with contextlib.suppress(OSError):
                    self._waker.send(b"\x00")
                return
        # Closed meanwhile: another client was admitted, or the proxy ends.
        failure = admission.failure or _Failure(ER_CON_COUNT_ERROR, _TOO_MANY, client_error=True)
        _end(admission.client, admission.server, failure)

    def outcomes(self) -> list[_Admission]:
        with contextlib.suppress(OSError):
            while self.wake.recv(4096):
                pass
        with self._lock:
            done, self._outcomes = self._outcomes, []
        return done

    def close(self) -> list[_Admission]:
        """Outcomes no longer wanted: those still to come end themselves; the ones here."""
        with self._lock:
            self._open = False
            done, self._outcomes = self._outcomes, []
        self.wake.close()
        self._waker.close()
        return done


def _refusal_account(refusals: list[str]) -> str:
    if len(refusals) == 1:
        return f"TLS proxy: refused a local client that did not prove the password ({refusals[0]})"
    return (
        f"TLS proxy: refused {len(refusals)} local clients that did not prove the "
        f"password (the last: {refusals[-1]})"
    )


def _report(refusals: list[str], code: int = 0, error: str = "") -> dict[str, Any]:
    report: dict[str, Any] = {"code": code, "error": error} if code else {}
    if refusals:
        report["refused"] = _refusal_account(refusals)
    return report


def serve(
    listener: socket.socket, config: dict[str, Any], parent: int | None = None
) -> dict[str, Any]:
    """Admit clients until one proves the password (or the `parent` pipe ends), relay that
    one to the server; the report (`{}` when all went well)."""
    deadline = time.monotonic() + _ACCEPT_TIMEOUT_S
    gate = _Gate(config)
    refusals: list[str] = []
    admitted: _Admission | None = None
    listener.setblocking(False)
    try:
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(gate.wake, selectors.EVENT_READ)
            if parent is not None:
                selector.register(parent, selectors.EVENT_READ)
            while admitted is None:
                for admission in gate.outcomes():
                    failure = admission.failure
                    if admitted is not None:  # a second client that proved it: unlikely
                        _end(
                            admission.client,
                            admission.server,
                            failure or _Failure(ER_CON_COUNT_ERROR, _TOO_MANY, client_error=True),
                        )
                    elif isinstance(failure, _Refused):
                        refusals.append(failure.reason)
                        _end(admission.client, admission.server, failure)
                    elif failure is not None:  # the server's side: no client will fare better
                        report = _report(refusals, failure.code, failure.message)
                        _emit(report)  # before the client sees the cut, so the parent finds it
                        _end(admission.client, admission.server, failure)
                        return report
                    else:
                        admitted = admission
                if admitted is not None:
                    break
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    return _unadmitted(refusals, timed_out=True)
                for key, _ in selector.select(timeout):
                    if key.fileobj is listener:
                        _accept(listener, gate, refusals)
                    elif key.fileobj == parent and not os.read(parent, 4096):
                        return _unadmitted(refusals, timed_out=False)
    finally:
        listener.close()
        for admission in gate.close():
            _end(
                admission.client,
                admission.server,
                admission.failure or _Failure(ER_CON_COUNT_ERROR, _TOO_MANY, client_error=True),
            )
    return _session(admitted, config, refusals)


def _accept(listener: socket.socket, gate: _Gate, refusals: list[str]) -> None:
    """Every client waiting in the listener's queue, each to its admission."""
    while True:
        try:
            sock, _ = listener.accept()
        except OSError:  # none left (or out of descriptors: the next select() retries)
            return
        if gate.admit(sock):
            continue
        refusals.append("too many clients at once")
        with contextlib.suppress(OSError):  # as a server at its max_connections does
            sock.settimeout(1)
            sock.sendall(_packet(0, _err_payload(ER_CON_COUNT_ERROR, _TOO_MANY, protocol_41=False)))
        sock.close()


def _unadmitted(refusals: list[str], *, timed_out: bool) -> dict[str, Any]:
    """The report when no client proved the password: the refused ones, if any came. None
    came, and the parent stopped waiting: nothing to say, the reader's own error tells."""
    if refusals:
        return _report(
            refusals, ER_ACCESS_DENIED, f"{_refusal_account(refusals)}, and none that did came"
        )
    if timed_out:
        return _report(refusals, CR_CONN_HOST_ERROR, "TLS proxy: no client came (timed out)")
    return {}


def _session(admission: _Admission, config: dict[str, Any], refusals: list[str]) -> dict[str, Any]:
    """Steps 4-7 for the admitted client; the report."""
    client = admission.client
    try:
        try:
            server = _authenticate(admission, config)
        except OSError as exc:  # ssl.SSLError included; a _Failure passes through
            raise _Failure(
                CR_SERVER_LOST,
                f"Lost connection to MySQL server during the "
                f"connection phase ({type(exc).__name__}: {exc})",
                client_error=True,
            ) from exc
        window = None
        if config.get("gate_fd") is not None:  # a gated read: bounded past admission
            window = _Window(int(config["gate_fd"]), int(config["window_bytes"]))
        _relay(client, server, window)
        # The client quit (COM_QUIT relayed) or went away: a plain close. Were the server
        # still sending, its next write meets a reset and it abandons the query.
        server.sock.close()
        client.sock.close()
        return _report(refusals)
    except _Failure as failure:
        report = _report(refusals, failure.code, failure.message)
        _emit(report)  # before the client sees the cut, so that the parent finds it
        _end(client, admission.server, failure)
        return report


_emitted: list[bool] = []


def _emit(report: dict[str, Any]) -> None:
    if not _emitted:
        _emitted.append(True)
        sys.stdout.write(json.dumps(report) + "\n")
        sys.stdout.flush()


def main() -> int:
    # Ctrl-C reaches the whole process group: the parent decides, and when it goes, its
    # connection closes and this relay ends with it.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin = sys.stdin.fileno()
    line = b""
    while not line.endswith(b"\n"):  # unbuffered: what follows the line is watched by serve()
        chunk = os.read(stdin, 65536)
        if not chunk:
            break
        line += chunk
    config = json.loads(line)
    listener = socket.socket(fileno=int(config.pop("listen_fd")))
    _emit(serve(listener, config, parent=stdin))
    return 0


if __name__ == "__main__":
    sys.exit(main())
