"""The centre's compose file (``deploy/centre/compose.yaml``) and its image
(``deploy/centre/Dockerfile``), as far as a machine with no container registry can check
them: Debian's ``docker-compose`` reads the file against the compose schema and resolves its
variables (a missing COLDCHAIN_BROKER_HOST refused with what to set); the hub's command in
both parses with coldchain's own parser and names what the containers mount; every
``coldchain`` command of deploy/README.md's "Containers" steps parses too. The images are
not built or run here."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from coldchain.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
CENTRE = REPO / "deploy" / "centre"


def compose(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.fail(
            "the compose file's test needs Debian's docker-compose (`apt-get install "
            "--no-install-recommends docker-compose`, or `make services`)"
        )
    return subprocess.run(
        [exe, "-f", str(CENTRE / "compose.yaml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ["PATH"], **(env or {})},
    )


def parses(argv: list[str]) -> None:
    """``coldchain ARGV`` parses (argparse exits 2 with its message on anything unknown)."""
    assert argv[0] == "coldchain", argv
    try:
        build_parser().parse_args(argv[1:])
    except SystemExit as exc:  # pragma: no cover - the failure's message is on stderr
        pytest.fail(f"coldchain refuses {shlex.join(argv)} (exit {exc.code})")


def target(volume: str | dict[str, str]) -> str:
    """Where a volume is mounted in the container (short ``src:target[:mode]`` or long)."""
    return volume.split(":")[1] if isinstance(volume, str) else volume["target"]


def test_the_compose_file_is_valid_and_says_which_variable_it_needs() -> None:
    done = compose("config", env={"COLDCHAIN_BROKER_HOST": "mqtt.example.org"})
    assert done.returncode == 0, done.stderr
    resolved = yaml.safe_load(done.stdout)
    services = resolved["services"]
    assert set(services) == {"broker", "hub", "victoriametrics"}
    assert services["victoriametrics"]["profiles"] == ["victoriametrics"]
    # the hub reaches the broker by the name the gateways dial: the same certificate
    assert services["broker"]["networks"]["default"]["aliases"] == ["mqtt.example.org"]

    hub = services["hub"]
    parses(hub["command"])
    mounts = {target(v) for v in hub["volumes"]}
    assert {"/etc/coldchain", "/var/lib/coldchain-hub"} <= mounts
    assert hub["command"][2].startswith("/etc/coldchain/")
    assert hub["command"][hub["command"].index("--data-dir") + 1] == "/var/lib/coldchain-hub"
    broker = services["broker"]
    (conf,) = [a for a in broker["command"] if a.endswith("mosquitto.conf")]
    assert any(conf.startswith(target(v) + "/") for v in broker["volumes"]), conf

    # the Dockerfile's own default command is the compose file's
    dockerfile = (CENTRE / "Dockerfile").read_text()
    cmd = re.search(r"^CMD (\[.*?\])$", dockerfile, re.MULTILINE | re.DOTALL)
    assert cmd is not None
    assert yaml.safe_load(cmd.group(1).replace("\\\n", "")) == hub["command"]
    for source in re.findall(r"^COPY (\S+) ", dockerfile, re.MULTILINE):
        assert (REPO / source).exists(), source
    assert "USER coldchain" in dockerfile

    missing = compose("config", env={})
    assert missing.returncode != 0
    assert "set COLDCHAIN_BROKER_HOST: the name the gateways dial" in missing.stderr


def test_every_command_of_the_container_steps_is_one_coldchain_knows() -> None:
    readme = (REPO / "deploy" / "README.md").read_text()
    section = readme[readme.index("## Containers") :]
    runs = [
        shlex.split(line.split("docker compose run --rm hub ", 1)[1])
        for line in section.splitlines()
        if line.startswith("docker compose run --rm hub coldchain ")
    ]
    assert [r[1] for r in runs] == ["ca", "ca", "broker", "gateway"]
    for argv in runs:
        parses(argv)
    broker = runs[2]
    # the broker's files where its container mounts them, the plugin where its image has it
    done = compose("config", env={"COLDCHAIN_BROKER_HOST": "mqtt.example.org"})
    mounted = {target(v) for v in yaml.safe_load(done.stdout)["services"]["broker"]["volumes"]}
    assert broker[broker.index("--out") + 1] in mounted
    assert broker[broker.index("--persistence") + 1] in mounted
    assert broker[broker.index("--plugin") + 1] == "/usr/lib/mosquitto_dynamic_security.so"
