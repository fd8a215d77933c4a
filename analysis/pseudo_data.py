"""Pseudo-experiments for fit studies: histogram-level expectations and a small hit-level generator.

Independent of the compiled fit models: the rate of docs/physics.md §3 is written out here with numpy and
integrated over bins by Gauss–Legendre quadrature on sub-intervals (``TOY_NODES`` nodes on
``TOY_SUBBINS`` pieces per bin). Positron energies follow the magic-γ lab Michel spectrum in
y = E/E_max (β → 1): the *differential* number density n(y) = (1 − y)(5 + 5y − 4y²)/3 and
asymmetry A(y) = (−8y² + y + 1)/(4y² − 5y − 5) of docs/physics.md §6 (docs/physics.md calls them "above y", but only the
differential reading reproduces its 22 % and A = 0.354 above 1.7 GeV and ringsim's exact
integral), times an optional detector acceptance y^k. Losses use the spectrum ℓ(t) ∝ e^{−t/τ_loss},
so Λ(t) is analytic.

Truth dictionaries use the parameter names of :mod:`analysis.models` (``N0`` is the rate of all
positrons at t = 0 in counts per μs, ``A`` is ignored where energies are binned) plus
``loss_tau_us`` and ``loss_end_us`` when ``k_loss`` is present.
"""

from __future__ import annotations

import math

import numpy as np

TOY_NODES = 8
TOY_SUBBINS = 2


def michel_density(y, acceptance_power: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Return the number density y^k n(y) = y^k (5 − 9y² + 4y³)/3 and asymmetric density y^k (−8y³ + 9y² − 1)/3."""
    y = np.asarray(y, dtype=float)
    acc = y**acceptance_power
    return acc * (5.0 - 9.0 * y**2 + 4.0 * y**3) / 3.0, acc * (-8.0 * y**3 + 9.0 * y**2 - 1.0) / 3.0


def michel_energy_bins(y_edges, acceptance_power: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Fraction of decays and asymmetry (P = 1) in bins of y = E/E_max, with acceptance y^k.

    Returns
    -------
    fraction, asymmetry : numpy.ndarray
        ∫ y^k n dy and (∫ y^k a dy)/(∫ y^k n dy) per bin (fractions relative to all decays).
    """
    y = np.asarray(y_edges, dtype=float)
    k = float(acceptance_power)
    n_int = (5.0 * y ** (k + 1) / (k + 1) - 9.0 * y ** (k + 3) / (k + 3) + 4.0 * y ** (k + 4) / (k + 4)) / 3.0
    a_int = (-8.0 * y ** (k + 4) / (k + 4) + 9.0 * y ** (k + 3) / (k + 3) - y ** (k + 1) / (k + 1)) / 3.0
    fraction = np.diff(n_int)
    return fraction, np.diff(a_int) / fraction


def loss_function(t_us, truth: dict) -> np.ndarray:
    """Λ(t) = 1 − k L(t) for ℓ ∝ e^{−t/τ_loss} from t = 0, L normalised to 1 at ``loss_end_us``."""
    t = np.asarray(t_us, dtype=float)
    k = truth.get("k_loss", 0.0)
    if k == 0.0:
        return np.ones_like(t)
    rate = 1.0 / truth["tau_us"] - 1.0 / truth["loss_tau_us"]  # exponent of ℓ(t) e^{t/γτ}

    def integral(x):
        x = np.clip(x, 0.0, truth["loss_end_us"])
        return np.expm1(rate * x) / rate

    return 1.0 - k * integral(t) / integral(np.asarray(truth["loss_end_us"]))


def toy_rate(t_us, truth: dict, omega_ref_rad_per_us: float, asymmetry: float | None = None) -> np.ndarray:
    """Rate in counts per μs of docs/physics.md §3's full fit function, written directly with numpy.

    Terms whose parameters are absent from ``truth`` are 1 (φ_cbo: 0). ``asymmetry`` replaces
    ``truth["A"]`` when given.
    """
    t = np.asarray(t_us, dtype=float)
    g = truth.get
    asym = g("A", 0.0) if asymmetry is None else asymmetry
    omega = omega_ref_rad_per_us * (1.0 + g("R_ppm", 0.0) * 1e-6)
    n_cbo = a_cbo = n_2cbo = 1.0
    phi_cbo = 0.0
    if "omega_cbo" in truth:
        env = np.exp(-t / truth["tau_cbo_us"]) + g("c_cbo", 0.0)
        theta = truth["omega_cbo"] * t
        if "cbo_dA_rad" in truth:
            # ω_cbo(t) t with ω_cbo(t) = ω0 + (A/t) e^{-t/τ_A} + (B/t) e^{-t/τ_B}
            theta = theta + truth["cbo_dA_rad"] * np.exp(-t / truth["cbo_tau_A_us"]) + truth["cbo_dB_rad"] * np.exp(-t / truth["cbo_tau_B_us"])
        n_cbo = 1.0 + g("A_cbo_N", 0.0) * env * np.cos(theta + g("phi_cbo_N", 0.0))
        a_cbo = 1.0 + g("A_cbo_A", 0.0) * env * np.cos(theta + g("phi_cbo_A", 0.0))
        phi_cbo = g("A_cbo_phi", 0.0) * env * np.cos(theta + g("phi_cbo_phi", 0.0))
        n_2cbo = 1.0 + g("A_2cbo", 0.0) * env**2 * np.cos(2.0 * theta + g("phi_2cbo", 0.0))
    n_vw = 1.0 + g("A_vw", 0.0) * np.exp(-t / g("tau_vw_us", 1.0)) * np.cos(g("omega_vw", 0.0) * t + g("phi_vw", 0.0))
    n_y = 1.0 + g("A_y", 0.0) * np.exp(-t / g("tau_y_us", 1.0)) * np.cos(g("omega_y", 0.0) * t + g("phi_y", 0.0))
    wiggle = 1.0 + asym * a_cbo * np.cos(omega * t + truth["phi"] + phi_cbo)
    return truth["N0"] * loss_function(t, truth) * n_cbo * n_2cbo * n_vw * n_y * np.exp(-t / truth["tau_us"]) * wiggle


def bin_integrals(edges_us, rate) -> np.ndarray:
    """∫ rate(t) dt over each bin by TOY_NODES-point Gauss–Legendre on TOY_SUBBINS pieces."""
    e = np.asarray(edges_us, dtype=float)
    x, w = np.polynomial.legendre.leggauss(TOY_NODES)
    piece = np.diff(e) / TOY_SUBBINS
    lo = e[:-1, None] + piece[:, None] * np.arange(TOY_SUBBINS)[None, :]
    t = lo[..., None] + 0.5 * piece[:, None, None] * (x + 1.0)
    return np.sum(rate(t) * w, axis=(1, 2)) * 0.5 * piece


def expected_time_energy(time_edges_us, y_edges, truth: dict, omega_ref_rad_per_us: float, polarization: float = 1.0, acceptance_power: float = 0.0, shift_us: float = 0.0) -> np.ndarray:
    """Return the expected counts per (time bin, energy bin): fraction_E ∫f(A=0) + P·fraction_E·A_E ∫(f(A=1) − f(A=0)).

    ``shift_us`` evaluates the time bins at ``edges + shift`` (R-method subsets).
    """
    e = np.asarray(time_edges_us, dtype=float) + shift_us
    fraction, asym = michel_energy_bins(y_edges, acceptance_power)
    flat = bin_integrals(e, lambda t: toy_rate(t, truth, omega_ref_rad_per_us, asymmetry=0.0))
    osc = bin_integrals(e, lambda t: toy_rate(t, truth, omega_ref_rad_per_us, asymmetry=1.0)) - flat
    return flat[:, None] * fraction[None, :] + polarization * osc[:, None] * (fraction * asym)[None, :]


def ratio_subsets_expected(
    time_edges_us, y_edges, truth: dict, omega_ref_rad_per_us: float, half_period_us: float, weighting_tau_us: float, threshold_y: float, polarization: float = 1.0, acceptance_power: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Return the expected V and U histograms of the R method for the positrons with y ≥ ``threshold_y``.

    Hits are split at random into four sets with probabilities ∝ 1, 1, e^{+T/2τ_w}, e^{−T/2τ_w};
    the last two are histogrammed at t − T/2 and t + T/2 (T/2 = ``half_period_us``), so
    V(t) = p_v N(t), U(t) = p_+ N(t + T/2) + p_− N(t − T/2) with p_v = p1 + p2.
    """
    y = np.asarray(y_edges, dtype=float)
    above = y[:-1] >= threshold_y - 1e-12

    def selected(shift):
        return expected_time_energy(time_edges_us, y, truth, omega_ref_rad_per_us, polarization, acceptance_power, shift)[:, above].sum(axis=1)

    s = math.exp(half_period_us / weighting_tau_us)
    total = 2.0 + s + 1.0 / s
    v = (2.0 / total) * selected(0.0)
    u = (s / total) * selected(half_period_us) + (1.0 / (s * total)) * selected(-half_period_us)
    return v, u


def sample_michel_y(rng: np.random.Generator, n: int, acceptance_power: float = 0.0, y_min: float = 0.0) -> np.ndarray:
    """Draw y = E/E_max of ``n`` positrons from y^k n(y) on [y_min, 1] (rejection sampling)."""
    out = np.empty(0)
    peak = 1.01 * float(np.max(michel_density(np.linspace(y_min, 1.0, 1001), acceptance_power)[0]))
    while out.size < n:
        y = rng.uniform(y_min, 1.0, size=2 * (n - out.size) + 100)
        keep = rng.uniform(0.0, peak, size=y.size) < michel_density(y, acceptance_power)[0]
        out = np.concatenate([out, y[keep]])
    return out[:n]


def toy_hits(
    rng: np.random.Generator,
    n_fills: int,
    positrons_per_fill: float,
    truth: dict,
    omega_ref_rad_per_us: float,
    e_max_mev: float,
    n_calos: int = 1,
    t_max_us: float = 300.0,
    polarization: float = 1.0,
    acceptance_power: float = 0.0,
    y_min: float = 0.05,
    phase_slope_rad: float = 0.0,
) -> dict[str, np.ndarray]:
    """Hit-level pseudo-data: fills of positrons with times, energies and calorimeter numbers.

    Decay times follow e^{−t/τ}; each positron is kept with probability
    [1 + P A(y) cos(ωt + φ)]/2 with the differential asymmetry A(y) (so the expected number per fill
    is ``positrons_per_fill``/2 — the parameter counts positrons before this acceptance). Only
    ``tau_us``, ``R_ppm`` and ``phi`` of ``truth`` are used; the phase may depend on energy as
    φ + ``phase_slope_rad``·(y − 1) (in data, through the positrons' drift and acceptance), which is
    what makes pileup shift ω_a.

    Returns
    -------
    dict
        ``time_ns``, ``energy_mev``, ``calo`` (int64) and ``fill`` (int64), sorted by fill,
        calorimeter and time.
    """
    n_total = rng.poisson(positrons_per_fill * n_fills)
    t = rng.exponential(truth["tau_us"], size=n_total)
    t = t[t < t_max_us]
    y = sample_michel_y(rng, t.size, acceptance_power, y_min)
    density, asymmetric = michel_density(y)
    a_y = asymmetric / density
    omega = omega_ref_rad_per_us * (1.0 + truth["R_ppm"] * 1e-6)
    phase = truth["phi"] + phase_slope_rad * (y - 1.0)
    keep = rng.uniform(0.0, 2.0, size=t.size) < 1.0 + polarization * a_y * np.cos(omega * t + phase)
    t, y = t[keep], y[keep]
    fill = rng.integers(0, n_fills, size=t.size)
    calo = rng.integers(0, n_calos, size=t.size)
    order = np.lexsort((t, calo, fill))
    return {"time_ns": t[order] * 1e3, "energy_mev": y[order] * e_max_mev, "calo": calo[order].astype(np.int64), "fill": fill[order].astype(np.int64)}


def merge_within(hits: dict[str, np.ndarray], resolving_time_ns: float) -> dict[str, np.ndarray]:
    """Merge the hits closer than ``resolving_time_ns`` in time (detector pileup).

    A hit closer than ``resolving_time_ns`` to the previous one of the same fill and calorimeter is
    merged into it (energies add, energy-weighted time); chains merge in turn.

    ``hits`` must be sorted by fill, calorimeter and time (as :func:`toy_hits` returns them). The
    result has ``group``: for each input hit, the index of the output hit it went into.
    """
    t, en, calo, fill = hits["time_ns"], hits["energy_mev"], hits["calo"], hits["fill"]
    same = np.zeros(t.size, dtype=bool)
    same[1:] = (fill[1:] == fill[:-1]) & (calo[1:] == calo[:-1]) & (np.diff(t) < resolving_time_ns)
    group = np.cumsum(~same) - 1
    energy = np.bincount(group, weights=en)
    time = np.bincount(group, weights=en * t) / energy
    first = np.flatnonzero(~same)
    return {"time_ns": time, "energy_mev": energy, "calo": calo[first], "fill": fill[first], "group": group}
