"""A second factor for signatures (hub/second_factor.py): a signer enrolled with an
authenticator app signs with the password and the app's current code; a wrong code, or a
code used once already, signs nothing and is audited; a site may require the second factor
of every signer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coldchain.reading import Reading
from coldchain.statedb import Schema, StateTarget, open_state
from hub import auth as auth_module
from hub.audit import AuditLog
from hub.auth import Users
from hub.second_factor import STEP_S, code_at, enrolment_uri, matching_step, new_secret
from tests.alertkit import PROFILES
from tests.hubkit import TEST_PASSWORD, TEST_USER, call, running_hub_service
from tests.services import Broker
from tests.test_broker_config import coldchain
from tests.test_signatures import TEMP, _config, audited

RFC_6238_KEY = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"  # the RFC's SHA-1 key, "12345678901234567890"


def test_codes_are_rfc_6238s_and_match_one_step_either_side() -> None:
    assert code_at(RFC_6238_KEY, 59) == "287082"  # RFC 6238 appendix B: 94287082, 6 digits
    assert code_at(RFC_6238_KEY, 1111111109) == "081804"  # 07081804
    secret, now = new_secret(), 1_796_000_000.0
    step = int(now // STEP_S)
    assert matching_step(secret, code_at(secret, now), now) == step
    assert matching_step(secret, code_at(secret, now - STEP_S), now) == step - 1  # a slow phone
    assert matching_step(secret, code_at(secret, now + STEP_S), now) == step + 1
    assert matching_step(secret, code_at(secret, now - 2 * STEP_S), now) is None
    for bad in ("", "12345", "1234567", "abcdef", "12 456"):
        assert matching_step(secret, bad, now) is None
    uri = enrolment_uri(secret, "zhao")
    assert uri.startswith("otpauth://totp/coldchain:zhao?secret=" + secret)


def test_a_code_signs_once(state: StateTarget) -> None:
    users = Users(state)
    try:
        users.add("zhao", "manager", "a long enough password")
        assert users.totp("zhao") is None
        assert not users.use_totp_step("zhao", 5)  # no second factor: nothing to spend
        users.set_totp("zhao", "S" * 32)
        assert users.totp("zhao") == "S" * 32
        assert users.use_totp_step("zhao", 5)
        assert not users.use_totp_step("zhao", 5)  # the same code again
        assert not users.use_totp_step("zhao", 4)  # an older one
        assert users.use_totp_step("zhao", 6)
        users.set_totp("zhao", None)
        assert users.totp("zhao") is None
    finally:
        users.close()


def test_users_of_a_state_before_the_second_factor_keep_their_rows(state: StateTarget) -> None:
    first = Schema("users", auth_module.SCHEMA.steps[:1])
    old = open_state(state, first)
    old.execute(
        "INSERT INTO users (name, role, salt, hash, created_ms) VALUES (?, ?, ?, ?, ?)",
        ("li", "operator", b"s" * 16, b"h", 1),
    )
    old.close()
    users = Users(state)  # migrated to step 2
    try:
        assert users.get("li") is not None
        assert users.totp("li") is None
    finally:
        users.close()


@pytest.mark.usefixtures("hub_engine")
async def test_a_signer_with_a_second_factor_signs_with_its_code(
    tmp_path: Path, mosquitto: Broker
) -> None:
    async with running_hub_service(_config(), PROFILES, tmp_path / "hub", mosquitto.url) as hub:
        u, now = hub.url, hub.alerts.clock()
        await hub.store.write([Reading(TEMP, now, 9.5)])
        hub.alerts.on_readings([Reading(TEMP, now, 9.5)])
        [alert] = [a for a in hub.alerts.open.values() if a.rule == "temperature-high"]
        obj = f"alert/{alert.id}"
        secret = new_secret()
        hub.auth.users.set_totp(TEST_USER, secret)
        sign = {"object": obj, "meaning": "acknowledged", "password": TEST_PASSWORD}

        status, body = await call("POST", f"{u}/api/signatures", sign)
        assert (status, body["detail"]) == (
            403,
            "sign with the code from your authenticator app too: nothing was signed",
        )
        wrong = code_at(secret, time.time() + 10 * STEP_S)
        status, body = await call("POST", f"{u}/api/signatures", sign | {"code": wrong})
        assert (status, body["detail"]) == (
            403,
            "the code is not right (wrong code): nothing was signed",
        )
        [refused] = audited(hub, "signature.refused", obj)
        assert refused.comment == "wrong code"
        assert hub.alerts.get(alert.id).acked_ms is None  # nothing signed, nothing acknowledged

        code = code_at(secret, time.time())
        status, signed = await call("POST", f"{u}/api/signatures", sign | {"code": code})
        assert status == 201, signed
        [record] = audited(hub, "signature", obj)
        assert record.after["method"] == "password+totp"
        assert hub.alerts.get(alert.id).acked_by == TEST_USER

        review = {"object": obj, "meaning": "reviewed", "password": TEST_PASSWORD, "code": code}
        status, body = await call("POST", f"{u}/api/signatures", review)
        assert (status, body["detail"]) == (
            403,
            "the code is not right (code used already): nothing was signed",
        )

        hub.auth.users.set_totp(TEST_USER, None)
        hub.records.signatures.require_second_factor = True  # hub.require_second_factor
        review.pop("code")
        status, body = await call("POST", f"{u}/api/signatures", review)
        assert status == 403
        assert "has no second factor, and this site signs with one" in body["detail"]
        assert len(audited(hub, "signature", obj)) == 1


def test_coldchain_users_totp_enrols_and_removes(tmp_path: Path) -> None:
    added = coldchain("users", str(tmp_path), "add", "zhao", "--role", "manager", "--generate")
    assert added.returncode == 0, added.stderr
    enrolled = coldchain("users", str(tmp_path), "totp", "zhao")
    assert enrolled.returncode == 0, enrolled.stderr
    assert "otpauth://totp/coldchain:zhao?secret=" in enrolled.stdout
    users = Users(tmp_path / "hub.db")
    try:
        secret = users.totp("zhao")
        assert secret is not None
        assert secret in enrolled.stdout
        off = coldchain("users", str(tmp_path), "totp", "zhao", "--off")
        assert off.returncode == 0, off.stderr
        assert users.totp("zhao") is None
    finally:
        users.close()
    nobody = coldchain("users", str(tmp_path), "totp", "nobody")
    assert (nobody.returncode, nobody.stderr.strip()) == (1, "error: no user 'nobody'")
    log = AuditLog(tmp_path / "hub.db")  # each change by the machine's user who made it
    try:
        records, _ = log.page(100, 0)
    finally:
        log.close()
    done = [(r.action, r.object, r.after) for r in reversed(records)]
    assert done == [
        ("user.add", "user/zhao", {"via": "coldchain users", "role": "manager"}),
        ("user.totp", "user/zhao", {"via": "coldchain users", "second_factor": True}),
        ("user.totp", "user/zhao", {"via": "coldchain users", "second_factor": False}),
    ]
    assert all(r.actor.startswith("cli:") for r in records)
