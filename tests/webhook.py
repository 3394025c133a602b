"""A Slack incoming webhook stand-in: a real HTTP server on 127.0.0.1 that records payloads."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

HOOK_TOKEN = "CanaryHookToken7e1d"  # the secret part of a webhook URL


class Webhook(ThreadingHTTPServer):
    """Records every payload; answers with the next status of `statuses` (then 200)."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.payloads: list[dict[str, Any]] = []
        self.statuses: list[int] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/services/T0/B0/{HOOK_TOKEN}"


class _Handler(BaseHTTPRequestHandler):
    server: Webhook

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        assert self.path == f"/services/T0/B0/{HOOK_TOKEN}"
        self.server.payloads.append(json.loads(body))
        status = self.server.statuses.pop(0) if self.server.statuses else 200
        self.send_response(status)
        self.end_headers()
        self.wfile.write(b"ok" if status == 200 else b"internal_error")

    def log_message(self, *args: Any) -> None:
        pass


@contextmanager
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    thread = threading.Thread(target=hook.serve_forever, daemon=True)
    thread.start()
    try:
        yield hook
    finally:
        hook.shutdown()
        hook.server_close()


def message(payload: dict[str, Any]) -> str:
    """Every text of a payload's blocks, joined: what a reader of the channel sees."""
    texts = [payload["text"]]
    for block in payload.get("blocks", []):
        if "text" in block:
            texts.append(block["text"]["text"])
        texts += [f["text"] for f in block.get("fields", []) + block.get("elements", [])]
    return "\n".join(texts)
