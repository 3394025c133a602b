"""The client-side TLS context of each ssl_mode: one definition for pymysql and the TLS proxy.

Standard library only, since the TLS proxy's helper process imports it and should start fast.
"""

from __future__ import annotations

import ssl


def client_context(ssl_mode: str, ssl_ca: str | None) -> ssl.SSLContext | None:
    """The context that encrypts a connection in this mode; None for `disabled`.

    `preferred` and `required` encrypt without checking the certificate (as MySQL's own
    client does); `verify_ca` checks the chain against `ssl_ca` (or the system CAs);
    `verify_identity` also checks that the certificate names the host we dialled.
    """
    if ssl_mode == "disabled":
        return None
    if ssl_mode in ("preferred", "required"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    if ssl_mode in ("verify_ca", "verify_identity"):
        context = ssl.create_default_context(cafile=ssl_ca)
        context.check_hostname = ssl_mode == "verify_identity"
        context.verify_mode = ssl.CERT_REQUIRED
        return context
    raise ValueError(f"unknown ssl_mode {ssl_mode!r}")


def tls_required(ssl_mode: str) -> bool:
    """Whether a server without TLS must be refused (every mode but disabled/preferred)."""
    return ssl_mode not in ("disabled", "preferred")
