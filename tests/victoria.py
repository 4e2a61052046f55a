"""A real VictoriaMetrics for the tests, on a free port, its data in the test's tmp_path.

``victoria_metrics`` yields a :class:`VictoriaMetrics` handle: ``.url`` (``http://127.0.0.1:
<port>``), ``.flush()`` (make accepted writes searchable now), ``.stop()`` / ``.start()`` (a
graceful restart on the same port and data). Never the system service on 8428. If the binary
is missing the test FAILS and says how to install it (``apt-get install victoria-metrics``).

Flags, and why:

* ``-dedup.minScrapeInterval=1ms``: one sample per series and millisecond, so a resent
  reading is stored once (the store refuses to start without it);
* ``-retentionPeriod=100y``: the default (1 month) would drop readings stamped in the past,
  and the contract's readings are from late 2025;
* ``-search.latencyOffset=0s``: VictoriaMetrics rewrites the points of a range query newer
  than this (default 30s); the store copes with any value (it reads /flags), and one test
  runs with the default (``extra_flags`` replaces a flag of the same name).

The response cache stays on, as in production: the store's queries pass ``nocache=1``.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import free_port, port_open

BINARY = Path("/usr/bin/victoria-metrics")
FLAGS = (
    "-dedup.minScrapeInterval=1ms",
    "-retentionPeriod=100y",
    "-search.latencyOffset=0s",
    "-loggerLevel=ERROR",
)


def _get(url: str, timeout: float = 2.0) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        data: bytes = resp.read()
        return data


def healthy(url: str) -> bool:
    try:
        return _get(url + "/health", 0.5).strip() == b"OK"
    except (OSError, urllib.error.URLError):
        return False


def terminate(proc: subprocess.Popen[bytes] | None) -> None:
    """SIGTERM, and -9 after 30 s."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class VictoriaMetrics:
    """One VictoriaMetrics process for a test, restartable on the same port and data."""

    def __init__(self, data: Path, extra_flags: tuple[str, ...] = ()) -> None:
        self.data = data
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / "victoria-metrics.log"
        names = {f.split("=", 1)[0] for f in extra_flags}
        self.flags = tuple(f for f in FLAGS if f.split("=", 1)[0] not in names) + extra_flags
        self._started_once = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __str__(self) -> str:
        return self.url

    def start(self, timeout: float = 20.0) -> None:
        if not BINARY.exists():
            pytest.fail(
                f"{BINARY} not found: the line-protocol store tests need a real "
                "VictoriaMetrics; install it with `apt-get install victoria-metrics` "
                "(or `make services`)"
            )
        for _attempt in range(3):
            if self._spawn(timeout):
                self._started_once = True
                return
            if self._started_once or "address already in use" not in self._tail():
                break
            self.port = free_port()  # taken between probing and binding: try another
        pytest.fail(f"victoria-metrics exited on start: {self._tail()}")

    def _spawn(self, timeout: float) -> bool:
        args = [
            str(BINARY),
            f"-storageDataPath={self.data}",
            f"-httpListenAddr=127.0.0.1:{self.port}",
            *self.flags,
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not healthy(self.url):
            if self.proc.poll() is not None:
                return False
            if time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"victoria-metrics did not answer /health within {timeout:g}s")
            time.sleep(0.02)
        return True

    def stop(self) -> None:
        """Stop gracefully (SIGTERM: VictoriaMetrics flushes its buffers to disk)."""
        terminate(self.proc)
        self.proc = None
        deadline = time.monotonic() + 10
        while port_open("127.0.0.1", self.port) and time.monotonic() < deadline:
            time.sleep(0.02)

    def restart(self) -> None:
        self.stop()
        self.start()

    def flush(self) -> None:
        """Make everything accepted so far searchable (``/internal/force_flush``)."""
        _get(self.url + "/internal/force_flush", 10)

    def export(self, match: str) -> list[dict[str, Any]]:
        """Raw stored samples of ``match`` over all time, as VictoriaMetrics returns them."""
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        text = _get(f"{self.url}/api/v1/export?{query}", 10).decode()
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def api(self, path: str, **params: str) -> Any:
        """The ``data`` of a Prometheus-API answer (for checking what the server itself says)."""
        text = _get(f"{self.url}{path}?{urllib.parse.urlencode(params)}", 10)
        return json.loads(text)["data"]

    def _tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""


@pytest.fixture
def victoria_metrics(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    """A private VictoriaMetrics for one test."""
    data = tmp_path / "victoria-metrics"
    data.mkdir()
    vm = VictoriaMetrics(data)
    vm.start()
    try:
        yield vm
    finally:
        vm.stop()


VMAGENT = Path("/usr/bin/vmagent")


class VmAgent:
    """A real ``vmagent`` (from the same Debian package) copying every write to each of
    ``targets``, with its on-disk buffer under ``data`` for a target that is down: the
    store's ``write_url`` (VictoriaMetrics' own pattern for keeping readings twice)."""

    def __init__(self, data: Path, targets: tuple[VictoriaMetrics, ...]) -> None:
        self.data = data
        self.port = free_port()
        self.targets = targets
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data.parent / "vmagent.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        if not VMAGENT.exists():
            pytest.fail(f"{VMAGENT} not found: install it with `apt-get install victoria-metrics`")
        args = [
            str(VMAGENT),
            f"-httpListenAddr=127.0.0.1:{self.port}",
            f"-remoteWrite.tmpDataPath={self.data}",
            *(f"-remoteWrite.url={t.url}/api/v1/write" for t in self.targets),
            "-loggerLevel=ERROR",
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not healthy(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                tail = self.log.read_text(errors="replace")[-2000:]
                pytest.fail(f"vmagent did not answer /health: {tail}")
            time.sleep(0.02)

    def stop(self) -> None:
        terminate(self.proc)
        self.proc = None
