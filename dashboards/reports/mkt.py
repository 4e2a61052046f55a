"""Mean kinetic temperature (DOMAIN.md):

    T_mk = (ΔH/R) / -ln( Σ tᵢ·exp(-ΔH/(R·Tᵢ)) / Σ tᵢ )

temperatures in kelvin, tᵢ the duration each reading stands for, ΔH/R = 10 000 K
(ΔH = 83.14472 kJ/mol, R = 0.008314472 kJ/(mol·K)). Pure.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

DH_R_K = 10_000.0
"""ΔH/R in kelvin."""
ZERO_C_K = 273.15


def mkt_celsius(samples: Iterable[tuple[float, float]]) -> float:
    """MKT in °C of (weight, temperature °C) pairs; weights in any unit, all >= 0.

    Computed as a log-sum-exp around the hottest reading, so a long frozen series neither
    underflows nor loses digits (exp(-10000/233 K) is 2e-19: representable, but the shift
    costs nothing)."""
    pairs = [(w, DH_R_K / (t + ZERO_C_K)) for w, t in samples if w > 0]
    if not pairs:
        raise ValueError("MKT of no readings (every weight is zero)")
    if any(x <= 0 for _, x in pairs):
        raise ValueError("MKT needs temperatures above absolute zero")
    lo = min(x for _, x in pairs)  # ΔH/(R·T) of the hottest reading
    total = sum(w for w, _ in pairs)
    mean = sum(w * math.exp(lo - x) for w, x in pairs) / total  # in (0, 1]
    return DH_R_K / (lo - math.log(mean)) - ZERO_C_K
