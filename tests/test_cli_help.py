"""Every command's ``--help`` works and reads well, run as a user runs it (a subprocess).

The list of commands is written out here and checked against the ones the ``coldchain``
dispatcher knows, so a new command cannot go without a help test.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import pytest

from coldchain.cli import build_parser

COMMANDS = [
    "",
    "config",
    "config check",
    "config push",
    "config schema",
    "profiles",
    "agent",
    "agent run",
    "agent plan",
    "modbus",
    "modbus scan",
    "modbus read",
    "modbus set",
    "hub",
    "alerts",
    "alerts test-sms",
    "dashboards",
    "dashboards build",
    "gateway",
    "gateway list",
    "gateway provision",
    "gateway rotate",
    "gateway retire",
    "gateway revoke",
    "gateway scan",
    "gateway read",
    "broker",
    "broker config",
    "ca",
    "ca init",
    "ca issue",
    "ca client",
    "records",
    "records verify",
    "backup",
    "restore",
    "users",
    "users add",
    "users list",
    "users remove",
    "users password",
    "users logout",
    "users totp",
    "demo",
    "simulate",
]

# what a command's help must say beyond a description (each a defect once)
MUST_SAY = {
    "agent": ["coldchain agent [run] CONFIG --gateway ID", "coldchain agent plan CONFIG"],
    "modbus": ["coldchain modbus scan --port /dev/ttyUSB0", "docs/commissioning.md"],
    "modbus set": ["after a power cycle", "--force"],
    "hub": ["web UI", "alerts", "SMS", "/docs", "/metrics", "admin-password", "hub.db"],
}


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    # argparse keeps subcommands only in its private actions; reading them is the one way
    found: dict[str, argparse.ArgumentParser] = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.update(action.choices)
    return found


def walk(
    parser: argparse.ArgumentParser, path: tuple[str, ...] = (), argv: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], tuple[str, ...], argparse.ArgumentParser]]:
    """Every (command path, the argv that reaches its help, its parser) under ``parser``; a
    positional before the subcommand (``users DATA_DIR add``) gets a stand-in value."""
    yield path, argv, parser
    before = tuple(
        a.metavar if isinstance(a.metavar, str) else a.dest
        for a in parser._actions
        if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
    )
    for name, child in subparsers(parser).items():
        yield from walk(child, (*path, name), (*argv, *before, name))


def known() -> dict[str, tuple[tuple[str, ...], argparse.ArgumentParser]]:
    return {" ".join(path): (argv, p) for path, argv, p in walk(build_parser())}


def test_every_command_the_dispatcher_knows_has_a_help_test() -> None:
    assert sorted(known()) == sorted(COMMANDS), (
        "COMMANDS must list every command and subcommand of `coldchain` (add the new one here)"
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"coldchain {c}".strip())
def test_every_command_explains_itself_with_help(command: str) -> None:
    found = known().get(command)
    assert found is not None, f"the dispatcher does not know `coldchain {command}`"
    argv, parser = found
    result = subprocess.run(
        [sys.executable, "-m", "coldchain.cli", *argv, "--help"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, "COLUMNS": "100"},
    )
    out = result.stdout
    assert "Traceback" not in out + result.stderr, result.stderr
    assert result.returncode == 0, f"coldchain {command} --help: {result.stderr}"
    assert result.stderr == ""
    assert out.startswith(f"usage: {parser.prog}"), out
    assert "``" not in out, f"coldchain {command} --help shows reST markup (``...``)"
    flat = " ".join(out.split())
    assert parser.description, f"coldchain {command} has no description"
    assert " ".join(parser.description.split()) in flat
    # every option and argument says what it is for; every subcommand is listed with a line
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action._choices_actions:
                assert sub.help, f"coldchain {command} {sub.dest}: no line in the list"
                assert re.search(rf"^ +{sub.dest}\b", out, re.M), f"{sub.dest} not listed"
        else:
            what = action.option_strings or action.dest
            assert action.help, f"coldchain {command}: {what} says nothing"
    for phrase in MUST_SAY.get(command, []):
        assert phrase in flat, f"coldchain {command} --help does not say {phrase!r}"
