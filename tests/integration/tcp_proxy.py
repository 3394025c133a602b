"""A small TCP proxy for fault injection: it relays bytes and can stall a connection once a
marker passes through it (for example the header of an S3 CopyObject request)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from types import TracebackType


class StallingProxy:
    """Relays 127.0.0.1:<port> to `target`. The `stall_at`-th client chunk containing
    `marker` is held back forever (and `stalled` is set), or with `cut=True` its connection
    is cut instead; with `repeat=True`, so is every later one (a lasting fault); `delay`
    seconds pass before every chunk that contains the marker."""

    def __init__(
        self,
        target: tuple[str, int],
        marker: bytes,
        stall_at: int = 0,
        *,
        cut: bool = False,
        repeat: bool = False,
        delay: float = 0.0,
    ) -> None:
        self.target, self.marker, self.stall_at = target, marker, stall_at
        self.cut, self.repeat, self.delay = cut, repeat, delay
        self.seen = 0
        self.stalled = threading.Event()
        self._lock = threading.Lock()
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._server.getsockname()[1])
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def __enter__(self) -> StallingProxy:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._closed = True
        self._server.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while chunk := source.recv(65536):
                if from_client and self.marker in chunk:
                    with self._lock:
                        self.seen += 1
                        hold = self.seen == self.stall_at or (
                            self.repeat and 0 < self.stall_at <= self.seen
                        )
                    time.sleep(self.delay)
                    if hold:
                        self.stalled.set()
                        if self.cut:
                            source.close()
                            sink.close()
                            return
                        threading.Event().wait()  # never forwarded
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
