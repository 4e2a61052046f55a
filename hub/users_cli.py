"""``coldchain users``: the hub's users, their roles and passwords, their sessions.

Light at import (argparse and :mod:`coldchain.access` only): the command's parser is built
with every ``coldchain`` command; the users database (:mod:`hub.auth`) is opened only when
it runs.

    coldchain users DATA_DIR add NAME --role ROLE [--password-file F | --generate]
    coldchain users DATA_DIR list | remove NAME | password NAME | logout NAME
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from coldchain.access import ROLES
from coldchain.statedb import STATE_HELP, StateError, StateTarget, cli_target, describe

if TYPE_CHECKING:
    from hub.auth import Users

DESCRIPTION = """\
Manage the hub's users: who may log in to the web UI and the API, and with which role.
Roles, each with what the one before may do: operator (live board, rooms, acknowledge
alerts), technician (+ gateways, room maintenance), manager (+ reports, rule edits, audit
trail), admin (+ users). Works on DATA_DIR/hub.db whether the hub runs or not; a removed
user, a changed password and `logout` end the user's sessions at once. Every change is in
the audit trail (user.add, user.remove, ...), by cli:<the machine's user who ran it>."""

EPILOG = """\
examples:
  coldchain users /var/lib/coldchain add wang-li --role operator --generate
  coldchain users /var/lib/coldchain add zhao --role manager --password-file pw.txt
  coldchain users /var/lib/coldchain list
  coldchain users /var/lib/coldchain password wang-li
  coldchain users /var/lib/coldchain logout wang-li
  coldchain users /var/lib/coldchain totp zhao        (a second factor for signing)
  coldchain users /var/lib/coldchain remove wang-li"""

FROM_FILE_HELP = (
    "read the password from the first line of FILE (at least 8 characters); without this "
    "or --generate it is asked on the terminal"
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = DESCRIPTION
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument(
        "data_dir", type=Path, metavar="DATA_DIR", help="the hub's data dir (holds hub.db)"
    )
    parser.add_argument("--state", metavar="URL", help=STATE_HELP)
    sub = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    add = sub.add_parser(
        "add",
        help="add a user with a role and a password",
        description="Add a user. Prints the user and role, and where the password is when "
        "it was generated.",
    )
    add.add_argument("name", metavar="NAME", help="letters, digits, '-', '_' or '.'")
    add.add_argument(
        "--role", choices=[r.value for r in ROLES], required=True, help="what the user may do"
    )
    _password_arguments(add, generate=True)
    listing = sub.add_parser(
        "list",
        help="list the users: name, role, live sessions",
        description="One user a line: name, role and live sessions, separated by tabs.",
    )
    del listing
    rm = sub.add_parser(
        "remove",
        help="remove a user (ends their sessions)",
        description="Remove a user; their sessions end at once.",
    )
    rm.add_argument("name", metavar="NAME", help="the user to remove")
    pw = sub.add_parser(
        "password",
        help="set a user's password (ends their sessions)",
        description="Set a user's password; every session of the user ends at once.",
    )
    pw.add_argument("name", metavar="NAME", help="whose password to set")
    _password_arguments(pw, generate=True)
    out = sub.add_parser(
        "logout",
        help="log a user out everywhere",
        description="End every session of a user (as the web UI's 'log out everywhere').",
    )
    out.add_argument("name", metavar="NAME", help="whose sessions to end")
    totp = sub.add_parser(
        "totp",
        help="give a user a second factor for signing (an authenticator app's codes)",
        description="Enrol a user with a new TOTP secret (RFC 6238; any authenticator app): "
        "prints the otpauth:// URI to add to the app (as text, or as a QR code of it), once. "
        "From then on the user signs with the password and the app's current code. Again: "
        "a new secret (the old app entry stops working). --off: no second factor.",
    )
    totp.add_argument("name", metavar="NAME", help="whose second factor")
    totp.add_argument("--off", action="store_true", help="remove the user's second factor")
    parser.set_defaults(handler=run)


def _password_arguments(parser: argparse.ArgumentParser, *, generate: bool) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--password-file", type=Path, metavar="FILE", help=FROM_FILE_HELP)
    if generate:
        group.add_argument(
            "--generate",
            action="store_true",
            help="make a random password and write it to DATA_DIR/NAME-password (0600; never "
            "over an existing file)",
        )


def _password(args: argparse.Namespace) -> tuple[str, Path | None]:
    """The password, and the file it was written to when generated."""
    if args.password_file is not None:
        lines = args.password_file.read_text(encoding="utf-8").splitlines()
        return (lines[0].strip() if lines else ""), None
    if args.generate:
        from hub.auth import AuthError, check_user_name

        check_user_name(args.name)  # it becomes part of a path
        password = secrets.token_urlsafe(12)
        path: Path = args.data_dir / f"{args.name}-password"
        try:  # never over another file: it may hold a password not yet handed over
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            raise AuthError(
                f"{path} exists already: hand its password over or delete it, then run again"
            ) from None
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(password + "\n")
        return password, path
    import getpass

    return getpass.getpass(f"password for {args.name}: "), None


def run(args: argparse.Namespace) -> int:
    from hub.auth import AuthError, Users

    if args.state is None and not args.data_dir.is_dir():
        where = f"{args.data_dir} is not a directory: give the hub's data dir"
        print(f"error: {where}", file=sys.stderr)  # noqa: T201 - a CLI
        return 1
    try:
        db = cli_target(args.data_dir, args.state)
        users = Users(db)
    except (ValueError, StateError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 - a CLI
        return 1
    try:
        print(_do(args, users, describe(db)))  # noqa: T201 - a CLI
        _audit(args, db)
    except (AuthError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201 - a CLI
        return 1
    finally:
        users.close()
    return 0


def _audit(args: argparse.Namespace, db: StateTarget) -> None:
    """A change made here goes to the audit trail as the web's users page's do, by the
    machine's user who ran it (``cli:NAME``)."""
    import getpass

    from hub.audit import AuditLog

    cmd: str = args.users_command
    if cmd == "list":
        return
    after: dict[str, object] = {"via": "coldchain users"}
    if cmd == "add":
        after["role"] = args.role
    if cmd == "totp":
        after["second_factor"] = not args.off
    try:
        who = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container)
        who = str(os.getuid())
    log = AuditLog(db)
    try:
        log.record(actor=f"cli:{who}", action=f"user.{cmd}", obj=f"user/{args.name}", after=after)
    finally:
        log.close()


def _do(args: argparse.Namespace, users: Users, db: str) -> str:
    from hub.auth import AuthError

    cmd: str = args.users_command
    if cmd == "list":
        live = users.live_sessions()
        rows = [f"{u.name}\t{u.role}\t{live.get(u.name, 0)}" for u in users.all()]
        return "\n".join(rows) if rows else f"no users in {db}"
    if cmd == "remove":
        sessions = users.live_sessions().get(args.name, 0)
        if not users.remove(args.name):
            raise AuthError(f"no user {args.name!r} in {db}")
        return f"removed user {args.name} ({_sessions(sessions)} ended)"
    if cmd == "logout":
        if users.get(args.name) is None:
            raise AuthError(f"no user {args.name!r} in {db}")
        ended = users.revoke_sessions(args.name)
        return f"logged {args.name} out everywhere ({_sessions(ended)} ended)"
    if cmd == "totp":
        return _totp(args.name, users, db, off=args.off)
    _check_user(cmd, args.name, users, db)
    password, written = _password(args)
    try:
        if cmd == "add":
            user = users.add(args.name, args.role, password)
            done = f"added user {user.name} ({user.role}) to {db}"
        else:
            ended = users.set_password(args.name, password)
            done = f"set the password of {args.name} ({_sessions(ended)} ended)"
    except AuthError:
        if written is not None:
            written.unlink(missing_ok=True)
        raise
    if written is not None:
        done += f"; the password is in {written} (0600): hand it over, then delete the file"
    return done


def _totp(name: str, users: Users, db: str, *, off: bool) -> str:
    from hub.second_factor import enrolment_uri, new_secret

    if off:
        users.set_totp(name, None)
        return f"{name} has no second factor now ({db})"
    secret = new_secret()
    users.set_totp(name, secret)
    return (
        f"{name} signs with a second factor from now on ({db}). Add this to their "
        f"authenticator app (shown once):\n{enrolment_uri(secret, name)}\n"
        f"or type the key: {secret}"
    )


def _check_user(cmd: str, name: str, users: Users, db: str) -> None:
    """Before any password is read or file written: ``password`` needs the user, ``add``
    a valid name that is not taken (so a failed add leaves every file as it was)."""
    from hub.auth import AuthError, check_user_name

    if cmd == "password" and users.get(name) is None:
        raise AuthError(f"no user {name!r} in {db}")
    if cmd == "add":
        check_user_name(name)
        if users.get(name) is not None:
            raise AuthError(f"user {name!r} exists already")


def _sessions(n: int) -> str:
    return f"{n} session{'' if n == 1 else 's'}"


def main(argv: Sequence[str] | None = None, *, prog: str = "coldchain users") -> int:
    """``coldchain users ...`` on its own (also ``python -m hub.users_cli``)."""
    parser = argparse.ArgumentParser(prog=prog)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
