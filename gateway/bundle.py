"""A gateway's provisioning bundle: everything its Pi needs to stream, in one file.

``coldchain gateway CONFIG provision ID --out FILE`` writes a ``.tar.gz`` (mode 0600: it
holds a password) with one directory, ``coldchain-ID/``:

* ``site.yaml``: the site config as the gateway's agent needs it: the other gateways and the
  hub's own settings left out; ``uplink`` names the gateway's broker client and where the
  installed password and CA certificate live (``/etc/coldchain/...``);
* ``profiles/``: the device profiles its devices use, one YAML file each (``--profiles``
  this directory alone is all the agent needs);
* ``broker-password``: its broker password, the only copy (the broker keeps a hash);
* ``message-key``: the key it shares with the hub (:mod:`coldchain.protocol.auth`): the hub
  signs its acks with it and checks the gateway's edge notices;
* ``ca.crt``: the CA certificate the centre's config names (``uplink.ca_file``), if any;
* ``client.crt``, ``client.key``: under mutual TLS, the gateway's own certificate (its common
  name is its broker client) and key, the key's only copy;
* ``README.txt``: how to install or run it;
* when coldchain runs from its source tree (a checkout at the centre): ``install.sh`` and
  ``common.sh`` (``deploy/pi/``), ``agent.lock`` and a wheel of coldchain built from that
  tree, so ``sudo coldchain-ID/install.sh`` on the Pi needs nothing else.

Every contact and site stays in the config: the agent's edge fallback texts the contacts of
its own site when the uplink is down, and the escalation policies name contacts by id.
"""

from __future__ import annotations

import functools
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from coldchain.config.site import SiteConfig
from coldchain.profiles.registry import ProfileRegistry
from coldchain.protocol.auth import key_text
from gateway.ca import ClientCert
from gateway.dynsec import Identity

INSTALLED = Path("/etc/coldchain")  # where the install puts the bundle's files on the Pi


def agent_config(
    cfg: SiteConfig, gateway: str, identity: Identity, *, client_cert: bool = False
) -> dict[str, Any]:
    """The site config for ``gateway``'s agent, as a YAML-ready document; ``client_cert``:
    the bundle carries its client certificate (mutual TLS)."""
    doc = cfg.model_dump(mode="json", exclude_unset=True, by_alias=True)
    mine = [g for g in doc.get("gateways", []) if g.get("id") == gateway]
    if not mine:
        raise ValueError(f"gateway {gateway!r} is not in the site config")
    doc["gateways"] = mine
    doc.pop("hub", None)
    uplink = dict(doc.get("uplink", {}))
    uplink["username"] = identity.username
    uplink["password_file"] = str(INSTALLED / "broker-password")
    uplink["key_file"] = str(INSTALLED / "message-key")
    if cfg.uplink.ca_file:
        uplink["ca_file"] = str(INSTALLED / "ca.crt")
    if client_cert:
        uplink["client_cert"] = str(INSTALLED / "client.crt")
        uplink["client_key"] = str(INSTALLED / "client.key")
    doc["uplink"] = uplink
    return doc


def profiles_used(cfg: SiteConfig, gateway: str, profiles: ProfileRegistry) -> dict[str, str]:
    """The YAML of each profile ``gateway``'s devices use, by id."""
    g = next(g for g in cfg.gateways if g.id == gateway)
    out = {}
    for pid in sorted({d.profile for d in g.devices}):
        body = profiles.get(pid).model_dump(mode="json", exclude_unset=True, by_alias=True)
        out[pid] = yaml.safe_dump(body, allow_unicode=True, sort_keys=False)
    return out


SOURCE_TREE = Path(__file__).resolve().parents[1]


def installer_files() -> list[tuple[str, bytes, int]]:
    """The Pi's installer and what it installs (see the module docstring), or none when
    coldchain does not run from its source tree."""
    root = SOURCE_TREE
    script, common = root / "deploy" / "pi" / "install.sh", root / "deploy" / "common.sh"
    lock = root / "requirements" / "agent.lock"
    if not all(p.is_file() for p in (script, common, lock, root / "pyproject.toml")):
        return []
    name, wheel = _wheel(root)
    return [
        ("install.sh", script.read_bytes(), 0o755),
        ("common.sh", common.read_bytes(), 0o644),
        ("agent.lock", lock.read_bytes(), 0o644),
        (name, wheel, 0o644),
    ]


@functools.cache
def _wheel(root: Path) -> tuple[str, bytes]:
    """A wheel of coldchain built from ``root`` (once per process)."""
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(  # noqa: S603 - our own interpreter, pip and source tree
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", tmp, str(root)],
            capture_output=True,
            text=True,
            check=False,
        )
        wheels = list(Path(tmp).glob("coldchain-*.whl"))
        if done.returncode != 0 or len(wheels) != 1:
            raise OSError(f"building coldchain's wheel for the bundle failed: {done.stderr[-500:]}")
        return wheels[0].name, wheels[0].read_bytes()


def readme(gateway: str, identity: Identity, broker: str) -> str:
    made = time.strftime("%Y-%m-%d %H:%M %Z")
    return f"""coldchain gateway {gateway}: provisioning bundle, made {made}

Broker: {broker}, client {identity.username}. The password in broker-password is the only
copy: keep this file as you would the password, and delete it once installed.

Install it on the Pi (Raspberry Pi OS / Debian 12) as a service, if install.sh is here:

  sudo ./install.sh

Or run the agent from this directory (as the install does with the files under {INSTALLED}):

  coldchain agent run site.yaml --gateway {gateway} --profiles profiles \\
      --password-file broker-password --key-file message-key
"""


def write_bundle(
    out: Path,
    cfg: SiteConfig,
    profiles: ProfileRegistry,
    gateway: str,
    identity: Identity,
    *,
    key: bytes,
    cert: ClientCert | None = None,
) -> list[str]:
    """Write the bundle (see the module docstring) to ``out``, which must not exist; the
    names of its members. ``cert``: the gateway's client certificate (mutual TLS)."""
    top = f"coldchain-{gateway}"
    files: list[tuple[str, bytes, int]] = [
        (
            "site.yaml",
            yaml.safe_dump(
                agent_config(cfg, gateway, identity, client_cert=cert is not None),
                allow_unicode=True,
                sort_keys=False,
            ).encode(),
            0o640,
        ),
        ("broker-password", (identity.password + "\n").encode(), 0o600),
        ("message-key", key_text(key).encode(), 0o600),
        ("README.txt", readme(gateway, identity, cfg.uplink.broker).encode(), 0o644),
    ]
    files += [
        (f"profiles/{pid}.yaml", text.encode(), 0o644)
        for pid, text in profiles_used(cfg, gateway, profiles).items()
    ]
    if cfg.uplink.ca_file:
        files.append(("ca.crt", Path(cfg.uplink.ca_file).read_bytes(), 0o644))
    if cert is not None:
        files += [("client.crt", cert.cert, 0o644), ("client.key", cert.key, 0o600)]
    files += installer_files()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    now = int(time.time())
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name, data, mode in files:
                info = tarfile.TarInfo(f"{top}/{name}")
                info.size, info.mode, info.mtime = len(data), mode, now
                tar.addfile(info, io.BytesIO(data))
    except BaseException:
        out.unlink(missing_ok=True)  # no half bundle with a password in it left behind
        raise
    return [f"{top}/{name}" for name, _, _ in files]
