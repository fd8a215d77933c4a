"""Muon EDM from the vertical spin oscillation out of phase with ω_a (docs/physics.md §2, §5).

With E = 0 an EDM d = η e ħ/(4 m c) tilts the precession axis (vertical ŷ) towards the radial
direction by δ = atan(ηβ/(2a)) and the frequency becomes ω_a/cos δ. The spin starts along the
momentum, perpendicular to the tilted axis n = cos δ ŷ + sin δ r̂, so it precesses in a tilted
plane: s(t) = L̂ cos θ + (n × L̂) sin θ with θ = ωt + φ. Its longitudinal component cos θ drives
the number oscillation N ∝ 1 + A cos θ; its vertical component is ∓sin δ · sin θ — a quarter period
out of phase with the wiggle. Convention here: the vertical spin is s_y(t) = sin δ · sin θ (δ > 0
when the up-going oscillation leads the wiggle by π/2), so d and δ share their sign.

- Up–down count asymmetry (J-PARC): per unit vertical polarisation the up (down) hemisphere
  gains (loses) a fraction A_ud of positrons, so U, D ∝ D(t)[1 + A cos θ ± A_ud P sin δ sin θ]/2
  and, given U + D, U is binomial with p = ½[1 + (c + s sin θ + k cos θ)/(1 + A cos θ)] (bin
  integrals with the decay e^{−t/τ}); s = A_ud P sin δ. c and k absorb detector up–down
  acceptance differences.
- Vertical-angle oscillation (J-PARC tracks, Fermilab trackers): the mean vertical decay angle is
  ⟨θ_y⟩(t) = c + (s sin θ + k cos θ)/(1 + A cos θ) with s = κ P sin δ, κ the mean vertical angle per
  unit vertical polarisation of the selected positrons (from simulation), fitted by least squares
  to the per-bin means.

Then sin δ = s/(analysing power · P), η = 2a tan δ/β and d = η × e ħ/(4 m c) (4.669e-14 e·cm). The
ω, φ, A and τ come from the main ω_a fit of the same positrons (held fixed). J-PARC's
200–275 MeV window has A_ud = 0.268 (docs/physics.md §5 [C]).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.fitting import window_slice
from analysis.models import five_parameter_binned
from ringsim.constants import ELEMENTARY_CHARGE_C, HBAR_J_S, SPEED_OF_LIGHT_M_PER_S
from ringsim.errors import ConfigError, FitError, InputError

JPARC_UP_DOWN_ASYMMETRY = 0.268  # 200–275 MeV positrons, per unit vertical spin, docs/physics.md §5 [C]
NEWTON_ITERATIONS = 50
NEWTON_TOLERANCE = 1e-10  # stop when the step is below this × the parameter error


def edm_per_eta_e_cm(muon_mass_mev: float) -> float:
    """Return e ħ/(4 m c) in e·cm: the EDM for η = 1 (ħc/(4 m c²) with ħc in MeV·cm)."""
    hbar_c_mev_cm = HBAR_J_S * SPEED_OF_LIGHT_M_PER_S / (ELEMENTARY_CHARGE_C * 1e6) * 100.0
    return hbar_c_mev_cm / (4.0 * muon_mass_mev)


def tilt_from_eta(eta: float, a_mu: float, beta: float) -> float:
    """Tilt δ = atan(ηβ/(2a)) of the precession plane in rad."""
    return math.atan(eta * beta / (2.0 * a_mu))


@dataclass(frozen=True)
class EdmResult:
    """Fitted out-of-phase amplitude and the EDM it implies.

    Attributes
    ----------
    sin_amplitude, sin_amplitude_err : float
        s, the amplitude of the sin(ωt + φ) term (unitless for up–down, the angle unit for angles).
    cos_amplitude, cos_amplitude_err, offset : float
        k (in-phase term) and c (constant).
    tilt_rad, tilt_err_rad : float
        δ and its error.
    eta, eta_err : float
        η and its error.
    d_e_cm, d_err_e_cm : float
        The EDM and its error in e·cm.
    chi2 : float
        Binomial deviance (up–down) or χ² (angles).
    ndf : int
        Bins minus 3.
    """

    sin_amplitude: float
    sin_amplitude_err: float
    cos_amplitude: float
    cos_amplitude_err: float
    offset: float
    tilt_rad: float
    tilt_err_rad: float
    eta: float
    eta_err: float
    d_e_cm: float
    d_err_e_cm: float
    chi2: float
    ndf: int

    def limit_e_cm(self, z: float = 1.96) -> float:
        """Conservative two-sided limit |d| < |d̂| + z σ_d in e·cm (z = 1.96: 95 % CL for Gaussian errors)."""
        return abs(self.d_e_cm) + z * self.d_err_e_cm

    def to_dict(self) -> dict:
        """JSON-able dictionary of every attribute and the 95 % CL limit."""
        return {k: getattr(self, k) for k in self.__dataclass_fields__} | {"limit_95cl_e_cm": self.limit_e_cm()}


def _phase_integrals(edges_us: np.ndarray, omega: float, phi: float, tau_us: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin integrals of e^{−t/τ}, e^{−t/τ}cos θ and e^{−t/τ}sin θ, θ = ωt + φ."""
    i0 = five_parameter_binned(edges_us, 1.0, tau_us, 0.0, omega, phi)
    ic = five_parameter_binned(edges_us, 1.0, tau_us, 1.0, omega, phi) - i0
    is_ = five_parameter_binned(edges_us, 1.0, tau_us, 1.0, omega, phi - 0.5 * math.pi) - i0
    return i0, ic, is_


def _check_reference(omega_rad_per_us, phi, asymmetry, tau_us, polarization, analyzing_power, a_mu, beta) -> None:
    for name, value in (("omega_rad_per_us", omega_rad_per_us), ("tau_us", tau_us), ("a_mu", a_mu), ("beta", beta)):
        if not (math.isfinite(value) and value > 0.0):
            raise ConfigError(f"EDM fit: {name} must be finite and > 0, got {value!r}")
    if not (math.isfinite(phi) and math.isfinite(asymmetry) and abs(asymmetry) < 1.0):
        raise ConfigError(f"EDM fit: need a finite phase and |A| < 1, got {phi!r}, {asymmetry!r}")
    if not (math.isfinite(polarization * analyzing_power) and polarization * analyzing_power != 0.0):
        raise ConfigError(f"EDM fit: polarization × analysing power must be finite and non-zero, got {polarization!r} × {analyzing_power!r}")


def _edm(s: float, s_err: float, k: float, k_err: float, c: float, chi2: float, ndf: int, analyzing_power: float, polarization: float, a_mu: float, beta: float, muon_mass_mev: float) -> EdmResult:
    sin_d = s / (analyzing_power * polarization)
    if abs(sin_d) >= 1.0:
        raise FitError(f"EDM fit: the out-of-phase amplitude {s:.4g} exceeds analysing power × polarization; check the inputs")
    delta = math.asin(sin_d)
    delta_err = s_err / abs(analyzing_power * polarization) / math.cos(delta)
    eta = 2.0 * a_mu * math.tan(delta) / beta
    eta_err = 2.0 * a_mu / beta * delta_err / math.cos(delta) ** 2
    unit = edm_per_eta_e_cm(muon_mass_mev)
    return EdmResult(s, s_err, k, k_err, c, delta, delta_err, eta, eta_err, eta * unit, eta_err * unit, chi2, ndf)


def fit_up_down(
    up,
    down,
    edges_us,
    *,
    start_us: float,
    end_us: float,
    omega_rad_per_us: float,
    phi: float,
    asymmetry: float,
    tau_us: float,
    polarization: float,
    a_mu: float,
    beta: float,
    muon_mass_mev: float,
    up_down_asymmetry: float = JPARC_UP_DOWN_ASYMMETRY,
) -> EdmResult:
    """EDM from up and down count histograms by the binomial likelihood of U given U + D.

    p_b = ½ + (c I0 + s Is + k Ic)/(2(I0 + A Ic)) is linear in (c, s, k), so the maximum is found by
    Fisher scoring; errors from the Fisher information n/(p(1 − p)).

    Parameters
    ----------
    up, down : array_like
        Counts per time bin above and below the storage plane.
    edges_us : array_like
        Bin edges in μs.
    start_us, end_us : float
        Fit window in μs.
    omega_rad_per_us, phi, asymmetry, tau_us : float
        ω (true, unblinded — only the oscillation's shape is used), φ, A (with P) and γτ of the main fit.
    polarization : float
        P.
    a_mu, beta, muon_mass_mev : float
        a_μ, β and m_μ for δ → η → d.
    up_down_asymmetry : float
        A_ud per unit vertical spin.

    Raises
    ------
    InputError
        Malformed histograms or window.
    ConfigError
        Bad reference values.
    FitError
        No convergence or an implausible amplitude.
    """
    u = np.asarray(up, dtype=float)
    d = np.asarray(down, dtype=float)
    e = np.asarray(edges_us, dtype=float)
    if u.shape != d.shape or u.ndim != 1 or e.shape != (u.size + 1,):
        raise InputError(f"EDM fit: up, down need equal 1-D shapes and one more edge, got {u.shape}, {d.shape}, {e.shape}")
    if not (np.all(np.isfinite(u) & (u >= 0.0)) and np.all(np.isfinite(d) & (d >= 0.0))):
        raise InputError("EDM fit: counts must be finite and non-negative")
    _check_reference(omega_rad_per_us, phi, asymmetry, tau_us, polarization, up_down_asymmetry, a_mu, beta)
    window = window_slice(e, start_us, end_us)
    u, d, e = u[window], d[window], e[window.start : window.stop + 1]
    n = u + d
    keep = n > 0
    i0, ic, is_ = _phase_integrals(e, omega_rad_per_us, phi, tau_us)
    denom = 2.0 * (i0 + asymmetry * ic)
    x = (np.stack([i0, is_, ic], axis=1) / denom[:, None])[keep]
    u, n = u[keep], n[keep]
    if n.sum() < 100.0 or n.size < 6:
        raise FitError(f"EDM fit: window {start_us}..{end_us} us holds {n.sum():g} entries in {n.size} bins; too few")
    beta_hat = np.zeros(3)
    for _ in range(NEWTON_ITERATIONS):
        p = 0.5 + x @ beta_hat
        if not np.all((p > 0.0) & (p < 1.0)):
            raise FitError("EDM fit: the fitted up fraction left (0, 1); check the inputs")
        w = n / (p * (1.0 - p))
        info = (x.T * w) @ x
        cov = np.linalg.inv(info)
        step = cov @ (x.T @ ((u - n * p) / (p * (1.0 - p))))
        beta_hat = beta_hat + step
        if np.all(np.abs(step) < NEWTON_TOLERANCE * np.sqrt(np.diag(cov))):
            break
    else:
        raise FitError(f"EDM fit: Fisher scoring did not converge in {NEWTON_ITERATIONS} iterations")
    p = 0.5 + x @ beta_hat
    with np.errstate(divide="ignore", invalid="ignore"):
        dev = 2.0 * np.sum(np.where(u > 0, u * np.log(u / (n * p)), 0.0) + np.where(n - u > 0, (n - u) * np.log((n - u) / (n * (1.0 - p))), 0.0))
    err = np.sqrt(np.diag(cov))
    return _edm(beta_hat[1], err[1], beta_hat[2], err[2], beta_hat[0], float(dev), int(n.size - 3), up_down_asymmetry, polarization, a_mu, beta, muon_mass_mev)


def vertical_angle_means(t_us, angle, edges_us) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean vertical angle per time bin, its standard error (sample spread/√n) and the hit count."""
    e = np.asarray(edges_us, dtype=float)
    t = np.asarray(t_us, dtype=float)
    a = np.asarray(angle, dtype=float)
    if t.shape != a.shape:
        raise InputError(f"vertical angles: {t.size} times but {a.size} angles")
    n, _ = np.histogram(t, bins=e)
    s1, _ = np.histogram(t, bins=e, weights=a)
    s2, _ = np.histogram(t, bins=e, weights=a * a)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = s1 / n
        spread = np.sqrt(np.maximum(s2 / n - mean**2, 0.0) * n / np.maximum(n - 1, 1))
        err = spread / np.sqrt(n)
    return mean, err, n.astype(float)


def fit_vertical_angle(
    mean_angle,
    error,
    edges_us,
    *,
    start_us: float,
    end_us: float,
    omega_rad_per_us: float,
    phi: float,
    asymmetry: float,
    tau_us: float,
    polarization: float,
    angle_per_unit_spin: float,
    a_mu: float,
    beta: float,
    muon_mass_mev: float,
) -> EdmResult:
    """EDM from the mean vertical decay angle per time bin (weighted linear least squares).

    ``angle_per_unit_spin`` is κ, in the unit of ``mean_angle``; bins with a non-finite or zero
    error are skipped. Other parameters as :func:`fit_up_down`.
    """
    m = np.asarray(mean_angle, dtype=float)
    s = np.asarray(error, dtype=float)
    e = np.asarray(edges_us, dtype=float)
    if m.shape != s.shape or m.ndim != 1 or e.shape != (m.size + 1,):
        raise InputError(f"EDM fit: means and errors need equal 1-D shapes and one more edge, got {m.shape}, {s.shape}, {e.shape}")
    _check_reference(omega_rad_per_us, phi, asymmetry, tau_us, polarization, angle_per_unit_spin, a_mu, beta)
    window = window_slice(e, start_us, end_us)
    m, s, e = m[window], s[window], e[window.start : window.stop + 1]
    i0, ic, is_ = _phase_integrals(e, omega_rad_per_us, phi, tau_us)
    denom = i0 + asymmetry * ic
    keep = np.isfinite(m) & np.isfinite(s) & (s > 0.0)
    if np.count_nonzero(keep) < 6:
        raise FitError(f"EDM fit: window {start_us}..{end_us} us has {np.count_nonzero(keep)} bins with angles; too few")
    x = np.stack([np.ones_like(i0), is_ / denom, ic / denom], axis=1)[keep] / s[keep, None]
    y = m[keep] / s[keep]
    cov = np.linalg.inv(x.T @ x)
    coef = cov @ (x.T @ y)
    chi2 = float(np.sum((y - x @ coef) ** 2))
    err = np.sqrt(np.diag(cov))
    return _edm(coef[1], err[1], coef[2], err[2], coef[0], chi2, int(y.size - 3), angle_per_unit_spin, polarization, a_mu, beta, muon_mass_mev)
