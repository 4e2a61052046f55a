"""``deploy/centre/install.sh`` into a temporary root: the hub's system user, its venv from
``requirements/hub.lock``, the site config readable by the hub only, its data dir (taking
over the passwords ``coldchain broker config`` left there), hardened units for the hub and
the generated broker that ``systemd-analyze verify`` accepts, Grafana's files; the
installed hub, run from that venv with those files, connects to a secured broker; the
uninstall keeps the data and says so."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from gateway.ca import init_ca
from tests.services import SecuredBroker
from tests.test_deploy_pi import new_root, owner, verify_unit
from tests.test_gateway_provisioning import plain_site

REPO = Path(__file__).resolve().parent.parent
INSTALL = REPO / "deploy" / "centre" / "install.sh"


def install(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALL), *args, "--root", str(root)],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_the_centre_install_makes_a_hub_service_that_runs(
    tmp_path: Path, secured_mosquitto: SecuredBroker
) -> None:
    if os.geteuid() != 0:
        pytest.fail("the install test runs as root (it makes users and owns files)")
    broker = secured_mosquitto
    plain_site(tmp_path)  # writes plain.yaml: one gateway, one probe
    doc = yaml.safe_load((tmp_path / "plain.yaml").read_text())
    doc["uplink"] = {"broker": broker.url}
    doc["hub"] = {"listen": "127.0.0.1:0"}
    site = tmp_path / "site.yaml"
    site.write_text(yaml.safe_dump(doc))

    root = new_root(tmp_path)
    (root / "usr/sbin").mkdir(parents=True)
    shutil.copy2("/usr/sbin/mosquitto", root / "usr/sbin/mosquitto")  # for verify
    (root / "bin").mkdir()
    for tool in ("kill", "systemctl"):  # the broker's reload, and the CRL's
        shutil.copy2(f"/bin/{tool}", root / "bin" / tool)
    data = root / "var/lib/coldchain-hub"
    data.mkdir(parents=True)  # as coldchain broker config leaves it: root's 0600 password
    (data / "broker-hub-password").write_text(broker.hub[1] + "\n")
    os.chmod(data / "broker-hub-password", 0o600)
    # mutual TLS, as coldchain broker config --client-ca records it (paths on the centre)
    init_ca(root / "etc/coldchain/client-ca")
    (data / "broker-client-ca").write_text("/etc/coldchain/client-ca\n")

    done = install(root, str(site), "--grafana", "/etc/coldchain/grafana")
    assert done.returncode == 0, done.stderr
    passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").open()}
    uid, gid = int(passwd["coldchain-hub"][2]), int(passwd["coldchain-hub"][3])
    assert passwd["coldchain-hub"][6].strip() == "/usr/sbin/nologin"
    assert owner(root / "etc/coldchain/site.yaml") == (0, gid, 0o640)
    assert owner(data) == (uid, gid, 0o750)
    assert owner(data / "broker-hub-password")[:2] == (uid, gid)  # the hub can read it now
    assert (root / "etc/coldchain/grafana/dashboards/prometheus/overview.json").is_file()
    hub_unit = (root / "etc/systemd/system/coldchain-hub.service").read_text().splitlines()
    for line in (
        "ExecStart=/opt/coldchain/venv/bin/coldchain hub /etc/coldchain/site.yaml "
        "--data-dir /var/lib/coldchain-hub",
        "User=coldchain-hub",
        "Restart=always",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/coldchain-hub /etc/coldchain/client-ca",
        "CapabilityBoundingSet=",
    ):
        assert line in hub_unit, line
    broker_unit = (root / "etc/systemd/system/coldchain-broker.service").read_text()
    assert "ExecStart=/usr/sbin/mosquitto -c /etc/coldchain/broker/mosquitto.conf" in broker_unit
    assert "ExecReload=/bin/kill -HUP $MAINPID" in broker_unit
    # a revoke (a new CRL) reloads the broker; the hub (its user) issues and revokes
    crl_path = (root / "etc/systemd/system/coldchain-broker-crl.path").read_text()
    assert "PathChanged=/etc/coldchain/client-ca/crl.pem" in crl_path
    assert owner(root / "etc/coldchain/client-ca")[0] == uid
    key_uid, _, key_mode = owner(root / "etc/coldchain/client-ca/ca.key")
    assert (key_uid, key_mode) == (uid, 0o600)
    for unit in ("coldchain-hub.service", "coldchain-broker.service", "coldchain-broker-crl.path"):
        wants = root / "etc/systemd/system/multi-user.target.wants" / unit
        assert os.readlink(wants) == f"/etc/systemd/system/{unit}"
        verify_unit(root, unit)
    verify_unit(root, "coldchain-broker-reload.service")  # started by the path unit

    # the installed hub, from its venv, with the installed config and data, on the broker:
    # it finds its password in its data dir and passes the open-broker check
    hub = subprocess.Popen(
        [
            str(root / "opt/coldchain/venv/bin/coldchain"), "hub",
            str(root / "etc/coldchain/site.yaml"), "--data-dir", str(data),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )  # fmt: skip
    try:
        assert hub.stdout is not None
        assert "coldchain hub: API" in hub.stdout.readline()
    finally:
        hub.terminate()
        hub.wait(timeout=30)
    assert (data / "hub.db").exists()

    # again, as a web worker (coldchain hub --role): the same unit, running that part only
    again = install(root, str(site), "--role", "web", "--role", "ingest")
    assert again.returncode == 0, again.stderr
    hub_unit = (root / "etc/systemd/system/coldchain-hub.service").read_text().splitlines()
    assert (
        "ExecStart=/opt/coldchain/venv/bin/coldchain hub /etc/coldchain/site.yaml "
        "--data-dir /var/lib/coldchain-hub --role web --role ingest"
    ) in hub_unit
    verify_unit(root, "coldchain-hub.service")
    wrong = install(root, str(site), "--role", "everything")
    assert (wrong.returncode, wrong.stderr.strip()) == (
        1,
        "install.sh: --role: ingest, alerts or web",
    )

    gone = install(root, "--uninstall")
    assert gone.returncode == 0, gone.stderr
    assert "kept: /var/lib/coldchain-hub" in gone.stdout
    assert not (root / "opt/coldchain").exists()
    assert not (root / "etc/systemd/system/coldchain-hub.service").exists()
    assert (data / "hub.db").exists()
    assert (root / "etc/coldchain/site.yaml").exists()


@pytest.mark.slow
def test_the_standby_install_makes_the_broker_and_vmagent_and_no_hub(tmp_path: Path) -> None:
    """``--standby``: the second machine of ``docs/availability.md``: the broker from the
    first machine's configuration (refused without it), and vmagent writing to both
    VictoriaMetrics; no hub, no venv. Both units pass ``systemd-analyze verify``."""
    if os.geteuid() != 0:
        pytest.fail("the install test runs as root (it makes users and owns files)")
    root = new_root(tmp_path)
    vms = ("--vmagent", "http://centre-a:8428", "--vmagent", "http://centre-b:8428/")
    refused = install(root, "--standby", *vms, "--no-start")
    assert refused.returncode != 0
    assert "copy the first machine's /etc/coldchain/broker here first" in refused.stderr
    broker = root / "etc/coldchain/broker"
    broker.mkdir(parents=True)
    (broker / "mosquitto.conf").write_text("listener 8883\n")
    for binary in ("/usr/sbin/mosquitto", "/usr/bin/vmagent"):  # for verify
        (root / binary.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(binary, root / binary.lstrip("/"))
    (root / "bin").mkdir()
    shutil.copy2("/bin/kill", root / "bin" / "kill")
    done = install(root, "--standby", *vms, "--no-start")
    assert done.returncode == 0, done.stderr
    assert "standby: services coldchain-broker.service coldchain-vmagent.service" in done.stdout
    units = root / "etc/systemd/system"
    assert not (units / "coldchain-hub.service").exists()
    assert not (root / "opt/coldchain").exists()
    vmagent = (units / "coldchain-vmagent.service").read_text()
    assert (
        "-remoteWrite.url=http://centre-a:8428/api/v1/write "
        "-remoteWrite.url=http://centre-b:8428/api/v1/write" in vmagent
    )
    assert "-remoteWrite.tmpDataPath=/var/lib/coldchain-vmagent" in vmagent
    assert "DynamicUser=yes" in vmagent
    for unit in ("coldchain-broker.service", "coldchain-vmagent.service"):
        assert (units / "multi-user.target.wants" / unit).is_symlink(), unit
        verify_unit(root, unit)
    bad = install(root, "--standby", "--vmagent", "centre-a:8428", "--no-start")
    assert bad.returncode != 0
    assert "--vmagent centre-a:8428: give a VictoriaMetrics base URL" in bad.stderr
    gone = install(root, "--uninstall")
    assert gone.returncode == 0, gone.stderr
    assert not (units / "coldchain-vmagent.service").exists()
