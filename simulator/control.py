"""The control API: a small JSON-over-HTTP server on 127.0.0.1 to inspect the simulation and
inject faults (stdlib ``ThreadingHTTPServer`` in a thread; every request is executed on the
simulation's event loop, so nothing is shared across threads).

    GET    /state                         rooms, devices, faults, endpoints, clock
    GET    /faults                        active faults
    POST   /faults   {"kind", "target", "code"?, "point"?}   inject (201, the fault)
    DELETE /faults[?kind=K][&target=T]    clear matching faults (all without a query)
    POST   /power-cycle  {"target"}       switch device gateway/device off and on
    GET    /journal                       the journal's series
    GET    /journal/<site/gateway/device/point>[?since_wall_ms=N]   served values

Errors are JSON ``{"error": "..."}`` with 400 (bad request), 404 (unknown path or series).
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit

from simulator.faults import FaultError

log = logging.getLogger(__name__)


class Controlled(Protocol):
    """What the control API drives (the :class:`~simulator.runtime.Simulation`)."""

    def state(self) -> dict[str, Any]: ...

    def inject(
        self, kind: str, target: str, *, code: int | None = None, point: str | None = None
    ) -> dict[str, Any]: ...

    def clear(self, kind: str | None = None, target: str | None = None) -> list[dict[str, Any]]: ...

    def faults(self) -> list[dict[str, Any]]: ...

    def journal_series(self) -> list[str]: ...

    def power_cycle(self, target: str) -> dict[str, Any]: ...

    def journal_entries(self, series: str, since_wall_ms: int | None) -> list[dict[str, Any]]: ...


class _BadRequestError(ValueError):
    pass


class ControlServer:
    """Serves :class:`Controlled` on ``127.0.0.1:port`` (0: a free port)."""

    def __init__(
        self, target: Controlled, loop: asyncio.AbstractEventLoop, *, port: int = 0
    ) -> None:
        self.target, self.loop = target, loop
        handler = type("Handler", (_Handler,), {"control": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, args=(0.05,), name="sim-control", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the simulation's loop and return its result (from a handler thread)."""

        async def run() -> Any:
            return fn()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def dispatch(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        url = urlsplit(path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        parts = [unquote(p) for p in url.path.strip("/").split("/") if p]
        t = self.target
        if method == "GET" and parts == ["state"]:
            return 200, self.call(t.state)
        if parts == ["faults"]:
            if method == "GET":
                return 200, self.call(t.faults)
            if method == "POST":
                return 201, self.call(_injection(t, _json_object(body)))
            if method == "DELETE":
                kind, target = query.get("kind"), query.get("target")
                return 200, {"cleared": self.call(lambda: t.clear(kind, target))}
        if method == "POST" and parts == ["power-cycle"]:
            target = _json_object(body).get("target")
            if not isinstance(target, str):
                raise _BadRequestError('give "target" (gateway/device) as a string')
            return 200, self.call(lambda: t.power_cycle(target))
        if method == "GET" and parts[:1] == ["journal"]:
            if len(parts) == 1:
                return 200, {"series": self.call(t.journal_series)}
            series = "/".join(parts[1:])
            since = query.get("since_wall_ms")
            if since is not None and not since.isdigit():
                raise _BadRequestError("since_wall_ms must be an integer (UTC epoch ms)")
            entries = self.call(lambda: t.journal_entries(series, int(since) if since else None))
            return 200, {"series": series, "entries": entries}
        return 404, {"error": f"no {method} {url.path}; see GET /state, /faults, /journal"}


def _injection(t: Controlled, req: dict[str, Any]) -> Callable[[], Any]:
    kind, target = req.get("kind"), req.get("target")
    if not isinstance(kind, str) or not isinstance(target, str):
        raise _BadRequestError('give "kind" and "target" as strings')
    code, point = req.get("code"), req.get("point")
    if code is not None and (not isinstance(code, int) or isinstance(code, bool)):
        raise _BadRequestError('"code" must be an integer')
    if point is not None and not isinstance(point, str):
        raise _BadRequestError('"point" must be a string')
    unknown = sorted(set(req) - {"kind", "target", "code", "point"})
    if unknown:
        raise _BadRequestError(f"unknown key {unknown[0]!r}; use kind, target, code, point")
    return lambda: t.inject(kind, target, code=code, point=point)


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(body or b"{}")
    except json.JSONDecodeError as exc:
        raise _BadRequestError(f"body is not JSON: {exc.msg}") from None
    if not isinstance(doc, dict):
        raise _BadRequestError("body must be a JSON object")
    return doc


class _Handler(BaseHTTPRequestHandler):
    control: ControlServer
    server_version = "coldchain-sim"

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        try:
            status, doc = self.control.dispatch(method, self.path, body)
        except (_BadRequestError, FaultError) as exc:
            status, doc = 400, {"error": str(exc)}
        except KeyError as exc:
            status, doc = 404, {"error": str(exc.args[0]) if exc.args else "not found"}
        except Exception as exc:  # report, do not kill the server
            log.exception("control %s %s", method, self.path)
            status, doc = 500, {"error": f"{type(exc).__name__}: {exc}"}
        data = json.dumps(doc, ensure_ascii=False).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("control: %s", format % args)
