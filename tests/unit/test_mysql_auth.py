"""The TLS proxy's check of what a client proves (extractor/source/mysql_auth.py), against
pymysql's own scrambles, an implementation apart."""

from __future__ import annotations

import os
import struct

import pytest
from pymysql import _auth

from extractor.source import mysql_auth
from extractor.source.mysql_auth import CACHING_SHA2, NATIVE

PASSWORDS = ["s3cret", "tls-Pw/7f3a@x", "pässwörd 😀", "x" * 80]


@pytest.mark.parametrize("password", PASSWORDS, ids=range(len(PASSWORDS)))
def test_scrambles_equal_pymysqls(password: str) -> None:
    secret, nonce = password.encode(), os.urandom(20)
    assert mysql_auth.scramble(NATIVE, secret, nonce) == _auth.scramble_native_password(
        secret, nonce
    )
    assert mysql_auth.scramble(CACHING_SHA2, secret, nonce) == _auth.scramble_caching_sha2(
        secret, nonce
    )


@pytest.mark.parametrize("plugin", [NATIVE, CACHING_SHA2])
def test_only_the_password_proves_the_password(plugin: str) -> None:
    nonce = os.urandom(20)
    right = mysql_auth.scramble(plugin, b"pw", nonce)
    assert mysql_auth.proves_password(plugin, b"pw", nonce, right)
    for answer in (
        mysql_auth.scramble(plugin, b"pW", nonce),
        mysql_auth.scramble(plugin, b"pw", os.urandom(20)),
        right[:-1],
        right + b"\x00",
        b"",
    ):
        assert not mysql_auth.proves_password(plugin, b"pw", nonce, answer)


def test_an_empty_password_is_an_empty_answer() -> None:
    nonce = os.urandom(20)
    for plugin in (NATIVE, CACHING_SHA2):
        assert mysql_auth.proves_password(plugin, b"", nonce, b"")
        assert not mysql_auth.proves_password(
            plugin, b"", nonce, mysql_auth.scramble(plugin, b"x", nonce)
        )


def test_another_plugin_cannot_be_verified() -> None:
    with pytest.raises(ValueError, match="'client_ed25519' cannot be verified"):
        mysql_auth.proves_password("client_ed25519", b"pw", os.urandom(20), b"sig")


def _response(caps: int, user: bytes, auth: bytes, tail: bytes) -> bytes:
    return struct.pack("<IIB", caps, 1 << 24, 45) + b"\x00" * 23 + user + b"\x00" + auth + tail


P41, SECURE, WITH_DB = 0x200, 0x8000, 0x8
PLUGIN, LENENC = 0x80000, 0x200000


@pytest.mark.parametrize(
    "form, packet, expected",
    [
        (
            "lenenc",
            _response(
                P41 | SECURE | PLUGIN | LENENC,
                b"radar",
                b"\x14" + b"a" * 20,
                b"caching_sha2_password\x00",
            ),
            (b"radar", b"a" * 20, CACHING_SHA2),
        ),
        (
            "secure_with_db",
            _response(
                P41 | SECURE | PLUGIN | WITH_DB,
                b"radar",
                b"\x03abc",
                b"db\x00mysql_native_password\x00",
            ),
            (b"radar", b"abc", NATIVE),
        ),
        (
            "empty_answer",
            _response(P41 | SECURE | PLUGIN, b"u", b"\x00", b"caching_sha2_password\x00"),
            (b"u", b"", CACHING_SHA2),
        ),
        ("no_plugin_named", _response(P41 | SECURE, b"u", b"\x02ab", b""), (b"u", b"ab", NATIVE)),
        ("nul_terminated", _response(P41, b"u", b"abc\x00", b""), (b"u", b"abc", NATIVE)),
        (
            "another_plugin",
            _response(P41 | SECURE | PLUGIN, b"u", b"\x00", b"dialog\x00"),
            (b"u", b"", "dialog"),
        ),
    ],
)
def test_handshake_responses_parse(
    form: str, packet: bytes, expected: tuple[bytes, bytes, str]
) -> None:
    response = mysql_auth.parse_response(packet)
    assert (response.user, response.auth, response.plugin) == expected


@pytest.mark.parametrize(
    "packet",
    [
        b"",
        _response(SECURE | PLUGIN, b"u", b"\x00", b"x\x00"),  # no CLIENT_PROTOCOL_41
        struct.pack("<IIB", P41 | 0x800, 1 << 24, 45) + b"\x00" * 23,  # an SSLRequest
        _response(P41 | SECURE, b"u", b"\x14abc", b""),  # the answer cut short
        _response(P41 | SECURE | LENENC, b"u", b"\xff", b""),  # no such length
        struct.pack("<IIB", P41, 1 << 24, 45) + b"\x00" * 23 + b"no-terminator",
    ],
    ids=["empty", "protocol_40", "ssl_request", "truncated", "bad_lenenc", "user_unterminated"],
)
def test_what_is_not_a_handshake_response_is_refused(packet: bytes) -> None:
    with pytest.raises(ValueError):
        mysql_auth.parse_response(packet)


def test_auth_switch_request() -> None:
    nonce = os.urandom(20)
    assert mysql_auth.parse_switch(b"\xfecaching_sha2_password\x00" + nonce + b"\x00") == (
        CACHING_SHA2,
        nonce,
    )
    assert mysql_auth.parse_switch(b"\xfe") == ("", b"")
