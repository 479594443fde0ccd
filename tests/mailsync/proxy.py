"""A TCP proxy for tests that cuts the connection once, at a chosen moment of an IMAP session."""

from __future__ import annotations

import socket
import threading


class DroppingProxy:
    """Forward 127.0.0.1:port to `upstream`; the first connection that meets the condition is
    cut: `upload_bytes` client->server bytes (mid-APPEND), or the server's first APPENDUID
    reply (the APPEND is stored but the client never hears so)."""

    def __init__(self, upstream: tuple[str, int], upload_bytes: int | None = None,
                 on_reply: bytes | None = None):
        self.upstream = upstream
        self.upload_bytes = upload_bytes
        self.on_reply = on_reply
        self.dropped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.upstream)
            state = {"up": 0}
            for src, dst, upward in ((client, server, True), (server, client, False)):
                threading.Thread(target=self._pump, args=(src, dst, upward, state, client,
                                                          server), daemon=True).start()

    def _pump(self, src, dst, upward, state, client, server) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if not self.dropped.is_set() and self._should_drop(data, upward, state):
                    self.dropped.set()
                    break
                dst.sendall(data)
        except OSError:
            pass
        for sock in (client, server):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _should_drop(self, data: bytes, upward: bool, state: dict) -> bool:
        if upward and self.upload_bytes is not None:
            state["up"] += len(data)
            return state["up"] > self.upload_bytes
        return not upward and self.on_reply is not None and self.on_reply in data
