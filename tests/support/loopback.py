"""The lifecycle the fake API servers share: bind 127.0.0.1 on an ephemeral port, serve from a
daemon thread, and stop on `__exit__`, on `stop()`, or by itself after `max_lifetime` seconds, so
a test that forgets a server can never leave it running."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class LoopbackServer:
    max_lifetime: float = 300.0
    _server: ThreadingHTTPServer | None = None
    _timer: threading.Timer | None = None
    _url: str = ""

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        raise NotImplementedError

    @property
    def port(self) -> int:
        assert self._url, "server not started"
        return int(self._url.rsplit(":", 1)[1])

    @property
    def url(self) -> str:
        assert self._url, "server not started"
        return self._url  # kept after stop(), so a test can still name the server it used

    def start(self) -> Any:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},  # quick stop
                         name=f"{type(self).__name__}:{self.port}", daemon=True).start()
        self._timer = threading.Timer(self.max_lifetime, self.stop)
        self._timer.daemon = True
        self._timer.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if self._timer is not None and self._timer is not threading.current_thread():
            self._timer.cancel()
        if server is not None:
            server.shutdown()
            server.server_close()

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
