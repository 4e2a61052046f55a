"""``coldchain hub`` as a technician starts it: the config's warnings are in its log, and
it settles the garbage collector once built (start-up objects frozen, fewer collections);
a malformed --broker, an open broker and a store set up to drop readings are refused at
start in one line; a store that does not answer yet is waited for."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from tests.services import Broker
from tests.test_config_warnings import DOOR, site
from tests.victoria import VictoriaMetrics


def test_a_room_whose_rules_watch_no_room_air_is_warned_in_the_hubs_log(tmp_path: Path) -> None:
    # With a point's role defaulting to `other`, a custom profile that names no role takes
    # its room's probe away from the rules; only `config check` said so, and a running hub
    # (which loaded its config without the warnings) never did.
    doc = site([DOOR], defrost={"at": ["02:00"]})
    doc["uplink"] = {"broker": "mqtt://127.0.0.1:1"}  # refused: the hub keeps retrying
    doc["hub"] = {"data_dir": str(tmp_path / "hub"), "listen": "127.0.0.1:0"}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    hub = subprocess.Popen(
        [sys.executable, "-m", "coldchain.cli", "hub", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert hub.stderr is not None
        deadline = time.monotonic() + 30
        lines: list[str] = []
        while time.monotonic() < deadline:
            line = hub.stderr.readline()
            if not line:
                break
            lines.append(line)
            if "hub: API on" in line:
                break
        warned = [x for x in lines if "WARNING" in x and "site config:" in x]
        assert len(warned) == 1, "".join(lines)
        assert "room s1/fz: its temperature rules watch no point" in warned[0]
        settled = [x for x in lines if "garbage collector:" in x]
        assert len(settled) == 1, "".join(lines)
        assert "thresholds (10000, 20, 20)" in settled[0]
        assert int(settled[0].split("garbage collector: ")[1].split()[0]) > 10_000  # frozen
    finally:
        hub.terminate()
        hub.wait(timeout=30)


def test_a_malformed_broker_url_is_refused_at_start_in_one_line(tmp_path: Path) -> None:
    doc = site([DOOR], defrost={"at": ["02:00"]})
    doc["hub"] = {"data_dir": str(tmp_path / "hub"), "listen": "127.0.0.1:0"}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "coldchain.cli", "hub", str(path), "--broker", "tcp://broker"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "coldchain hub: broker URL 'tcp://broker' is not mqtt://host:port" in done.stderr
    assert "Traceback" not in done.stderr


def test_an_open_broker_is_refused_at_start_unless_insecure(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """A broker that lets a client with no credentials publish as a gateway is refused: the
    hub says so and exits; --insecure (a test, a lab) starts anyway, with a warning."""
    doc = site([DOOR], defrost={"at": ["02:00"]})
    doc["uplink"] = {"broker": mosquitto.url}
    doc["hub"] = {"data_dir": str(tmp_path / "hub"), "listen": "127.0.0.1:0"}
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    cli = [sys.executable, "-m", "coldchain.cli", "hub", str(path)]
    done = subprocess.run(cli, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr
    assert "lets a client with no credentials publish on the gateways' topics" in done.stderr
    assert "Traceback" not in done.stderr
    hub = subprocess.Popen(
        [*cli, "--insecure"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert hub.stdout is not None
        assert "coldchain hub: API" in hub.stdout.readline()
    finally:
        hub.terminate()
        hub.wait(timeout=30)
    assert hub.stderr is not None
    assert "--insecure: the broker is not checked" in hub.stderr.read()


def _influx_hub(tmp_path: Path, broker: Broker, url: str) -> list[str]:
    doc = site([DOOR], defrost={"at": ["02:00"]})
    doc["uplink"] = {"broker": broker.url}
    doc["hub"] = {
        "data_dir": str(tmp_path / "hub"),
        "listen": "127.0.0.1:0",
        "store": {"type": "influx", "url": url},
    }
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return [sys.executable, "-m", "coldchain.cli", "hub", str(path), "--insecure"]


def test_a_victoria_metrics_that_would_drop_readings_is_refused_at_start_in_one_line(
    tmp_path: Path, mosquitto: Broker
) -> None:
    """VictoriaMetrics' default retention (a month) drops older readings on arrival: the hub
    says so and exits, no traceback. (Started so, `bench_ingest --store victoriametrics` once
    waited for acks that never came: the hub's message went to /dev/null.)"""
    (tmp_path / "vm").mkdir()
    vm = VictoriaMetrics(tmp_path / "vm", extra_flags=("-retentionPeriod=1",))
    vm.start()
    try:
        done = subprocess.run(
            _influx_hub(tmp_path, mosquitto, vm.url),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        vm.stop()
    assert done.returncode == 1, done.stderr
    assert (
        f"coldchain hub: VictoriaMetrics at {vm.url} runs with -retentionPeriod=1 (31 days): "
        "it drops older readings on arrival" in done.stderr
    )
    assert "Traceback" not in done.stderr


def test_a_store_down_at_start_is_waited_for(tmp_path: Path, mosquitto: Broker) -> None:
    """A store that does not answer yet (VictoriaMetrics starting after the hub, as after a
    power cut) is not a reason to exit: the hub says it waits, and serves once it answers."""
    (tmp_path / "vm").mkdir()
    vm = VictoriaMetrics(tmp_path / "vm")  # its port chosen, not started yet
    hub = subprocess.Popen(
        _influx_hub(tmp_path, mosquitto, vm.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert hub.stdout is not None
        assert hub.stderr is not None
        url = hub.stdout.readline().split("API ", 1)[1].split("/docs", 1)[0]
        deadline = time.monotonic() + 30
        while "the hub waits for it" not in (line := hub.stderr.readline()):
            assert line, "the hub exited without waiting for the store"
            assert time.monotonic() < deadline, "no word of the store being waited for"
        assert f"VictoriaMetrics at {vm.url} is not reachable" in line
        assert hub.poll() is None
        vm.start()
        deadline = time.monotonic() + 30
        while not _answers(url + "/login"):
            assert hub.poll() is None, hub.stderr.read()
            assert time.monotonic() < deadline, "the hub did not serve once the store answered"
            time.sleep(0.2)
    finally:
        hub.terminate()
        hub.wait(timeout=30)
        vm.stop()


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False
