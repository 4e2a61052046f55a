"""Command line client of the simulator's control API (``coldchain simulate`` prints its URL).

    python -m simulator.ctl --url URL state
    python -m simulator.ctl --url URL faults
    python -m simulator.ctl --url URL inject KIND TARGET [--code N] [--point NAME]
    python -m simulator.ctl --url URL clear [KIND [TARGET]]
    python -m simulator.ctl --url URL journal [SERIES] [--since-wall-ms N]
    python -m simulator.ctl --url URL power-cycle GATEWAY/DEVICE

KIND is one of silent, exception, garbage, bad_crc, probe_open (a device ``gateway/device``),
door_stuck_open, compressor_failure, power_cut, jam (a room ``site/room``), link_down (a
gateway). ``--url`` defaults to ``$COLDCHAIN_SIM_URL``. Prints the JSON answer; exits 1 with
the API's error message on a refusal.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Any


def request(url: str, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """Call the control API; raise RuntimeError with its error message."""
    if not url.startswith(("http://", "https://")):
        raise RuntimeError(f"control URL {url!r} must start with http://")
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(  # noqa: S310 - the scheme is checked above
        url.rstrip("/") + path,
        data=data,
        method=method,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=15) as resp:  # noqa: S310 - checked above
            return json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        try:
            message = json.loads(exc.read()).get("error", exc.reason)
        except (ValueError, AttributeError):
            message = exc.reason
        raise RuntimeError(f"{method} {path}: {exc.code} {message}") from None
    except urllib.error.URLError as exc:
        raise RuntimeError(f"cannot reach the simulator at {url}: {exc.reason}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m simulator.ctl", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("COLDCHAIN_SIM_URL"),
        help="control API URL (default: $COLDCHAIN_SIM_URL)",
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("state", help="rooms, devices, faults, endpoints")
    sub.add_parser("faults", help="active faults")
    inj = sub.add_parser("inject", help="inject a fault")
    inj.add_argument("kind")
    inj.add_argument("target")
    inj.add_argument("--code", type=int, help="exception code (exception fault)")
    inj.add_argument("--point", help="one point (probe_open fault)")
    clr = sub.add_parser("clear", help="clear faults (all, of a kind, of a kind on a target)")
    clr.add_argument("kind", nargs="?")
    clr.add_argument("target", nargs="?")
    jr = sub.add_parser("journal", help="journal series, or the served values of one")
    jr.add_argument("series", nargs="?")
    jr.add_argument("--since-wall-ms", type=int)
    pc = sub.add_parser(
        "power-cycle",
        help="switch a device off and on (a unit id or baud written to it takes effect)",
    )
    pc.add_argument("target", metavar="GATEWAY/DEVICE")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if not args.url:
        sys.stderr.write("give --url or set COLDCHAIN_SIM_URL (coldchain simulate prints it)\n")
        return 2
    try:
        if args.action in ("state", "faults"):
            out = request(args.url, "GET", f"/{args.action}")
        elif args.action == "inject":
            body: dict[str, Any] = {"kind": args.kind, "target": args.target}
            if args.code is not None:
                body["code"] = args.code
            if args.point is not None:
                body["point"] = args.point
            out = request(args.url, "POST", "/faults", body)
        elif args.action == "clear":
            query = {k: v for k, v in (("kind", args.kind), ("target", args.target)) if v}
            suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
            out = request(args.url, "DELETE", f"/faults{suffix}")
        elif args.action == "power-cycle":
            out = request(args.url, "POST", "/power-cycle", {"target": args.target})
        else:
            path = "/journal" + (f"/{args.series}" if args.series else "")
            if args.since_wall_ms is not None:
                path += f"?since_wall_ms={args.since_wall_ms}"
            out = request(args.url, "GET", path)
    except RuntimeError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(json.dumps(out, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
