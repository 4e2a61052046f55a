"""``coldchain config push FILE``: put a new site config in place at the centre and see it
reach the gateways.

The running hub watches its config file (``hub.config_watch``) and pushes each gateway's
changed slice (:mod:`gateway.configpush`); this command is the technician's way to do that
safely and see the outcome:

1. FILE is checked as ``coldchain config check`` does; with an error, nothing happens;
2. it says which gateways get a new revision, with what changed (``--diff`` in full);
3. it records in the audit trail who installs it (``config.install``, with the diffs);
4. it puts FILE in place of the hub's config file (atomically: the hub never reads half a
   file), unless FILE is that file;
5. it waits (``--wait``, with a progress bar) until the hub has pushed the revisions and
   each gateway has answered, and says per gateway: applied, refused (why), or no answer
   yet (offline: it gets the revision when it reconnects).

Exit 0 when every gateway applied its revision, 1 when FILE does not check (or the hub's
data cannot be found), 2 when a gateway refused its revision, 3 when the wait ran out.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from coldchain.profiles.options import add_profiles_argument
from coldchain.statedb import state_exists, state_target

if TYPE_CHECKING:
    from gateway.configpush import Change, ConfigState, Revisions
    from hub.audit import AuditLog

DESCRIPTION = """\
Put a new site config in place at the centre and see it reach the gateways. The running hub
watches its config file (hub.config_watch) and pushes each gateway whose part changed a new
revision; this command:

1. checks FILE as 'coldchain config check' does; with an error, nothing happens;
2. says which gateways get a new revision and what changed (--diff: in full);
3. records in the audit trail who installs it (config.install, with the diffs);
4. puts FILE in place of the hub's config file (atomically), unless FILE is that file;
5. waits (--wait) until the hub has pushed the revisions and each gateway has answered,
   and says per gateway: applied, refused (and why), or no answer yet (a gateway offline
   gets its revision when it reconnects).

Exit 0 when every gateway applied its revision, 1 when FILE does not check (or the hub's
data cannot be found), 2 when a gateway refused its revision, 3 when the wait ran out."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", metavar="FILE", help="the new site config (YAML)")
    parser.add_argument(
        "--to",
        type=Path,
        metavar="PATH",
        help="the hub's config file (default: the one the hub last loaded, from its audit trail)",
    )
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR", help="the hub's data dir (default: hub.data_dir)"
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="how long to wait for the gateways' answers (default 120; 0: do not wait)",
    )
    parser.add_argument("--diff", action="store_true", help="print each gateway's diff in full")
    parser.add_argument(
        "--dry-run", action="store_true", help="check and say what would change; install nothing"
    )
    add_profiles_argument(parser)


def _fail(message: str) -> int:
    print(f"coldchain config push: {message}", file=sys.stderr)
    return 1


def run(args: argparse.Namespace) -> int:
    from coldchain.config.errors import InvalidConfigError
    from coldchain.config.loader import check_site_file
    from coldchain.profiles.options import load_profiles
    from gateway.configpush import Revisions, plan
    from hub.audit import AuditLog

    try:
        profiles = load_profiles(args)
    except InvalidConfigError as exc:
        return _fail(f"device profiles: {exc}")
    source = Path(args.file)
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        return _fail(f"{source}: {exc.strerror or exc}")
    result = check_site_file(source, profiles, text=text, advice=False)
    if result.config is None:
        for e in result.errors:
            print(e.format(), file=sys.stderr)
        return _fail(f"{source} does not check: nothing installed")
    cfg = result.config
    data_dir = args.data_dir or Path(cfg.hub.data_dir)
    db = state_target(cfg.hub.state, data_dir)
    if not state_exists(db):
        return _fail(f"no hub database in {data_dir} (--data-dir: where the hub keeps its data)")
    audit = AuditLog(db)
    revisions = Revisions(db)
    try:
        target = args.to or _hub_config_path(audit)
        if target is None:
            return _fail("the hub has not recorded its config file yet: name it with --to")
        changes = plan(cfg, profiles, revisions)
        _summary(changes, full=args.diff)
        if args.dry_run:
            return 0
        user = getpass.getuser()
        audit.record(
            actor=f"{user} (coldchain config push)",
            action="config.install",
            obj="site-config",
            after={
                "path": str(target),
                "from": str(source.resolve()),
                "revisions": {ch.gateway: ch.rev for ch in changes},
                "diff": {ch.gateway: ch.diff() for ch in changes},
            },
        )
        if source.resolve() != target.resolve():
            _install(text, target)
            print(f"installed as {target}")
        if not changes or args.wait <= 0:
            return 0
        return _wait(revisions, changes, args.wait)
    finally:
        revisions.close()
        audit.close()


def _summary(changes: list[Change], *, full: bool) -> None:
    if not changes:
        print("no gateway's configuration changes")
    for ch in changes:
        diff = ch.diff()
        added = sum(1 for line in diff.splitlines() if line[:1] == "+" and line[:3] != "+++")
        gone = sum(1 for line in diff.splitlines() if line[:1] == "-" and line[:3] != "---")
        print(f"{ch.gateway}: revision {ch.rev} (+{added} -{gone} lines)")
        if full:
            print(diff)


def _hub_config_path(audit: AuditLog) -> Path | None:
    last = audit.last("config.load", "site-config")
    if last is None or not isinstance(last.after, dict) or not last.after.get("path"):
        return None
    return Path(str(last.after["path"]))


def _install(text: str, target: Path) -> None:
    """``text`` in place of ``target``, atomically, keeping its mode."""
    tmp = target.with_name(f".{target.name}.push-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    if target.exists():
        os.chmod(tmp, target.stat().st_mode & 0o7777)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    tmp.replace(target)


def _wait(revisions: Revisions, changes: list[Change], wait_s: float) -> int:
    from tqdm import tqdm

    wanted = {c.gateway: c.rev for c in changes}
    deadline = time.monotonic() + wait_s
    answered: dict[str, str] = {}
    with tqdm(total=len(wanted), desc="gateways answered", unit="gw", file=sys.stderr) as bar:
        while len(answered) < len(wanted) and time.monotonic() < deadline:
            for gw in wanted.keys() - answered.keys():
                latest = revisions.latest(gw)
                if latest is None or latest[0] < wanted[gw]:
                    continue  # the hub has not pushed it yet
                wanted[gw] = latest[0]  # a later push took its place: follow that one
                answer = _answer(revisions.state(gw))
                if answer is not None:
                    answered[gw] = answer
                    bar.update(1)
            time.sleep(0.2)
    for gw, rev in wanted.items():
        print(f"{gw}: {answered.get(gw) or _silence(revisions, gw, rev)}")
    if any(a.startswith("REFUSED") for a in answered.values()):
        return 2
    return 0 if len(answered) == len(wanted) else 3


def _answer(state: ConfigState) -> str | None:
    """What a gateway answered to its latest revision, or None if it has not yet."""
    if state.state == "applied":
        later = f" ({', '.join(state.restart)} after the agent restarts)" if state.restart else ""
        return f"applied revision {state.applied}{later}"
    if state.state == "refused":
        return f"REFUSED revision {state.desired}: {state.error}"
    return None


def _silence(revisions: Revisions, gw: str, rev: int) -> str:
    pushed = revisions.latest(gw)
    if pushed is None or pushed[0] < rev:
        return f"the hub has not pushed revision {rev} (is it running?)"
    return f"no answer yet to revision {pushed[0]} (offline? it gets it on reconnecting)"
