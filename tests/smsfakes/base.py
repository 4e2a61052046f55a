"""What every stand-in shares: a real HTTP server, its records, and failures on demand.

A stand-in is a FastAPI app served by uvicorn on 127.0.0.1, on a port the OS picks (the
socket is bound to port 0 before the server starts, so there is no race for a "free" port),
in a background thread with its own event loop: sync and async tests can use it, and a
notifier that blocks cannot stall it.

* ``records``: one dict per accepted message, its fields decoded (see each stand-in);
* ``rejections``: ``{"code", "message"}`` per request the stand-in refused on its merits;
* ``calls``: every request that reached the handler, injected failures included;
* ``fail_next(n, how)``: the next ``n`` requests fail as ``"error"`` (the provider's 5xx),
  ``"throttle"`` (its rate-limit answer) or ``"hang"`` (no answer until the stand-in stops
  or :meth:`Fake.release` is called: a timeout for the client).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections import deque
from typing import Any, Literal

import uvicorn
from fastapi import FastAPI, Request, Response

from tests.services import wait_for

Failure = Literal["error", "throttle", "hang"]


class Fake:
    """A provider's stand-in; subclasses add the routes and the provider's answers."""

    name = "fake"

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []
        self.rejections: list[dict[str, str]] = []
        self.calls = 0
        self._failures: deque[Failure] = deque()
        self._lock = threading.Lock()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release: asyncio.Event | None = None
        self.port = 0

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    # -- what subclasses provide -------------------------------------------------------

    def routes(self, app: FastAPI) -> None:
        """Add the provider's routes to ``app``."""
        raise NotImplementedError

    def error_response(self) -> Response:
        """The provider's answer when it is failing (a 5xx)."""
        return Response("Service Unavailable", status_code=503)

    def throttle_response(self) -> Response:
        """The provider's answer when the caller goes too fast."""
        return Response("Too Many Requests", status_code=429)

    # -- failures on demand ------------------------------------------------------------

    def fail_next(self, n: int = 1, how: Failure = "error") -> None:
        """Make the next ``n`` requests fail ``how``."""
        with self._lock:
            self._failures.extend([how] * n)

    def release(self) -> None:
        """Let hanging requests answer (with an error) now."""
        if self._loop is not None and self._release is not None:
            with contextlib.suppress(RuntimeError):  # the server has stopped already
                self._loop.call_soon_threadsafe(self._release.set)

    async def begin(self, request: Request) -> Response | None:
        """Count the request; the injected failure's answer if one is due, else None."""
        del request
        with self._lock:
            self.calls += 1
            how = self._failures.popleft() if self._failures else None
        if how == "throttle":
            return self.throttle_response()
        if how == "hang" and self._release is not None:
            await self._release.wait()
        return None if how is None else self.error_response()

    def reject(self, code: str, message: str) -> None:
        """Note a refusal (for assertions) before answering it."""
        self.rejections.append({"code": code, "message": message})

    # -- lifetime ----------------------------------------------------------------------

    def start(self) -> None:
        """Serve on 127.0.0.1 and return once the server accepts connections."""
        app = FastAPI(title=f"{self.name} stand-in")
        self.routes(app)
        # IPPROTO_TCP: asyncio sets TCP_NODELAY only then (else +40 ms per kept-alive answer)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(  # log_config=None: leave the process's logging alone
            app, log_config=None, log_level="warning", lifespan="off", access_log=False
        )
        server = self._server = uvicorn.Server(config)

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            self._release = asyncio.Event()
            await server.serve(sockets=[sock])

        self._thread = threading.Thread(
            target=asyncio.run, args=(serve(),), name=f"{self.name}-stand-in", daemon=True
        )
        self._thread.start()
        thread = self._thread
        wait_for(lambda: server.started or not thread.is_alive(), f"the {self.name} stand-in")
        if not server.started:
            sock.close()
            raise RuntimeError(f"the {self.name} stand-in did not start (see the log above)")

    def stop(self) -> None:
        """Release hanging requests, stop serving and wait for the thread."""
        self.request_stop()
        self.join()

    def request_stop(self) -> None:
        """Tell the server to stop (it notices within 0.1 s); :meth:`join` waits for it."""
        self.release()
        if self._server is not None:
            self._server.should_exit = True

    def join(self) -> None:
        """Wait for a stopping server's thread to end."""
        if self._thread is not None:
            self._thread.join(timeout=10)
            if self._thread.is_alive():
                raise RuntimeError(f"the {self.name} stand-in did not stop within 10s")
