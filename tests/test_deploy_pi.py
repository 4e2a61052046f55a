"""``deploy/pi/install.sh`` as a technician runs it on a new Pi, into a temporary root: the
copy inside a bundle made by ``coldchain gateway provision`` (with the agent's wheel, nothing
else needed), and the checkout's with the bundle as its argument. It makes the system user
(in dialout), the agent's venv (``requirements/agent.lock``), the config and secrets
readable by the agent only, the outbox directory, and a hardened ``Type=notify`` unit with
the watchdog that ``systemd-analyze verify`` accepts; the installed agent, run from that
venv with those files, streams to the real hub; running it again upgrades in place and keeps
the outbox; ``--uninstall`` says what it keeps and keeps it."""

from __future__ import annotations

import asyncio
import os
import shutil
import stat
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.hubkit import running_hub_service
from tests.services import SecuredBroker
from tests.test_gateway_provisioning import (
    PROFILES,
    coldchain,
    simulated_centre,
    until_stored,
)

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "deploy" / "pi" / "install.sh"


def install(root: Path, *args: str, script: Path = INSTALL) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(script), *args, "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def new_root(tmp_path: Path) -> Path:
    """A bare root with the host's account files (useradd --prefix edits them there) and
    its systemd units (for systemd-analyze --root)."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    for f in ("passwd", "group", "shadow", "gshadow"):
        shutil.copy2(Path("/etc") / f, root / "etc" / f)
    (root / "usr" / "lib").mkdir(parents=True)
    (root / "usr" / "lib" / "systemd").symlink_to("/usr/lib/systemd")
    return root


def owner(path: Path) -> tuple[int, int, int]:
    st = path.stat()
    return st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)


def check_installed(root: Path) -> Path:
    """What the install promises, in ``root``; its /etc/coldchain."""
    # the user: a system account, no login, in dialout for the RS-485 adapters
    passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").open()}
    user = passwd["coldchain"]
    assert user[6].strip() == "/usr/sbin/nologin"
    uid, gid = int(user[2]), int(user[3])
    assert uid < 1000  # --system
    groups = {g.split(":")[0]: g.strip().split(":") for g in (root / "etc/group").open()}
    assert "coldchain" in groups["dialout"][3].split(",")
    # config and secrets: root:coldchain, not for anyone else; the outbox the agent's
    etc = root / "etc" / "coldchain"
    assert owner(etc) == (0, gid, 0o750)
    for f in ("site.yaml", "broker-password", "message-key", "profiles/xy-md02.yaml"):
        assert owner(etc / f) == (0, gid, 0o640), f
    assert owner(root / "var/lib/coldchain") == (uid, gid, 0o750)
    # the unit: notify + watchdog, restart always, hardened; enabled
    unit = (root / "etc/systemd/system/coldchain-agent.service").read_text()
    for line in (
        "Type=notify",
        "WatchdogSec=60",
        "Restart=always",
        "User=coldchain",
        "SupplementaryGroups=dialout",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/coldchain",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "ExecStart=/opt/coldchain/venv/bin/coldchain agent run /etc/coldchain/site.yaml "
        "--gateway gw1 --profiles /etc/coldchain/profiles --data-dir /var/lib/coldchain",
    ):
        assert line in unit.splitlines(), line
    wants = root / "etc/systemd/system/multi-user.target.wants/coldchain-agent.service"
    assert os.readlink(wants) == "/etc/systemd/system/coldchain-agent.service"  # enabled
    journal = (root / "etc/systemd/journald.conf.d/coldchain.conf").read_text()
    assert "SystemMaxUse=64M" in journal.splitlines()
    verify_unit(root, "coldchain-agent.service")
    return etc


def verify_unit(root: Path, unit: str) -> None:
    """``systemd-analyze verify`` accepts ``unit`` as installed in ``root`` (where systemd
    is present): nothing about it on its error output."""
    if not shutil.which("systemd-analyze"):
        return
    verify = subprocess.run(
        ["systemd-analyze", f"--root={root}", "verify", unit],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stderr
    assert unit.removesuffix(".service") not in verify.stderr, verify.stderr


@pytest.mark.slow
@pytest.mark.timeout(600)
async def test_the_pi_install_makes_a_working_hardened_gateway_and_upgrades_in_place(
    tmp_path: Path, secured_mosquitto: SecuredBroker
) -> None:
    if os.geteuid() != 0:
        pytest.fail("the install test runs as root (it makes users and owns files)")
    broker = secured_mosquitto
    async with simulated_centre(tmp_path, broker) as (site, cfg):
        bundle = tmp_path / "gw1.tar.gz"
        rc, _, err = await coldchain("gateway", str(site), "provision", "gw1", "--out", str(bundle))
        assert rc == 0, err

        # on the Pi: the bundle unpacked, its own installer run, nothing else needed
        with tarfile.open(bundle) as tar:
            tar.extractall(tmp_path / "pi", filter="data")
        unpacked = tmp_path / "pi" / "coldchain-gw1"
        script = unpacked / "install.sh"
        assert list(unpacked.glob("coldchain-*.whl"))
        root = new_root(tmp_path)
        done = await asyncio.to_thread(install, root, script=script)
        assert done.returncode == 0, done.stderr
        assert "gateway gw1 into" in done.stdout

        etc = check_installed(root)

        # the installed agent, from its venv and the installed files, streams to the hub
        venv = root / "opt/coldchain/venv"
        site_packages = list((venv / "lib").glob("python3*/site-packages"))
        assert len(site_packages) == 1
        assert (site_packages[0] / "pymodbus").is_dir()
        assert not (site_packages[0] / "fastapi").exists()  # the agent's install: no web stack
        async with running_hub_service(
            cfg, PROFILES, tmp_path / "hub", broker.url, password=broker.hub[1]
        ) as hub:
            agent = await asyncio.create_subprocess_exec(
                str(venv / "bin/coldchain"), "agent", "run", str(etc / "site.yaml"),
                "--gateway", "gw1", "--profiles", str(etc / "profiles"),
                "--password-file", str(etc / "broker-password"),
                "--key-file", str(etc / "message-key"),
                "--data-dir", str(root / "var/lib/coldchain"),
                stderr=asyncio.subprocess.DEVNULL,
            )  # fmt: skip
            try:
                await until_stored(hub, "the installed agent sent nothing")
            finally:
                agent.terminate()
                await agent.wait()

    outbox = root / "var/lib/coldchain" / "gw1.outbox.db"
    assert outbox.exists()
    before = outbox.stat().st_ino
    again = await asyncio.to_thread(install, root, str(bundle))  # from the checkout: an upgrade
    assert again.returncode == 0, again.stderr
    assert outbox.stat().st_ino == before  # the outbox untouched
    assert (root / "etc/passwd").read_text().count("\ncoldchain:") == 1

    gone = await asyncio.to_thread(install, root, "--uninstall")
    assert gone.returncode == 0, gone.stderr
    assert "kept: /var/lib/coldchain" in gone.stdout
    assert not (root / "opt/coldchain").exists()
    assert not etc.exists()
    assert not (root / "etc/systemd/system/coldchain-agent.service").exists()
    assert outbox.exists()


def test_the_install_script_says_what_is_missing(tmp_path: Path) -> None:
    root = new_root(tmp_path)
    done = install(root)
    assert (done.returncode, done.stderr.strip()) == (
        1,
        "install.sh: give the gateway's bundle (coldchain gateway ... provision ID --out FILE)",
    )
    assert "no such file" in install(root, str(tmp_path / "nothing.tar.gz")).stderr
    (tmp_path / "junk.tar.gz").write_bytes(b"not a tarball")
    assert install(root, str(tmp_path / "junk.tar.gz")).returncode != 0
    assert not (root / "opt").exists()
