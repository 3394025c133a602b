"""A one-connection MySQL TLS proxy, so that connectorx (which has no TLS) can read over TLS.

connectorx connects in plaintext to 127.0.0.1:<ephemeral port>; the proxy connects to the
real server and encrypts that leg. MySQL negotiates TLS inside its own protocol, so the
proxy takes part in the connection phase:

1. server -> proxy: Initial Handshake (v10). Without CLIENT_SSL the server offers no TLS:
   refused (ERR 2026 to the client) when the ssl_mode requires TLS, else relayed untouched
   and the whole connection is a plain byte relay (`preferred`, as pymysql would do).
2. proxy -> client: the greeting, CLIENT_SSL cleared (seq 0).
3. client -> proxy: HandshakeResponse41 (seq 1).
4. proxy -> server: SSLRequest (seq 1): the response's first 32 bytes (capabilities |
   CLIENT_SSL, max packet, charset, filler with MariaDB's extended capabilities); then the
   TLS handshake, with the context `client_context(ssl_mode)` (pymysql's, see tls.py) and
   server_hostname = the configured host.
5. proxy -> server: the HandshakeResponse41 with CLIENT_SSL set (seq 2).
6. The authentication exchange (auth switch, caching_sha2 fast/full auth, RSA key,
   OK/ERR) is relayed packet by packet. Each leg keeps its own sequence counter, so ids
   are rewritten (+1 towards the server, -1 towards the client) and a packet the proxy
   sends itself does not shift them. caching_sha2_password's "perform full
   authentication" (0x01 0x04) is answered by the proxy: the client, believing the line
   is plaintext, would ask for the server's RSA key (0x02), which a server on a TLS
   connection does not expect (it wants the password in clear). So the proxy sends the
   password in clear over the server's TLS leg, as pymysql and libmysqlclient do over
   TLS, and tells the client 0x01 0x03 ("fast auth succeeded"), after which every client
   awaits the server's OK or ERR, which the proxy relays.
7. Once the server's OK (0x00) or ERR (0xFF) is relayed, a raw bidirectional byte relay.

The same helper, with `ssl_mode=disabled`, is a plaintext relay for a **gated** read
(`window_bytes` > 0): connectorx reads ahead into an unbounded queue whenever its consumer
is slower (it is, on rows of MiBs: the Parquet writer handles every byte again), so the relay
holds the server's bytes back instead. It counts the MySQL packets it forwards (a row is
one packet, or several of 16 MiB - 1 and a shorter one) and their bytes; the parent writes,
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
`python -m extractor.source.tls_proxy`. It gets its settings (password included) on
stdin, never in argv or the environment, the listening socket from its parent (so the
port is known before it starts), and writes one JSON line (`{}` or the failure) to
stdout. Standard library only, to start fast (about 50 ms, overlapped with connectorx's
own start).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import selectors
import signal
import socket
import ssl
import struct
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from extractor.source.tls import client_context, tls_required

CLIENT_PROTOCOL_41 = 0x0200
CLIENT_SSL = 0x0800
CHUNK = 512 * 1024  # bytes per relay read: a few dozen TLS records
_MAX_PACKET = 0xFFFFFF
_ACCEPT_TIMEOUT_S = 30  # connectorx connects as soon as the proxy is started
_AUTH_TIMEOUT_S = 30
_STOP_WAIT_S = 2.0
# MySQL client error numbers the proxy reports with (CR_*), so errors classify as usual.
CR_CONN_HOST_ERROR = 2003
CR_SERVER_LOST = 2013
CR_SSL_CONNECTION_ERROR = 2026
CR_MALFORMED_PACKET = 2027
CR_AUTH_PLUGIN_CANNOT_LOAD = 2059
_COM_QUIT = b"\x01\x00\x00\x00\x01"  # the client's last packet, after which the server closes
_CLIENT_PLUGINS = ("mysql_native_password", "caching_sha2_password")  # connectorx 0.4.6's


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
    password: str  # only for caching_sha2_password's full authentication over TLS
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
        listener = socket.create_server(("127.0.0.1", 0), backlog=1)
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
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                pass_fds=fds, close_fds=True,
            )
            assert self._process.stdin is not None
            self._process.stdin.write(json.dumps(config).encode())
            self._process.stdin.close()
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
        """Let the helper finish for up to `wait` seconds, then kill it; its report."""
        if self._gate is not None:
            os.close(self._gate)
            self._gate = None
        if self._report is not None or self._process is None:
            return self._report or {}
        process = self._process
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
            report = {"code": CR_SERVER_LOST,
                      "error": f"TLS proxy exited with {process.returncode}: {tail[0]}"}
        self._report = report
        return report

    def failure(self) -> ProxyError | None:
        """The proxy's own failure, if it had one (TLS refused, server cut), else None."""
        report = self.stop()
        if "code" in report:
            return ProxyError(int(report["code"]), str(report["error"]))
        return None


# ----------------------------------------------------------------------------- helper side


class _Failure(Exception):
    """Ends the relay. `client_error`: the client awaits a packet and gets an ERR;
    `told`: it already got the server's ERR; neither: it gets a TCP reset. Code 0:
    nothing to report (the client itself went away)."""

    def __init__(self, code: int, message: str, *, client_error: bool = False,
                 told: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.client_error = client_error
        self.told = told


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


def _wait(sock: socket.socket, events: int, deadline: float | None) -> None:
    timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
    with selectors.DefaultSelector() as selector:
        selector.register(sock, events)
        if not selector.select(timeout):
            raise _Failure(CR_SERVER_LOST, "timed out during the connection phase",
                           client_error=True)


class _Leg:
    """One side: a non-blocking socket, bytes read but not yet used, the next sequence id."""

    def __init__(self, sock: socket.socket, name: str) -> None:
        self.sock = sock
        self.name = name
        self.inbox = bytearray()
        self.seq = 0
        self.eof = False
        self.protocol_41 = False  # the client's HandshakeResponse41 was seen

    def fileno(self) -> int:
        return self.sock.fileno()

    def pending(self) -> int:
        """Decrypted bytes OpenSSL holds that no select() will announce."""
        return self.sock.pending() if isinstance(self.sock, ssl.SSLSocket) else 0

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
            raise _Failure(CR_MALFORMED_PACKET, f"oversized packet from the {self.name}",
                           client_error=True)
        if len(self.inbox) < 4 + size:
            return None
        self.seq = (self.inbox[3] + 1) & 0xFF
        payload = bytes(self.inbox[4:4 + size])
        del self.inbox[:4 + size]
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
                    raise _Failure(CR_SERVER_LOST, "the server closed the connection during "
                                   "authentication", client_error=True)
                if leg.eof:  # the client left: its own error says why, the proxy has none
                    raise _Failure(0, "the client left during authentication")
            ready = [leg for leg in legs if leg.pending()]
            if not ready:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    raise _Failure(CR_SERVER_LOST, "timed out during authentication",
                                   client_error=True)
                ready = [key.data for key, _ in selector.select(timeout)]
            for leg in ready:
                leg.read_into_inbox()


@dataclass
class _Greeting:
    payload: bytes
    caps_offset: int
    capabilities: int
    plugin: str


def _parse_greeting(payload: bytes) -> _Greeting:
    """The fields of an Initial Handshake v10 that the proxy needs."""
    try:
        if payload[0] != 10:
            raise ValueError(f"protocol version {payload[0]}")
        at = payload.index(b"\x00", 1) + 1 + 4 + 8 + 1  # version, thread id, scramble, filler
        caps = int.from_bytes(payload[at:at + 2], "little")
        plugin = ""
        if len(payload) >= at + 2 + 1 + 2 + 2 + 1 + 10:
            caps |= int.from_bytes(payload[at + 5:at + 7], "little") << 16
            scramble_len = payload[at + 7]
            rest = at + 8 + 10 + max(13, scramble_len - 8)
            if rest < len(payload):
                plugin = payload[rest:].split(b"\x00", 1)[0].decode("ascii", "replace")
    except (IndexError, ValueError) as exc:
        raise _Failure(CR_MALFORMED_PACKET, f"unexpected server greeting ({exc})",
                       client_error=True) from exc
    return _Greeting(payload, at, caps, plugin)


def _with_ssl_flag(payload: bytes, at: int, on: bool) -> bytes:
    flags = int.from_bytes(payload[at:at + 2], "little")
    flags = flags | CLIENT_SSL if on else flags & ~CLIENT_SSL
    return payload[:at] + flags.to_bytes(2, "little") + payload[at + 2:]


def _connection_phase(client: _Leg, server: _Leg, config: dict[str, Any]) -> _Leg:
    """Steps 1-6 of the module docstring; returns the server leg (TLS-wrapped or not)."""
    deadline = time.monotonic() + _AUTH_TIMEOUT_S
    _, payload = _next_packet([server], deadline)
    if payload[:1] == b"\xff":  # e.g. too many connections: the client shall see it
        client.send_packet(payload, deadline)
        raise _server_error(payload)
    greeting = _parse_greeting(payload)
    if config["ssl_mode"] == "disabled":  # a plaintext relay (a gated read)
        client.send_packet(payload, deadline)
        return server
    if not greeting.capabilities & CLIENT_SSL:
        if tls_required(config["ssl_mode"]):
            raise _Failure(CR_SSL_CONNECTION_ERROR,
                           f"SSL connection error: the server offers no TLS and "
                           f"ssl_mode={config['ssl_mode']} requires it", client_error=True)
        client.send_packet(payload, deadline)  # preferred: plaintext, as pymysql would
        return server
    client.send_packet(_with_ssl_flag(payload, greeting.caps_offset, on=False), deadline)
    _, response = _next_packet([client], deadline)
    capabilities = int.from_bytes(response[:4], "little")
    if len(response) < 32 or not capabilities & CLIENT_PROTOCOL_41:
        raise _Failure(CR_MALFORMED_PACKET, "client handshake without CLIENT_PROTOCOL_41",
                       client_error=True)
    client.protocol_41 = True
    response = _with_ssl_flag(response, 0, on=True)
    server.send_packet(response[:32], deadline)  # SSLRequest
    server = _start_tls(server, config, deadline)
    server.send_packet(response, deadline)
    plugin = greeting.plugin
    while True:
        try:
            leg, payload = _next_packet([client, server], deadline)
        except _Failure as failure:
            if failure.code or plugin in _CLIENT_PLUGINS:
                raise
            # connectorx drops the connection when asked for a plugin it lacks (MariaDB's
            # client_ed25519, say), and its own retries then only see this proxy gone.
            raise _Failure(CR_AUTH_PLUGIN_CANNOT_LOAD, f"the client gave up when the server "
                           f"asked for authentication plugin {plugin!r}") from failure
        if leg is client:
            server.send_packet(payload, deadline)
            continue
        kind = payload[:1]
        if kind == b"\xfe":  # auth switch: remember which plugin now speaks
            plugin = payload[1:].split(b"\x00", 1)[0].decode("ascii", "replace")
        elif payload == b"\x01\x04" and plugin == "caching_sha2_password":
            # Full authentication over TLS: the password in clear (see module docstring);
            # the client hears "fast auth succeeded" and awaits the server's OK or ERR.
            server.send_packet(config["password"].encode() + b"\x00", deadline)
            payload = b"\x01\x03"
        client.send_packet(payload, deadline)
        if kind == b"\xff":  # access denied, unknown database...
            raise _server_error(payload)
        if kind == b"\x00":
            return server


def _start_tls(server: _Leg, config: dict[str, Any], deadline: float) -> _Leg:
    context = client_context(config["ssl_mode"], config["ssl_ca"])
    assert context is not None
    tls = context.wrap_socket(server.sock, server_hostname=config["host"],
                              do_handshake_on_connect=False)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            _wait(tls, selectors.EVENT_READ, deadline)
        except ssl.SSLWantWriteError:
            _wait(tls, selectors.EVENT_WRITE, deadline)
        except (ssl.SSLError, OSError) as exc:
            raise _Failure(CR_SSL_CONNECTION_ERROR, f"SSL connection error: {exc}",
                           client_error=True) from exc
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
        self.buffer[:self.end] = source.inbox

    @property
    def idle(self) -> bool:
        return self.start == self.end

    def fill(self) -> None:
        """Read what is available (never blocks); marks the source's end of stream."""
        self.start = self.end = 0
        while self.end < CHUNK:
            try:
                got = self.source.sock.recv_into(self.view[self.end:CHUNK])
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
                self.start += self.target.sock.send(self.view[self.start:self.end])
            except (ssl.SSLWantWriteError, ssl.SSLWantReadError, BlockingIOError):
                return
            except OSError as exc:
                _broken(self.target, exc)
                self.start = self.end  # nobody left to take them
                return


class _Gate:
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
            self._header += data[i:i + take]
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
                word = int.from_bytes(self._message[whole - 8:whole], "little")
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
        raise _Failure(CR_SERVER_LOST, f"Lost connection to MySQL server during query "
                       f"({type(exc).__name__}: {exc})") from exc
    leg.eof = True


def _relay(client: _Leg, server: _Leg, gate: _Gate | None = None) -> None:
    """Step 7: bytes both ways until one side ends. Returns when the client ends; raises
    _Failure when the server's leg ends or fails first. A `gate` holds the server's bytes
    back while the consumer is behind."""
    up = _Direction(client, server)
    down = _Direction(server, client)
    quit_sent = False
    with selectors.DefaultSelector() as selector:
        registered: dict[_Leg, int] = {}
        if gate is not None:
            gate.count(down.view[:down.end])
            selector.register(gate.fd, selectors.EVENT_READ)
        while True:
            downstream = True
            if gate is not None:
                gate.read()
                if gate.wide_open:
                    selector.unregister(gate.fd)
                    gate = None
                else:
                    downstream = gate.open()
            for direction in (up, down):
                if direction.idle and not direction.source.eof and (
                        direction is up or downstream):
                    direction.fill()
                    if direction is up and up.end:
                        quit_sent = up.view[:up.end] == _COM_QUIT
                    if direction is down and gate is not None:
                        gate.count(down.view[:down.end])
                direction.flush()
            if client.eof and up.idle:
                return  # the client quit or went away: done
            if server.eof and down.idle:
                if quit_sent:  # the server closes as told: the client will be gone too
                    raise _Failure(0, "closed after COM_QUIT")
                raise _Failure(CR_SERVER_LOST, "Lost connection to MySQL server during "
                               "query (the server closed the connection)")
            if down.idle and downstream and server.pending():
                continue  # decrypted bytes already waiting: no select() would see them
            wanted = {client: 0, server: 0}
            for direction in (up, down):
                if not direction.idle:
                    wanted[direction.target] |= selectors.EVENT_WRITE
                elif not direction.source.eof and (direction is up or downstream):
                    wanted[direction.source] |= selectors.EVENT_READ
            for leg, events in wanted.items():
                if registered.get(leg, 0) == events:
                    continue
                if not events:
                    selector.unregister(leg.sock)
                    del registered[leg]
                    continue
                if leg in registered:
                    selector.modify(leg.sock, events)
                else:
                    selector.register(leg.sock, events)
                registered[leg] = events
            selector.select()  # a shut gate wakes for the parent's word


def _abort(sock: socket.socket) -> None:
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


def serve(listener: socket.socket, config: dict[str, Any]) -> dict[str, Any]:
    """Accept one client, relay it to the server; the report (`{}` when all went well)."""
    listener.settimeout(_ACCEPT_TIMEOUT_S)
    try:
        client_sock, _ = listener.accept()
    except OSError as exc:
        return {"code": CR_CONN_HOST_ERROR, "error": f"TLS proxy: no client came ({exc})"}
    finally:
        listener.close()
    client_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    client_sock.setblocking(False)
    client = _Leg(client_sock, "client")
    server: _Leg | None = None
    try:
        try:
            server_sock = socket.create_connection((config["host"], config["port"]),
                                                  timeout=config["connect_timeout"])
        except OSError as exc:
            raise _Failure(CR_CONN_HOST_ERROR, f"Can't connect to MySQL server on "
                           f"{config['host']!r} ({exc})", client_error=True) from exc
        server_sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        _keepalive(server_sock)
        server_sock.setblocking(False)
        server = _Leg(server_sock, "server")
        try:
            server = _connection_phase(client, server, config)
        except OSError as exc:  # ssl.SSLError included; a _Failure passes through
            raise _Failure(CR_SERVER_LOST, f"Lost connection to MySQL server during the "
                           f"connection phase ({type(exc).__name__}: {exc})",
                           client_error=True) from exc
        gate = None
        if config.get("gate_fd") is not None:
            gate = _Gate(int(config["gate_fd"]), int(config["window_bytes"]))
        _relay(client, server, gate)
        # The client quit (COM_QUIT relayed) or went away: a plain close. Were the server
        # still sending, its next write meets a reset and it abandons the query.
        server.sock.close()
        client_sock.close()
        return {}
    except _Failure as failure:
        report = {"code": failure.code, "error": failure.message} if failure.code else {}
        _emit(report)  # before the client sees the cut, so that the parent finds it
        if failure.client_error:  # the client awaits a packet: an ERR ends it properly
            with contextlib.suppress(OSError, _Failure):
                client.send_packet(_err_payload(failure.code, failure.message,
                                                protocol_41=client.protocol_41),
                                   time.monotonic() + 1)
            client_sock.close()
        elif failure.told:
            client_sock.close()
        else:
            _abort(client_sock)
        if server is not None:
            _abort(server.sock)
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
    config = json.loads(sys.stdin.read())
    listener = socket.socket(fileno=int(config.pop("listen_fd")))
    _emit(serve(listener, config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
