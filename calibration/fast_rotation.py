"""Fast-rotation analysis: the equilibrium-radius distribution from the early bunch structure.

The x_e distribution follows from the bunch structure of the early positron rate (the
cosine-transform method of Orlov et al., NIM A 482 (2002) 767).

Right after injection the muons still form a bunch: a detector sees the positron rate modulated at
each muon's revolution frequency ω = βc/(R₀ + x_e), and the modulation fades as muons of different
momenta spread around the ring ("debunching"). With the rate divided by its average over one turn,

    S(t) = Σ_h 2ĝ(hω)∫ρ(ω) cos hω(t − t₀) dω,

where ρ is the frequency distribution, ĝ the Fourier transform of the bunch's time profile and t₀
the time at which the bunch was compact. Its cosine transform about t₀ over [t₀, ∞) gives
(π/2)·2ĝρ(ω) near the first harmonic. Data start at t_s > t₀ (the injection flash): the missing
piece ∫_{t₀}^{t_s} S(t)cos ω(t − t₀)dt = ∫ρ(ω')M(ω, ω')dω' with
M = ½[sin(ω − ω')T/(ω − ω') + sin(ω + ω')T/(ω + ω')], T = t_s − t₀, is restored by solving
(I − (2/π)M)ρ = (2/π)C on the physical region (|x_e| below the aperture), where ρ must vanish
outside. t₀ is the value that makes the transform vanish outside the physical region (least
squares). ĝ(ω) varies by ~10⁻³ across the distribution and is ignored.

Detectors at different azimuths see the bunch at different times: each station's times are shifted
by its own measured phase (turn number from its nominal position) before the signals are added.
The statistical errors of the moments come from the spread over disjoint subsets of the positrons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ringsim.errors import ConfigError, InputError

PHASE_SPAN_NS = 20_000.0  # early window whose phase drift gives ω̄ and t₀

__all__ = ["FastRotationResult", "FastRotationSignal", "fast_rotation_analysis", "fast_rotation_signal"]


@dataclass(frozen=True)
class FastRotationSignal:
    """S(t) = rate / (its one-turn average) − 1 on bins of a fixed fraction of the nominal turn."""

    t_ns: np.ndarray  # bin centres (times aligned to the reference detector position)
    signal: np.ndarray
    signal_err: np.ndarray
    bin_ns: float


@dataclass(frozen=True)
class FastRotationResult:
    """Equilibrium-radius distribution from the fast rotation, and its first two moments.

    Attributes
    ----------
    x_e_m, density_per_m : numpy.ndarray
        Grid of x_e over the physical aperture and the normalised distribution on it.
    mean_m, mean_err_m, width_m, width_err_m : float
        Mean and rms width of x_e with their statistical errors (subset spread).
    x2_mean_m2, x2_mean_err_m2 : float
        ⟨x_e²⟩ and its error (for C_e).
    t0_ns : float
        Time at which the bunch was compact (aligned time scale).
    n_positrons : int
    """

    x_e_m: np.ndarray
    density_per_m: np.ndarray
    mean_m: float
    mean_err_m: float
    width_m: float
    width_err_m: float
    x2_mean_m2: float
    x2_mean_err_m2: float
    t0_ns: float
    n_positrons: int


def _demodulated_phase(t_ns: np.ndarray, omega_rad_per_ns: float) -> float:
    z = np.sum(np.exp(-1j * omega_rad_per_ns * t_ns))
    return float(np.angle(z)) if abs(z) > 0.0 else 0.0


def _early_phase(t_ns: np.ndarray, omega0_rad_per_ns: float, start_ns: float, span_ns: float) -> tuple[float, float]:
    """Mean frequency ω̄ (rad/ns) and phase at t = 0 of the bunch signal from its early phase drift.

    The rate is demodulated at ω₀ in 1 μs windows over ``span_ns`` from ``start_ns``; the unwrapped
    phase is fitted by a + (ω̄ − ω₀)t + ct³ (the cubic term takes the third cumulant of an asymmetric
    distribution), weighted by the squared amplitude. Returns (ω̄, a).
    """
    edges = np.arange(start_ns, start_ns + span_ns + 1.0, 1000.0)
    centres, values = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        sel = t_ns[(t_ns >= lo) & (t_ns < hi)]
        if sel.size > 50:
            centres.append(0.5 * (lo + hi))
            values.append(np.mean(np.exp(-1j * omega0_rad_per_ns * sel)))
    if len(centres) < 4:
        raise InputError(f"fast rotation: fewer than 4 populated microseconds after {start_ns * 1e-3:g} us; too few positrons")
    t = np.asarray(centres)
    z = np.asarray(values)
    phase = np.unwrap(np.angle(z))
    design = np.stack([np.ones_like(t), t, t**3], axis=1)
    w = np.abs(z)
    (a, b, _), *_ = np.linalg.lstsq(design * w[:, None], phase * w, rcond=None)
    return omega0_rad_per_ns + b, float(a)


def _aligned_times(time_ns: np.ndarray, calo, n_stations: int | None, period_ns: float, start_ns: float) -> np.ndarray:
    """Shift the times so that every station's bunch passes near t = 0 (see the module docstring)."""
    omega0 = 2.0 * math.pi / period_ns
    if calo is None:
        return time_ns
    calo = np.asarray(calo)
    if calo.shape != time_ns.shape:
        raise InputError(f"calo: expected one station per positron ({time_ns.shape}), got {calo.shape}")
    stations = np.unique(calo)
    n_st = int(n_stations) if n_stations is not None else int(stations.max()) + 1
    nominal = (calo + 0.5) * period_ns / n_st  # sector centre: first passage of the bunch centre
    omega_bar, _ = _early_phase(time_ns - nominal, omega0, start_ns, 20_000.0)
    out = np.empty_like(time_ns)
    early = (time_ns >= start_ns) & (time_ns < start_ns + 10_000.0)
    for s in stations:
        sel = calo == s
        phase = _demodulated_phase(time_ns[sel & early], omega_bar)
        t0 = -phase / omega_bar
        nominal_s = (s + 0.5) * period_ns / n_st
        t0 += round((nominal_s - t0) / (2.0 * math.pi / omega_bar)) * 2.0 * math.pi / omega_bar
        out[sel] = time_ns[sel] - t0
    return out


def fast_rotation_signal(time_ns, period_ns: float, start_us: float, end_us: float, bins_per_turn: int = 40) -> FastRotationSignal:
    """Return the normalised fast-rotation signal of already aligned positron times (ns).

    Bins are ``period_ns/bins_per_turn`` wide; the average is a centred window of exactly one
    nominal turn, so S oscillates about zero; half a turn is dropped at each end.
    """
    t = np.asarray(time_ns, dtype=float)
    if not (isinstance(bins_per_turn, int) and bins_per_turn >= 8 and bins_per_turn % 2 == 0):
        raise ConfigError(f"bins_per_turn: expected an even integer >= 8, got {bins_per_turn!r}")
    bin_ns = period_ns / bins_per_turn
    half = bins_per_turn // 2
    n_bins = int((end_us - start_us) * 1e3 / bin_ns) + 2 * half
    edges = start_us * 1e3 - half * bin_ns + np.arange(n_bins + 1) * bin_ns
    counts, _ = np.histogram(t, bins=edges)
    kernel = np.ones(bins_per_turn + 1)
    kernel[[0, -1]] = 0.5
    kernel /= bins_per_turn
    average = np.convolve(counts, kernel, mode="same")[half:-half]
    c = counts[half:-half].astype(float)
    filled = average > 0.0  # a turn without hits carries no information: S = 0 there
    safe = np.where(filled, average, 1.0)
    centres = 0.5 * (edges[half : -half - 1] + edges[half + 1 : -half])
    return FastRotationSignal(centres, np.where(filled, c / safe - 1.0, 0.0), np.where(filled, np.sqrt(np.maximum(c, average)) / safe, 0.0), bin_ns)


def _transforms(sig: FastRotationSignal, omega: np.ndarray, period_ns: float) -> tuple[np.ndarray, np.ndarray]:
    """Σ S cos ωt·Δt and Σ S sin ωt·Δt for every ω (rad/ns) near ω₀ = 2π/T₀.

    The sum Σ S e^{−iωt} is computed turn by turn: S e^{−iω₀t} is summed over each turn (L bins,
    centre t_m) with the weights (t − t_m)^p/p!, p ≤ 3, and e^{−i(ω−ω₀)(t−t_m)} is expanded to that
    order: exact to (Δω·T₀/2)⁴/24 ≈ 10⁻⁷ for |Δω| ≤ 0.013 ω₀.
    """
    omega0 = 2.0 * math.pi / period_ns
    n_per = int(round(period_ns / sig.bin_ns))
    n_turns = sig.t_ns.size // n_per
    t = sig.t_ns[: n_turns * n_per].reshape(n_turns, n_per)
    demod = (sig.signal[: n_turns * n_per] * np.exp(-1j * omega0 * sig.t_ns[: n_turns * n_per])).reshape(n_turns, n_per)
    t_m = t.mean(axis=1)
    u = t - t_m[:, None]
    moments = [np.sum(demod * u**p, axis=1) / math.factorial(p) for p in range(4)]  # (n_turns,) each
    delta = omega - omega0
    phase = np.exp(-1j * np.outer(delta, t_m))  # (n_omega, n_turns)
    total = sum((-1j * delta[:, None]) ** p * moments[p][None, :] for p in range(4))
    f = np.sum(phase * total, axis=1) * sig.bin_ns
    return f.real, -f.imag


def _kernel(omega: np.ndarray, d_omega: np.ndarray, length_ns: float) -> np.ndarray:
    """(2/π)M(ω_i, ω_j)Δω_j for the missing interval of length T."""
    diff = omega[:, None] - omega[None, :]
    summ = omega[:, None] + omega[None, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        m = np.where(diff == 0.0, length_ns, np.sin(diff * length_ns) / np.where(diff == 0.0, 1.0, diff))
    m = 0.5 * (m + np.sin(summ * length_ns) / summ)
    return (2.0 / math.pi) * m * d_omega[None, :]


def _solve(fc: np.ndarray, fs: np.ndarray, t_start_ns: float, omega: np.ndarray, d_omega: np.ndarray, physical: np.ndarray, t0_ns: float) -> tuple[np.ndarray, float]:
    """ρ·2ĝ on the grid for a given t₀ (zero outside ``physical``), and the unphysical residual.

    The residual is Σ over the unphysical points of the reconstructed transform squared relative
    to the same over the physical points: zero for the right t₀ without noise.
    """
    c = (2.0 / math.pi) * (fc * np.cos(omega * t0_ns) + fs * np.sin(omega * t0_ns))
    length = t_start_ns - t0_ns
    rho = np.zeros(omega.size)
    if length > 0.0:
        k = _kernel(omega, d_omega, length)
        rho[physical] = np.linalg.solve(np.eye(int(physical.sum())) - k[np.ix_(physical, physical)], c[physical])
        full = c + k[:, physical] @ rho[physical]
    else:
        rho[physical] = c[physical]
        full = c
    return rho, float(np.sum(full[~physical] ** 2) / max(np.sum(full[physical] ** 2), 1e-300))


def _moments(x: np.ndarray, density: np.ndarray, dx: np.ndarray) -> tuple[float, float, float]:
    w = density * dx
    norm = w.sum()
    if not norm > 0.0:
        raise InputError("fast rotation: the reconstructed distribution has no positive weight (no bunch structure in the window?)")
    mean = float(np.dot(w, x) / norm)
    x2 = float(np.dot(w, x**2) / norm)
    return mean, math.sqrt(max(x2 - mean**2, 0.0)), x2


def fast_rotation_analysis(
    time_ns,
    period_ns: float,
    radius_m: float,
    aperture_m: float,
    calo=None,
    n_stations: int | None = None,
    start_us: float = 2.0,
    end_us: float = 150.0,
    bins_per_turn: int = 40,
    n_points: int = 181,
    n_subsets: int = 8,
) -> FastRotationResult:
    """Return the x_e distribution of a run from its positron times.

    Parameters
    ----------
    time_ns : array_like
        Positron times (ns after the nominal injection), all energies.
    period_ns : float
        Nominal revolution period T₀ = 2π/ω₀ of a muon on the central orbit (x_e = 0), ns.
    radius_m, aperture_m : float
        Central radius R₀ and aperture radius (the physical range of x_e), m.
    calo, n_stations : array_like, int, optional
        Station of each positron and the number of stations (azimuthal sectors) for the alignment.
    start_us, end_us : float
        Analysed window; the signal should have faded by ``end_us``.
    bins_per_turn : int
        Time bins per nominal turn (even).
    n_points : int
        Grid points of x_e over ±2 apertures (the outer half is the unphysical control region).
    n_subsets : int
        Disjoint subsets of the positrons for the statistical errors.

    Returns
    -------
    FastRotationResult
    """
    t = np.asarray(time_ns, dtype=float)
    if t.ndim != 1 or t.size < 1000 or not np.all(np.isfinite(t)):
        raise InputError(f"time_ns: expected a finite 1-D array of at least 1000 positron times, got shape {t.shape}")
    for name, value in (("period_ns", period_ns), ("radius_m", radius_m), ("aperture_m", aperture_m)):
        if not (math.isfinite(value) and value > 0.0):
            raise ConfigError(f"{name}: expected a positive finite value, got {value!r}")
    if not (0.0 <= start_us < end_us):
        raise ConfigError(f"fast rotation window: expected 0 <= start_us < end_us, got {start_us!r}, {end_us!r}")
    aligned = _aligned_times(t, calo, n_stations, period_ns, start_us * 1e3)
    omega0 = 2.0 * math.pi / period_ns
    x = np.linspace(-2.0 * aperture_m, 2.0 * aperture_m, n_points)
    dx = np.gradient(x)
    omega = omega0 * radius_m / (radius_m + x)
    d_omega = np.abs(np.gradient(omega))
    physical = np.abs(x) <= aperture_m
    jacobian = omega0 * radius_m / (radius_m + x) ** 2  # |dω/dx|: density per ω → per m

    def analyse(times):
        sig = fast_rotation_signal(times, period_ns, start_us, end_us, bins_per_turn)
        omega_bar, phase0 = _early_phase(times, omega0, start_us * 1e3, PHASE_SPAN_NS)
        t0 = -phase0 / omega_bar
        t0 -= round(t0 / (2.0 * math.pi / omega_bar)) * 2.0 * math.pi / omega_bar
        rho, _ = _solve(*_transforms(sig, omega, period_ns), sig.t_ns[0] - 0.5 * sig.bin_ns, omega, d_omega, physical, t0)
        density = rho * jacobian
        return t0, density, _moments(x[physical], density[physical], dx[physical])

    t0, density, (mean, width, x2) = analyse(aligned)
    index = np.arange(aligned.size) % n_subsets
    subset_moments = [analyse(aligned[index == k])[2] for k in range(n_subsets)]
    spread = np.std(np.asarray(subset_moments), axis=0, ddof=1) / math.sqrt(n_subsets)
    norm = float(np.sum(density[physical] * dx[physical]))
    return FastRotationResult(
        x_e_m=x[physical],
        density_per_m=density[physical] / norm,
        mean_m=mean,
        mean_err_m=float(spread[0]),
        width_m=width,
        width_err_m=float(spread[1]),
        x2_mean_m2=x2,
        x2_mean_err_m2=float(spread[2]),
        t0_ns=t0,
        n_positrons=int(t.size),
    )
