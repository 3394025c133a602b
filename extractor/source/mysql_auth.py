"""What a MySQL client proves in the connection phase, checked by the TLS proxy (tls_proxy.py).

The proxy knows the password and sees the server's nonce (in the greeting, and again in
an AuthSwitchRequest), so it computes the scramble a client that knows the password must
send, and compares. Only the two plugins connectorx speaks are understood:

- mysql_native_password: SHA1(pw) XOR SHA1(nonce + SHA1(SHA1(pw)));
- caching_sha2_password: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) + nonce).

An empty password is an empty answer in both (as the servers and the clients have it).
Standard library only: the proxy's helper process imports it and should start fast.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

NATIVE = "mysql_native_password"
CACHING_SHA2 = "caching_sha2_password"
PLUGINS = (NATIVE, CACHING_SHA2)  # connectorx 0.4.6's: the ones the proxy can verify
NONCE_LENGTH = 20

CLIENT_CONNECT_WITH_DB = 0x8
CLIENT_PROTOCOL_41 = 0x200
CLIENT_SECURE_CONNECTION = 0x8000
CLIENT_PLUGIN_AUTH = 0x80000
CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA = 0x200000


@dataclass(frozen=True)
class HandshakeResponse:
    """The fields of a client's HandshakeResponse41 that say who it is and what it proves."""

    capabilities: int
    user: bytes
    auth: bytes
    plugin: str  # mysql_native_password when the client names none (as the server assumes)


def parse_response(payload: bytes) -> HandshakeResponse:
    """A HandshakeResponse41; ValueError when it is not one."""
    capabilities = int.from_bytes(payload[:4], "little")
    if len(payload) < 33 or not capabilities & CLIENT_PROTOCOL_41:
        raise ValueError("not a HandshakeResponse41")
    try:
        end = payload.index(b"\x00", 32)
        user, at = payload[32:end], end + 1
        terminated = False
        if capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA:
            size, at = _lenenc(payload, at)
        elif capabilities & CLIENT_SECURE_CONNECTION:
            size, at = payload[at], at + 1
        else:  # the oldest form, NUL-terminated
            size, terminated = payload.index(b"\x00", at) - at, True
        auth = payload[at : at + size]
        if len(auth) != size:
            raise ValueError("truncated auth response")
        at += size + terminated
        if capabilities & CLIENT_CONNECT_WITH_DB:
            at = payload.index(b"\x00", at) + 1
        plugin = NATIVE
        if capabilities & CLIENT_PLUGIN_AUTH:
            plugin = payload[at:].split(b"\x00", 1)[0].decode("ascii", "replace")
    except IndexError as exc:
        raise ValueError("truncated HandshakeResponse41") from exc
    return HandshakeResponse(capabilities, user, auth, plugin)


def _lenenc(payload: bytes, at: int) -> tuple[int, int]:
    """A length-encoded integer at `at`: (value, where the next field starts)."""
    first = payload[at]
    if first < 0xFB:
        return first, at + 1
    width = {0xFC: 2, 0xFD: 3, 0xFE: 8}.get(first)
    if width is None or len(payload) < at + 1 + width:
        raise ValueError("bad length-encoded integer")
    return int.from_bytes(payload[at + 1 : at + 1 + width], "little"), at + 1 + width


def parse_switch(payload: bytes) -> tuple[str, bytes]:
    """An AuthSwitchRequest (0xFE, plugin name, NUL, nonce, NUL): (plugin, nonce)."""
    name, _, data = payload[1:].partition(b"\x00")
    return name.decode("ascii", "replace"), data[:-1] if data.endswith(b"\x00") else data


def scramble(plugin: str, password: bytes, nonce: bytes) -> bytes:
    """What a client that knows `password` answers to `nonce` with `plugin` (one of PLUGINS)."""
    if not password:
        return b""
    if plugin == NATIVE:
        first = hashlib.sha1(password).digest()
        second = hashlib.sha1(nonce[:NONCE_LENGTH] + hashlib.sha1(first).digest()).digest()
    elif plugin == CACHING_SHA2:
        first = hashlib.sha256(password).digest()
        second = hashlib.sha256(hashlib.sha256(first).digest() + nonce).digest()
    else:
        raise ValueError(f"authentication plugin {plugin!r} cannot be verified")
    return bytes(a ^ b for a, b in zip(first, second, strict=True))


def proves_password(plugin: str, password: bytes, nonce: bytes, answer: bytes) -> bool:
    """Whether `answer` is the scramble of `password` (in constant time for a given length)."""
    return hmac.compare_digest(scramble(plugin, password, nonce), answer)
