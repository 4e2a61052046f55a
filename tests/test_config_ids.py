"""Ids in the site config are bounded by the wire protocol's id length, so a config the
checker accepts never makes batches the hub refuses (a 65-character device id passed
``config check`` and then every batch of its gateway was rejected as ``schema``)."""

from __future__ import annotations

from pathlib import Path

import yaml

from coldchain.config.loader import check_site_file
from coldchain.protocol.limits import MAX_ID_CHARS
from firmware_configs import SITES_DIR


def _with_device_id(tmp_path: Path, device_id: str) -> Path:
    doc = yaml.safe_load((SITES_DIR / "county.yaml").read_text(encoding="utf-8"))
    doc["gateways"][0]["devices"][0]["id"] = device_id
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_a_device_id_longer_than_the_protocol_allows_was_accepted(tmp_path: Path) -> None:
    result = check_site_file(_with_device_id(tmp_path, "d" * (MAX_ID_CHARS + 1)))
    text = "\n".join(str(e) for e in result.errors)
    assert len(result.errors) == 1, text
    assert f"at most {MAX_ID_CHARS} characters" in text


def test_a_device_id_of_the_longest_length_is_fine(tmp_path: Path) -> None:
    result = check_site_file(_with_device_id(tmp_path, "d" * MAX_ID_CHARS))
    assert result.errors == [], "\n".join(str(e) for e in result.errors)
