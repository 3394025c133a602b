"""The secrets of this process (password, webhook, keys) and the one function that hides them.

Every log record, formatted traceback, Slack payload and driver message passes `mask`.
"""

from __future__ import annotations

_SECRETS: set[str] = set()


def register_secret(value: str | None) -> None:
    if value and len(value) >= 3:
        _SECRETS.add(value)


def mask(text: str) -> str:
    for secret in _SECRETS:
        text = text.replace(secret, "***")
    return text


def masking_active() -> bool:
    return bool(_SECRETS)


def registered_secrets() -> list[str]:
    """For worker processes, which register the same secrets at start."""
    return sorted(_SECRETS)
