"""Mean kinetic temperature (DOMAIN.md):

    T_mk = (ΔH/R) / -ln( Σ tᵢ·exp(-ΔH/(R·Tᵢ)) / Σ tᵢ )

temperatures in kelvin, tᵢ the duration each reading stands for, ΔH/R = 10 000 K
(ΔH = 83.14472 kJ/mol, R = 0.008314472 kJ/(mol·K)). Pure.

What stays true: :func:`mkt_celsius` is total. Whatever it is given it returns a finite
number between the lowest and the highest temperature it used, or None when there is
nothing to use; it never raises. A temperature at or below absolute zero (-273.15 °C) is not
a temperature — it is what a broken probe or a decoding fault sends — and has no place in
the formula (1/T has no meaning there): it is left out, as are non-finite values and
weights that are not positive and finite. Callers that show an MKT say what they left out
(:func:`dashboards.reports.series.is_usable`, docs/reports.md).
"""

from __future__ import annotations

import math
from collections.abc import Iterable

DH_R_K = 10_000.0
"""ΔH/R in kelvin."""
ZERO_C_K = 273.15
ABSOLUTE_ZERO_C = -ZERO_C_K


def is_temperature(value: float) -> bool:
    """Whether ``value`` (°C) can be a temperature: finite and above absolute zero."""
    return math.isfinite(value) and value + ZERO_C_K > 0


def _logsumexp(xs: list[float]) -> float:
    """ln Σ exp(xᵢ) of finite xᵢ, without overflow or underflow (the sum is >= 1 after the
    shift, so its log is finite)."""
    top = max(xs)
    return top + math.log(math.fsum(math.exp(x - top) for x in xs))


def mkt_celsius(samples: Iterable[tuple[float, float]]) -> float | None:
    """MKT in °C of (weight, temperature °C) pairs; weights in any unit. None: no pair with a
    positive finite weight and a temperature above absolute zero (see the module's note).

    Computed in logs around the hottest reading (x_h = min xᵢ, xᵢ = ΔH/(R·Tᵢ)):
    -ln(mean) = x_h - ln(Σ wᵢ·e^(-(xᵢ - x_h)) / Σ wᵢ), the sums as log-sum-exps, so neither
    a tiny T (xᵢ ~ 1e17: e^(-xᵢ) underflows to 0) nor a tiny or huge weight can overflow or
    reach log(0). Where that ratio is near 1 (close or huge temperatures: for T ~ 1e308
    xᵢ ~ 1e-304, and 1 - xᵢ rounds to 1) it is taken as log1p(Σ wᵢ·expm1(...) / Σ wᵢ),
    which keeps its digits. The result is clamped to [min, max] of the temperatures used,
    where the true MKT always lies, so rounding at the extremes cannot leave that range and
    nothing divides by zero."""
    used = [(w, t) for w, t in samples if math.isfinite(w) and w > 0 and is_temperature(t)]
    if not used:
        return None
    # ΔH/(R·T): positive and finite (above absolute zero, t + 273.15 >= 2.8e-14: x < 4e17)
    xs = [DH_R_K / (t + ZERO_C_K) for _, t in used]
    hot = min(xs)
    log_ws = [math.log(w) for w, _ in used]
    log_total = _logsumexp(log_ws)
    # ln of Σ wᵢ·e^(-(xᵢ - hot)) / Σ wᵢ, in (-inf, 0]
    ln_ratio = _logsumexp([lw - (x - hot) for lw, x in zip(log_ws, xs, strict=True)]) - log_total
    if ln_ratio > -0.5:  # near 1 (temperatures close together, or huge): keep its digits
        ln_ratio = math.log1p(
            math.fsum(
                math.exp(lw - log_total) * math.expm1(-(x - hot))
                for lw, x in zip(log_ws, xs, strict=True)
            )
        )
    x_mk = min(max(hot - ln_ratio, hot), max(xs))  # lies between the hottest and the coldest
    t_lo, t_hi = min(t for _, t in used), max(t for _, t in used)
    return min(max(DH_R_K / x_mk - ZERO_C_K, t_lo), t_hi)
