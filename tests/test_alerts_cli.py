"""``coldchain alerts test-sms``: a real request to a provider stand-in, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from coldchain.cli import main
from tests import smsfakes
from tests.alertkit import site
from tests.smsfakes import TwilioFake

twilio_fake = smsfakes.twilio_fake


def _config(tmp_path: Path, fake: TwilioFake, secret: str | None = None) -> Path:
    settings = fake.settings(tmp_path, secret=secret).model_dump(mode="json", exclude_none=True)
    doc = site(
        notifiers=[settings],
        policies=[{"id": "cold", "levels": [{"contacts": ["c1", "c2", "c3"]}]}],
        default_policy={"alarm": "cold"},
    )
    path = tmp_path / "site.yaml"
    path.write_text(yaml.safe_dump(doc, allow_unicode=True), encoding="utf-8")
    return path


def test_test_sms_reaches_the_provider(
    tmp_path: Path,
    twilio_fake: TwilioFake,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = _config(tmp_path, twilio_fake)
    code = main(["alerts", "test-sms", str(cfg), "--to", "+8613800000009", "--language", "en"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "twilio-test: accepted (SM" in out
    [msg] = twilio_fake.records
    assert msg["to"] == "+8613800000009"
    assert "test" in msg["text"].lower()


def test_test_sms_says_what_the_provider_said(
    tmp_path: Path,
    twilio_fake: TwilioFake,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cfg = _config(tmp_path, twilio_fake, secret="not-the-token")
    code = main(["alerts", "test-sms", str(cfg), "--to", "+8613800000009"])
    out = capsys.readouterr().out
    assert code == 1
    assert "twilio-test: failed:" in out
    assert "every notifier failed" in out
    assert "not-the-token" not in out


def test_test_sms_rejects_a_bad_number(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["alerts", "test-sms", "nowhere.yaml", "--to", "13800000000"])
    assert code == 2
    assert "is not an E.164 number" in capsys.readouterr().out
