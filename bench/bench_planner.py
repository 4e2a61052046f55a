"""Requests per poll cycle for a site: one request per point vs. the planner vs. the optimum
for the same fill setting (an exhaustive search). The planner must reach the optimum.

    .venv/bin/python bench/bench_planner.py [SITE.yaml] [--fill N ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from coldchain.config.loader import load_site_config
from coldchain.profiles.schema import ModbusProfile
from edge_agent.planner import optimal_request_count
from edge_agent.poller import device_state
from tests.sites import shipped_profiles

SITE = Path(__file__).resolve().parent.parent / "firmware_configs" / "sites" / "county.yaml"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("site", nargs="?", type=Path, default=SITE)
    ap.add_argument("--fill", type=int, action="append", default=[])
    args = ap.parse_args()
    profiles = shipped_profiles()
    cfg = load_site_config(args.site, profiles)
    print(f"# planner benchmark: {args.site.name}")
    print(f"{'fill':>5} {'points':>7} {'per-point':>10} {'planner':>8} {'optimum':>8} {'saved':>6}")
    for fill in args.fill or [0, 8, 32]:
        points = per_point = planned = optimum = 0
        for gw in cfg.gateways:
            for d in gw.devices:
                profile = profiles.get(d.profile)
                if not isinstance(profile, ModbusProfile):
                    continue
                st = device_state(
                    d, profile, site=gw.site, gateway=gw.id, fill_registers=fill, fill_bits=fill * 8
                )
                points += len(st.points)
                per_point += len(st.points)
                planned += len(st.blocks)
                optimum += optimal_request_count(st.points, st.limits)
        saved = 1 - planned / per_point
        print(f"{fill:>5} {points:>7} {per_point:>10} {planned:>8} {optimum:>8} {saved:>6.0%}")
        assert planned == optimum, "the planner missed the optimum"


if __name__ == "__main__":
    main()
