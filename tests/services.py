"""Real services for the tests, started on free ports and stopped afterwards.

* ``mosquitto``: a Mosquitto broker on 127.0.0.1 with a generated config (anonymous access,
  persistence in the test's tmp_path). Never the system broker on 1883. If the binary is
  missing the test FAILS and says how to install it (``apt-get install mosquitto``).
* ``secured_mosquitto``: the same with the dynamic security plugin and no anonymous access.

Also the waiting helpers every test uses instead of sleeps: wait on a condition, with a
timeout that names what was awaited.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

MOSQUITTO = Path("/usr/sbin/mosquitto")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.2):
            return True
    except OSError:
        return False


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``condition`` until true; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.01)


async def until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, within: float = 10.0
) -> None:
    """Async :func:`wait_for`: ``condition`` may be a coroutine function."""
    deadline = time.monotonic() + within
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within:g}s waiting for {what}")
        await asyncio.sleep(0.01)


@dataclass(frozen=True)
class Broker:
    """Where a test broker listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"


def _start_mosquitto(
    tmp: Path, security: str = "allow_anonymous true\n"
) -> tuple[subprocess.Popen[bytes], Broker, Path]:
    port = free_port()
    data = tmp / "mosquitto"
    data.mkdir(exist_ok=True)
    log = data / "mosquitto.log"
    conf = data / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\n"
        "user root\n"  # as root, stay root: the private tmp dir holds its log and persistence
        + security
        + "set_tcp_nodelay true\n"  # as a production broker should (docs/hub.md)
        "persistence true\n"
        f"persistence_location {data}/\n"
        f"log_dest file {log}\n"
        "log_type error\nlog_type warning\nlog_type notice\n"
    )
    proc = subprocess.Popen(
        [str(MOSQUITTO), "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    return proc, Broker("127.0.0.1", port), log


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Broker]:
    """A private Mosquitto broker for one test."""
    with _mosquitto(tmp_path) as broker:
        yield broker


@contextlib.contextmanager
def _mosquitto(tmp_path: Path, security: str = "allow_anonymous true\n") -> Iterator[Broker]:
    if not MOSQUITTO.exists():
        pytest.fail(
            f"{MOSQUITTO} not found: the MQTT tests need a real broker; install it with "
            "`apt-get install mosquitto` (or `make services`)"
        )
    for _attempt in range(3):  # the free port may be taken between probing and binding
        proc, broker, log = _start_mosquitto(tmp_path, security)
        deadline = time.monotonic() + 10
        while proc.poll() is None and not port_open(broker.host, broker.port):
            if time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"mosquitto did not listen on {broker.port} within 10s")
            time.sleep(0.01)
        if proc.poll() is None:
            break
    else:
        err = proc.stderr.read().decode() if proc.stderr else ""
        text = log.read_text() if log.exists() else ""
        pytest.fail(f"mosquitto would not start: {err}{text}")
    try:
        yield broker
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr:
            proc.stderr.close()


class MosquittoProcess:
    """A broker a test can stop and start again on the same port, keeping its persistence
    (queued QoS 1 messages of persistent sessions survive the restart, as in production)."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.proc: subprocess.Popen[bytes] | None = None
        self.broker: Broker | None = None

    def start(self) -> Broker:
        if not MOSQUITTO.exists():
            pytest.fail(f"{MOSQUITTO} not found: install it with `apt-get install mosquitto`")
        port = self.broker.port if self.broker else free_port()
        data = self.tmp / "mosquitto"
        data.mkdir(exist_ok=True)
        conf = data / "mosquitto.conf"
        conf.write_text(
            f"listener {port} 127.0.0.1\nuser root\nallow_anonymous true\nset_tcp_nodelay true\n"
            "persistence true\n"
            f"persistence_location {data}/\nlog_dest file {data}/mosquitto.log\n"
        )
        with (data / "mosquitto.stderr").open("ab") as err:
            self.proc = subprocess.Popen([str(MOSQUITTO), "-c", str(conf)], stderr=err)
        self.broker = Broker("127.0.0.1", port)
        proc = self.proc

        def listening() -> bool:
            if proc.poll() is not None:  # it gave up (the port taken again?): say why, now
                said = "".join(
                    f.read_text(errors="replace")[-600:]
                    for f in (data / "mosquitto.stderr", data / "mosquitto.log")
                    if f.exists()
                )
                pytest.fail(
                    f"mosquitto on {port} exited ({proc.returncode}) before it listened: {said}"
                )
            return port_open("127.0.0.1", port)

        wait_for(listening, f"mosquitto on {port}")
        return self.broker

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: mosquitto saves its persistence file
            self.proc.wait(timeout=10)
        self.proc = None


@pytest.fixture
def restartable_mosquitto(tmp_path: Path) -> Iterator[MosquittoProcess]:
    m = MosquittoProcess(tmp_path)
    m.start()
    try:
        yield m
    finally:
        m.stop()


DYNSEC_PLUGINS = sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so"))


@dataclass(frozen=True)
class SecuredBroker(Broker):
    """A broker with the dynamic security plugin: no anonymous access; the admin identity
    (the control API), the hub's and a read-only tools identity, each (username, password)."""

    admin: tuple[str, str]
    hub: tuple[str, str]
    reader: tuple[str, str]
    prefix: str


@pytest.fixture
def secured_mosquitto(tmp_path: Path) -> Iterator[SecuredBroker]:
    """A private Mosquitto with Debian's dynamic security plugin, its state generated by
    coldchain (:func:`gateway.dynsec.initial_state`), anonymous clients refused."""
    with secured_broker(tmp_path) as broker:
        yield broker


def identities() -> dict[str, tuple[str, str]]:
    """The admin, hub and reader identities of a secured broker, new passwords."""
    who = {name: (f"coldchain-{name}", secrets.token_urlsafe(24)) for name in ("admin", "hub")}
    who["reader"] = ("coldchain-reader", secrets.token_urlsafe(24))
    return who


@contextlib.contextmanager
def secured_broker(
    tmp_path: Path, who: dict[str, tuple[str, str]] | None = None
) -> Iterator[SecuredBroker]:
    """:func:`secured_mosquitto` in ``tmp_path``, with the identities ``who`` (two brokers
    given the same are a broker and its standby, as an operator sets them up)."""
    from coldchain.protocol.topics import Topics
    from gateway.dynsec import initial_state

    if not DYNSEC_PLUGINS:
        pytest.fail(
            "mosquitto_dynamic_security.so not found under /usr/lib: Debian's mosquitto "
            "package ships it (`apt-get install mosquitto`, or `make services`)"
        )
    data = tmp_path / "mosquitto"
    data.mkdir(parents=True, exist_ok=True)
    who = who or identities()
    topics = Topics()
    state = data / "dynamic-security.json"
    state.write_text(
        json.dumps(initial_state(topics, admin=who["admin"], hub=who["hub"], reader=who["reader"]))
    )
    security = (
        f"allow_anonymous false\nplugin {DYNSEC_PLUGINS[0]}\nplugin_opt_config_file {state}\n"
    )
    with _mosquitto(tmp_path, security) as broker:
        yield SecuredBroker(
            broker.host, broker.port, who["admin"], who["hub"], who["reader"], topics.prefix
        )
