"""Fit functions of the ω_a analysis (docs/physics.md §3, "Fit function family"), as composable terms.

Times are in μs, frequencies in rad/μs; ``N0`` is the rate in counts per μs at t = 0 and ω_a is
written ω = ω_ref(1 + R·1e-6) with R in ppm. The full rate is

    f(t) = N0 Λ(t) N_cbo N_2cbo N_vw N_y e^{-t/τ} [1 + A·A_cbo(t) cos(ωt + φ + φ_cbo(t))]

with the CBO envelope e(t) = e^{-t/τ_cbo} + c_cbo, the CBO phase
θ(t) = ω_cbo t + ΔA e^{-t/τ_A} + ΔB e^{-t/τ_B} (docs/physics.md: ω_cbo(t)·t with ω_cbo(t) = ω0 + (A/t)e^{-t/τ_A}
+ (B/t)e^{-t/τ_B}), and

    N_cbo   = 1 + A_cbo_N e(t) cos(θ + φ_cbo_N)        A_cbo = 1 + A_cbo_A e(t) cos(θ + φ_cbo_A)
    φ_cbo   = A_cbo_phi e(t) cos(θ + φ_cbo_phi)         N_2cbo = 1 + A_2cbo e(t)² cos(2θ + φ_2cbo)
    N_vw    = 1 + A_vw e^{-t/τ_vw} cos(ω_vw t + φ_vw)   N_y = 1 + A_y e^{-t/τ_y} cos(ω_y t + φ_y)
    Λ(t)    = 1 − k_loss L(t),  L(t) ∝ ∫_{t0}^{t} ℓ(t') e^{t'/γτ} dt'  (ℓ: lost-muon spectrum)

A term absent from a model is exactly 1 (or 0 for φ_cbo). The rate and its derivatives with respect
to every parameter are compiled with numba; bin contents are integrated with Gauss–Legendre
quadrature inside each bin (``NODES_PER_BIN`` nodes, exact for polynomials of degree 5).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from numba import njit

from ringsim.errors import ConfigError, InputError

NODES_PER_BIN = 3

# Every parameter any model can have, in the order of the compiled kernel's parameter vector.
FULL_NAMES = (
    "N0", "tau_us", "A", "R_ppm", "phi",
    "omega_cbo", "tau_cbo_us", "A_cbo_N", "phi_cbo_N",
    "A_cbo_A", "phi_cbo_A", "A_cbo_phi", "phi_cbo_phi",
    "A_2cbo", "phi_2cbo", "c_cbo",
    "cbo_dA_rad", "cbo_tau_A_us", "cbo_dB_rad", "cbo_tau_B_us",
    "omega_vw", "tau_vw_us", "A_vw", "phi_vw",
    "omega_y", "tau_y_us", "A_y", "phi_y",
    "k_loss",
)  # fmt: skip
INDEX = {name: i for i, name in enumerate(FULL_NAMES)}
# values of parameters that a model does not have (their terms are switched off anyway)
NEUTRAL = dict.fromkeys(FULL_NAMES, 0.0) | {
    "N0": 1.0, "tau_us": 64.4, "omega_cbo": 1.0, "tau_cbo_us": 1.0, "cbo_tau_A_us": 1.0,
    "cbo_tau_B_us": 1.0, "omega_vw": 1.0, "tau_vw_us": 1.0, "omega_y": 1.0, "tau_y_us": 1.0,
}  # fmt: skip

TERMS = {
    "base": ("N0", "tau_us", "A", "R_ppm", "phi"),
    "cbo_n": ("A_cbo_N", "phi_cbo_N"),
    "cbo_a": ("A_cbo_A", "phi_cbo_A"),
    "cbo_phi": ("A_cbo_phi", "phi_cbo_phi"),
    "cbo2": ("A_2cbo", "phi_2cbo"),
    "cbo_c": ("c_cbo",),
    "cbo_t": ("cbo_dA_rad", "cbo_tau_A_us", "cbo_dB_rad", "cbo_tau_B_us"),
    "vw": ("omega_vw", "tau_vw_us", "A_vw", "phi_vw"),
    "y": ("omega_y", "tau_y_us", "A_y", "phi_y"),
    "loss": ("k_loss",),
}
CBO_SHARED = ("omega_cbo", "tau_cbo_us")  # carried by any model with a CBO term
CBO_OSCILLATING = ("cbo_n", "cbo_a", "cbo_phi", "cbo2")
ALIASES = {"2cbo": "cbo2", "cbo_const": "cbo_c", "waist": "vw"}
PRESETS = {
    "5": ("base",),
    "9": ("base", "cbo_n"),
    "13": ("base", "cbo_n", "cbo_a", "cbo_phi"),
    "18": ("base", "cbo_n", "cbo_a", "cbo_phi", "vw", "loss"),
    "22": ("base", "cbo_n", "cbo_a", "cbo_phi", "vw", "loss", "y"),
    "28": ("base", "cbo_n", "cbo_a", "cbo_phi", "vw", "loss", "y", "cbo2", "cbo_t"),
}
_TERM_ORDER = tuple(TERMS)
# kernel switches: any CBO, cbo_n, cbo_a, cbo_phi, cbo2, cbo_t, vw, y, loss
_FLAG_TERMS = ("cbo_n", "cbo_a", "cbo_phi", "cbo2", "cbo_t", "vw", "y", "loss")


@dataclass(frozen=True)
class Model:
    """A fit function made of terms; build it with :func:`parse_model`.

    Attributes
    ----------
    name : str
        The text it was parsed from (e.g. ``"13"`` or ``"5+cbo_n+vw"``).
    terms : tuple of str
        Its terms, in canonical order (always starting with ``"base"``).
    names : tuple of str
        Its parameters, in the order of :data:`FULL_NAMES`.
    """

    name: str
    terms: tuple[str, ...]
    names: tuple[str, ...]

    @property
    def n_parameters(self) -> int:
        """Number of parameters (free or fixed)."""
        return len(self.names)

    @property
    def index(self) -> np.ndarray:
        """Positions of :attr:`names` in the full parameter vector."""
        return np.array([INDEX[k] for k in self.names], dtype=np.int64)

    @property
    def flags(self) -> np.ndarray:
        """Term switches of the compiled kernel."""
        on = [any(t in self.terms for t in CBO_OSCILLATING)] + [t in self.terms for t in _FLAG_TERMS]
        return np.array(on, dtype=np.int64)

    def full_vector(self, values: Mapping[str, float]) -> np.ndarray:
        """Kernel parameter vector: ``values`` for this model's parameters, neutral values elsewhere.

        Raises
        ------
        ConfigError
            A parameter of the model is missing from ``values`` or not finite.
        """
        p = np.array([NEUTRAL[k] for k in FULL_NAMES])
        for k in self.names:
            if k not in values:
                raise ConfigError(f"model {self.name}: no value for parameter {k}")
            v = float(values[k])
            if not math.isfinite(v):
                raise ConfigError(f"model {self.name}: parameter {k} = {v!r} is not finite")
            p[INDEX[k]] = v
        return p


def parse_model(text: str) -> Model:
    """Model from a preset name or a ``+``-joined list of presets and terms.

    Presets: ``5, 9, 13, 18, 22, 28`` (see :data:`PRESETS`). Terms: ``cbo_n, cbo_a, cbo_phi, cbo2``
    (alias ``2cbo``), ``cbo_c`` (exponential-plus-constant CBO envelope, alias ``cbo_const``),
    ``cbo_t`` (time-dependent CBO frequency), ``vw``, ``y``, ``loss``. Example: ``"5+cbo_n+cbo_a+vw"``.

    Raises
    ------
    ConfigError
        Unknown token, or ``cbo_c``/``cbo_t`` without an oscillating CBO term.
    """
    tokens = [tok.strip() for tok in str(text).split("+")]
    terms = {"base"}
    for tok in tokens:
        key = ALIASES.get(tok, tok)
        if key in PRESETS:
            terms.update(PRESETS[key])
        elif key in TERMS:
            terms.add(key)
        else:
            raise ConfigError(f"model: unknown term {tok!r} in {text!r}; presets {', '.join(PRESETS)}; terms {', '.join(t for t in TERMS if t != 'base')}")
    if ({"cbo_c", "cbo_t"} & terms) and not (set(CBO_OSCILLATING) & terms):
        raise ConfigError(f"model: {text!r} modifies the CBO (cbo_c/cbo_t) but has no CBO term (cbo_n, cbo_a, cbo_phi, cbo2)")
    ordered = tuple(t for t in _TERM_ORDER if t in terms)
    names = {k for t in ordered for k in TERMS[t]}
    if set(CBO_OSCILLATING) & terms:
        names.update(CBO_SHARED)
    return Model(name=str(text).strip(), terms=ordered, names=tuple(k for k in FULL_NAMES if k in names))


SMALL_ANGLE = 0.02  # below this |x|, cos x and sin x come from their Taylor series (error < 1e-16)
CHUNK_BINS = 64  # uniform bins: recurrences are re-seeded with direct exp/cos/sin every this many bins


@njit(cache=True, inline="always")
def _cos_sin(x):
    """(cos x, sin x); Taylor series for |x| < SMALL_ANGLE."""
    if abs(x) < SMALL_ANGLE:
        x2 = x * x
        return 1.0 - x2 * (0.5 - x2 * (1.0 / 24.0 - x2 / 720.0)), x * (1.0 - x2 * (1.0 / 6.0 - x2 / 120.0))
    return math.cos(x), math.sin(x)


@njit(cache=True, inline="always")
def _damped_oscillation_grad(grad, i, g, p, env, c, s, t):
    """Fill ``grad[i:i + 4]`` (ω, τ, amplitude, phase) of a factor 1 + p[i + 2] e^{-t/p[i + 1]} cos(p[i] t + p[i + 3]); ``g`` = f over that factor."""
    grad[i + 2] = g * env * c
    grad[i + 3] = -g * p[i + 2] * env * s
    grad[i] = grad[i + 3] * t
    grad[i + 1] = g * p[i + 2] * env * c * t / (p[i + 1] * p[i + 1])


@njit(cache=True, inline="always")
def _node(t, ex, cw, sw, ec, ct0, st0, ea, eb, ev, cv, sv, ey, cy, sy, loss, p, omega_ref, flags, cph, sph, grad, want_grad):
    """Rate f(t) from the elementary functions of t; fills ``grad`` with ∂f/∂p if ``want_grad``.

    ex = e^{-t/τ}; (cw, sw) = cos/sin(ωt + φ); ec = e^{-t/τ_cbo}; (ct0, st0) = cos/sin(ω_cbo t);
    ea, eb = e^{-t/τ_A}, e^{-t/τ_B}; ev, (cv, sv) and ey, (cy, sy): envelope and cos/sin(ω t + φ) of
    the vertical waist and of y; ``cph``/``sph``: cos/sin of φ_cbo_N, φ_cbo_A, φ_cbo_phi, φ_2cbo.
    """
    n0, tau, asym = p[0], p[1], p[2]
    slow = ex  # product of the multiplicative slow terms, N0 excluded
    a_c = 1.0
    c_n = 1.0
    c_2 = 1.0
    env = cn = sn = ca = sa = cp = sp = c2 = s2 = 0.0
    cpsi, spsi = cw, sw
    if flags[0]:
        env = ec + p[15]
        ct, st = ct0, st0
        if flags[5]:
            cd, sd = _cos_sin(p[16] * ea + p[18] * eb)
            ct, st = ct0 * cd - st0 * sd, st0 * cd + ct0 * sd
        cn = ct * cph[0] - st * sph[0]
        sn = st * cph[0] + ct * sph[0]
        ca = ct * cph[1] - st * sph[1]
        sa = st * cph[1] + ct * sph[1]
        cp = ct * cph[2] - st * sph[2]
        sp = st * cph[2] + ct * sph[2]
        c2t = ct * ct - st * st
        s2t = 2.0 * st * ct
        c2 = c2t * cph[3] - s2t * sph[3]
        s2 = s2t * cph[3] + c2t * sph[3]
        if flags[1]:
            c_n = 1.0 + p[7] * env * cn
        if flags[2]:
            a_c = 1.0 + p[9] * env * ca
        if flags[3]:
            cpc, spc = _cos_sin(p[11] * env * cp)
            cpsi, spsi = cw * cpc - sw * spc, sw * cpc + cw * spc
        if flags[4]:
            c_2 = 1.0 + p[13] * env * env * c2
        slow *= c_n * c_2
    v_f = 1.0
    y_f = 1.0
    if flags[6]:
        v_f = 1.0 + p[22] * ev * cv
        slow *= v_f
    if flags[7]:
        y_f = 1.0 + p[26] * ey * cy
        slow *= y_f
    lam = 1.0
    if flags[8]:
        lam = 1.0 - p[28] * loss
        slow *= lam
    wiggle = 1.0 + asym * a_c * cpsi
    q = n0 * slow
    f = q * wiggle
    if not want_grad:
        return f
    grad[:] = 0.0
    dpsi = -q * asym * a_c * spsi  # ∂f/∂ψ
    grad[0] = slow * wiggle
    grad[1] = f * t / (tau * tau)
    grad[2] = q * a_c * cpsi
    grad[3] = dpsi * t * omega_ref * 1e-6
    grad[4] = dpsi
    if flags[0]:
        d_theta = 0.0  # ∂f/∂θ
        d_env = 0.0  # ∂f/∂e
        if flags[1]:
            grad[7] = f * env * cn / c_n
            grad[8] = -f * p[7] * env * sn / c_n
            d_theta += grad[8]
            d_env += f * p[7] * cn / c_n
        if flags[2]:
            g = q * asym * cpsi
            grad[9] = g * env * ca
            grad[10] = -g * p[9] * env * sa
            d_theta += grad[10]
            d_env += g * p[9] * ca
        if flags[3]:
            grad[11] = dpsi * env * cp
            grad[12] = -dpsi * p[11] * env * sp
            d_theta += grad[12]
            d_env += dpsi * p[11] * cp
        if flags[4]:
            grad[13] = f * env * env * c2 / c_2
            grad[14] = -f * p[13] * env * env * s2 / c_2
            d_theta += 2.0 * grad[14]
            d_env += 2.0 * f * p[13] * env * c2 / c_2
        grad[5] = d_theta * t
        grad[6] = d_env * ec * t / (p[6] * p[6])
        grad[15] = d_env
        if flags[5]:
            grad[16] = d_theta * ea
            grad[17] = d_theta * p[16] * ea * t / (p[17] * p[17])
            grad[18] = d_theta * eb
            grad[19] = d_theta * p[18] * eb * t / (p[19] * p[19])
    if flags[6]:
        _damped_oscillation_grad(grad, 20, f / v_f, p, ev, cv, sv, t)
    if flags[7]:
        _damped_oscillation_grad(grad, 24, f / y_f, p, ey, cy, sy, t)
    if flags[8]:
        grad[28] = -f * loss / lam
    return f


@njit(cache=True, inline="always")
def _elementary(t, p, omega_ref, flags):
    """Compute directly the elementary functions of t that :func:`_node` takes."""
    omega = omega_ref * (1.0 + p[3] * 1e-6)
    ex = math.exp(-t / p[1])
    cw, sw = math.cos(omega * t + p[4]), math.sin(omega * t + p[4])
    ec = ct0 = st0 = ea = eb = ev = cv = sv = ey = cy = sy = 0.0
    if flags[0]:
        ec = math.exp(-t / p[6])
        ct0, st0 = math.cos(p[5] * t), math.sin(p[5] * t)
        if flags[5]:
            ea = math.exp(-t / p[17])
            eb = math.exp(-t / p[19])
    if flags[6]:
        ev = math.exp(-t / p[21])
        cv, sv = math.cos(p[20] * t + p[23]), math.sin(p[20] * t + p[23])
    if flags[7]:
        ey = math.exp(-t / p[25])
        cy, sy = math.cos(p[24] * t + p[27]), math.sin(p[24] * t + p[27])
    return ex, cw, sw, ec, ct0, st0, ea, eb, ev, cv, sv, ey, cy, sy


@njit(cache=True)
def _phase_tables(p):
    """Return cos and sin of the CBO phases φ_cbo_N, φ_cbo_A, φ_cbo_phi, φ_2cbo."""
    cph = np.array([math.cos(p[8]), math.cos(p[10]), math.cos(p[12]), math.cos(p[14])])
    sph = np.array([math.sin(p[8]), math.sin(p[10]), math.sin(p[12]), math.sin(p[14])])
    return cph, sph


@njit(cache=True)
def _rate_points(t, p, omega_ref, flags, loss):
    """Rate at each time of ``t``."""
    out = np.empty(t.size)
    grad = np.empty(p.size)
    cph, sph = _phase_tables(p)
    for i in range(t.size):
        ex, cw, sw, ec, ct0, st0, ea, eb, ev, cv, sv, ey, cy, sy = _elementary(t[i], p, omega_ref, flags)
        out[i] = _node(t[i], ex, cw, sw, ec, ct0, st0, ea, eb, ev, cv, sv, ey, cy, sy, loss[i], p, omega_ref, flags, cph, sph, grad, False)
    return out


@njit(cache=True)
def _binned(nodes, weights, p, omega_ref, flags, loss, active, want_jac, uniform):
    """Bin contents Σ_k w_k f(t_k) over the nodes of each bin, and their Jacobian (``active`` columns).

    With ``uniform`` (equal bin widths) the exponentials and rotations are advanced from bin to bin by
    constant factors and re-seeded directly at the start of every chunk of CHUNK_BINS bins.
    """
    n_bins, n_nodes = nodes.shape
    mu = np.zeros(n_bins)
    jac = np.zeros((n_bins if want_jac else 1, active.size))
    cph, sph = _phase_tables(p)
    omega = omega_ref * (1.0 + p[3] * 1e-6)
    h = nodes[1, 0] - nodes[0, 0] if (uniform and n_bins > 1) else 0.0
    r_ex = math.exp(-h / p[1])
    r_cw, r_sw = math.cos(omega * h), math.sin(omega * h)
    r_ec = math.exp(-h / p[6])
    r_ct, r_st = math.cos(p[5] * h), math.sin(p[5] * h)
    r_ea = math.exp(-h / p[17])
    r_eb = math.exp(-h / p[19])
    r_ev = math.exp(-h / p[21])
    r_cv, r_sv = math.cos(p[20] * h), math.sin(p[20] * h)
    r_ey = math.exp(-h / p[25])
    r_cy, r_sy = math.cos(p[24] * h), math.sin(p[24] * h)
    n_chunks = (n_bins + CHUNK_BINS - 1) // CHUNK_BINS
    for c in range(n_chunks):
        grad = np.empty(p.size)
        b0 = c * CHUNK_BINS
        b1 = min(b0 + CHUNK_BINS, n_bins)
        for k in range(n_nodes):
            ex, cw, sw, ec, ct0, st0, ea, eb, ev, cv, sv, ey, cy, sy = _elementary(nodes[b0, k], p, omega_ref, flags)
            for b in range(b0, b1):
                t = nodes[b, k]
                if not uniform:
                    ex, cw, sw, ec, ct0, st0, ea, eb, ev, cv, sv, ey, cy, sy = _elementary(t, p, omega_ref, flags)
                w = weights[b, k]
                mu[b] += w * _node(t, ex, cw, sw, ec, ct0, st0, ea, eb, ev, cv, sv, ey, cy, sy, loss[b, k], p, omega_ref, flags, cph, sph, grad, want_jac)
                if want_jac:
                    for a in range(active.size):
                        jac[b, a] += w * grad[active[a]]
                if uniform:
                    ex *= r_ex
                    cw, sw = cw * r_cw - sw * r_sw, sw * r_cw + cw * r_sw
                    ec *= r_ec
                    ct0, st0 = ct0 * r_ct - st0 * r_st, st0 * r_ct + ct0 * r_st
                    ea *= r_ea
                    eb *= r_eb
                    ev *= r_ev
                    cv, sv = cv * r_cv - sv * r_sv, sv * r_cv + cv * r_sv
                    ey *= r_ey
                    cy, sy = cy * r_cy - sy * r_sy, sy * r_cy + cy * r_sy
    return mu, jac


@dataclass(frozen=True)
class LossSpectrum:
    """Lost-muon coincidence spectrum ℓ(t), turned into the normalised L(t) of Λ(t) = 1 − k L(t).

    L(t) = ∫_{t0}^{t} ℓ(t') e^{t'/γτ} dt' / ∫_{t0}^{t_end} ℓ(t') e^{t'/γτ} dt' with ℓ constant within
    each bin of the spectrum (t0, t_end: its first and last edge), so k_loss is the fractional
    muon loss Λ deficit at t_end. L = 0 before t0 and 1 after t_end.

    Attributes
    ----------
    edges_us : numpy.ndarray
        Bin edges of the spectrum in μs.
    counts : numpy.ndarray
        Lost-muon coincidences per bin (non-negative, not all zero).
    gamma_tau_us : float
        γτ in μs used in the weight e^{t/γτ} (the ring's design value).
    """

    edges_us: np.ndarray
    counts: np.ndarray
    gamma_tau_us: float

    def __post_init__(self):
        """Check the spectrum and store its edges (μs) and counts as float arrays."""
        e = np.asarray(self.edges_us, dtype=float)
        c = np.asarray(self.counts, dtype=float)
        if e.ndim != 1 or c.ndim != 1 or e.size != c.size + 1 or not np.all(np.diff(e) > 0.0):
            raise InputError(f"lost-muon spectrum: need increasing edges, one more than counts, got {e.shape}, {c.shape}")
        if not (np.all(np.isfinite(c)) and np.all(c >= 0.0) and c.sum() > 0.0):
            raise InputError("lost-muon spectrum: counts must be finite, non-negative and not all zero")
        if not (math.isfinite(self.gamma_tau_us) and self.gamma_tau_us > 0.0):
            raise ConfigError(f"lost-muon spectrum: gamma_tau_us must be > 0, got {self.gamma_tau_us!r}")
        object.__setattr__(self, "edges_us", e)
        object.__setattr__(self, "counts", c)

    def cumulative(self, t_us) -> np.ndarray:
        """L(t) at the times ``t_us`` (μs), between 0 and 1."""
        e, tau = self.edges_us, self.gamma_tau_us
        t = np.clip(np.asarray(t_us, dtype=float), e[0], e[-1])
        density = self.counts / np.diff(e)  # ℓ per μs in each bin
        ref = e[0]  # factor e^{-ref/τ} out of every integral to keep the exponentials small
        grow = np.exp((e - ref) / tau)
        at_edges = np.concatenate([[0.0], np.cumsum(density * tau * np.diff(grow))])
        i = np.clip(np.searchsorted(e, t, side="right") - 1, 0, e.size - 2)
        partial = density[i] * tau * (np.exp((t - ref) / tau) - grow[i])
        return (at_edges[i] + partial) / at_edges[-1]


def gauss_nodes(edges_us, nodes_per_bin: int = NODES_PER_BIN) -> tuple[np.ndarray, np.ndarray]:
    """Gauss–Legendre nodes (μs) and weights (μs) in each bin, each of shape (bins, nodes_per_bin)."""
    e = np.asarray(edges_us, dtype=float)
    x, w = np.polynomial.legendre.leggauss(nodes_per_bin)
    half = 0.5 * np.diff(e)
    nodes = (e[:-1] + half)[:, None] + half[:, None] * x[None, :]
    return np.ascontiguousarray(nodes), np.ascontiguousarray(half[:, None] * w[None, :])


class BinnedModel:
    """A model's expected bin contents and Jacobian on fixed bins, evaluated by the compiled kernel.

    Parameters
    ----------
    model : Model
        The fit function.
    edges_us : array_like
        Bin edges in μs.
    omega_ref_rad_per_us : float
        ω_ref in rad/μs (ω = ω_ref(1 + R·1e-6)).
    loss : LossSpectrum, optional
        Required when the model has the ``loss`` term.
    shift_us : float
        The bins are evaluated at ``edges_us + shift_us`` (R-method shifted subsets).
    """

    def __init__(self, model: Model, edges_us, omega_ref_rad_per_us: float, loss: LossSpectrum | None = None, shift_us: float = 0.0):
        if "loss" in model.terms and loss is None:
            raise ConfigError(f"model {model.name}: the loss term needs a lost-muon spectrum")
        self.model = model
        self.omega_ref_rad_per_us = float(omega_ref_rad_per_us)
        e = np.asarray(edges_us, dtype=float) + shift_us
        self.nodes, self.weights = gauss_nodes(e)
        width = np.diff(e)
        self.uniform = bool(np.all(np.abs(width - width[0]) <= 1e-9 * width[0]))
        self.loss_at_nodes = loss.cumulative(self.nodes) if loss is not None else np.zeros_like(self.nodes)
        self.flags = model.flags

    def expected(self, p_full: np.ndarray) -> np.ndarray:
        """Return the expected content of each bin for the full parameter vector ``p_full``."""
        mu, _ = _binned(self.nodes, self.weights, p_full, self.omega_ref_rad_per_us, self.flags, self.loss_at_nodes, np.zeros(0, dtype=np.int64), False, self.uniform)
        return mu

    def expected_and_jacobian(self, p_full: np.ndarray, active: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return the expected contents and their derivatives (bins × len(active)) w.r.t. the ``active`` full indices."""
        return _binned(self.nodes, self.weights, p_full, self.omega_ref_rad_per_us, self.flags, self.loss_at_nodes, active, True, self.uniform)


def rate(model: Model, t_us, values: Mapping[str, float], omega_ref_rad_per_us: float, loss: LossSpectrum | None = None) -> np.ndarray:
    """Return the model's rate in counts per μs at the times ``t_us`` (μs)."""
    if "loss" in model.terms and loss is None:
        raise ConfigError(f"model {model.name}: the loss term needs a lost-muon spectrum")
    t = np.ascontiguousarray(np.asarray(t_us, dtype=float).ravel())
    lam = loss.cumulative(t) if loss is not None else np.zeros_like(t)
    return _rate_points(t, model.full_vector(values), float(omega_ref_rad_per_us), model.flags, lam)


def expected_counts(model: Model, edges_us, values: Mapping[str, float], omega_ref_rad_per_us: float, loss: LossSpectrum | None = None) -> np.ndarray:
    """Return the expected counts per bin of ``edges_us`` (μs): the rate integrated over each bin."""
    return BinnedModel(model, edges_us, omega_ref_rad_per_us, loss).expected(model.full_vector(values))


def beam_frequencies_mhz(cyclotron_mhz: float, field_index: float) -> dict[str, float]:
    """Beam frequencies seen by detectors at fixed azimuth in bins of one turn (docs/physics.md §3), in MHz.

    f_cbo = f_c(1 − √(1−n)), f_y = √n f_c, f_vw = f_c(1 − 2√n) and 2 f_cbo (Fermilab aliases of the
    betatron frequencies). For other binning give the frequencies explicitly.
    """
    if not (math.isfinite(cyclotron_mhz) and cyclotron_mhz > 0.0 and 0.0 < field_index < 1.0):
        raise ConfigError(f"beam frequencies: need f_c > 0 and 0 < n < 1, got {cyclotron_mhz!r}, {field_index!r}")
    f_cbo = cyclotron_mhz * (1.0 - math.sqrt(1.0 - field_index))
    return {
        "cbo": f_cbo,
        "2cbo": 2.0 * f_cbo,
        "y": math.sqrt(field_index) * cyclotron_mhz,
        "vw": abs(cyclotron_mhz * (1.0 - 2.0 * math.sqrt(field_index))),
    }


def five_parameter(t_us, n0, tau_us, asym, omega_rad_per_us, phi):
    """Rate N(t) = N0 e^{-t/τ}[1 + A cos(ωt + φ)] in counts per μs.

    Parameters
    ----------
    t_us : array_like
        Times in μs.
    n0 : float
        Rate at t = 0 in counts per μs.
    tau_us : float
        Dilated lifetime γτ in μs.
    asym : float
        Asymmetry A (including the polarisation).
    omega_rad_per_us : float
        Anomalous precession frequency ω_a in rad/μs.
    phi : float
        Phase in rad.
    """
    t = np.asarray(t_us, dtype=float)
    return n0 * np.exp(-t / tau_us) * (1.0 + asym * np.cos(omega_rad_per_us * t + phi))


def five_parameter_binned(edges_us, n0, tau_us, asym, omega_rad_per_us, phi):
    """Return the expected counts per bin: the exact integral of :func:`five_parameter` over each bin.

    Uses ∫ e^{-t/τ} cos(ωt + φ) dt = e^{-t/τ}[ω sin(ωt + φ) − cos(ωt + φ)/τ] / (ω² + 1/τ²).

    Parameters
    ----------
    edges_us : array_like
        Increasing bin edges in μs (n + 1 values for n bins).
    n0, tau_us, asym, omega_rad_per_us, phi
        As in :func:`five_parameter`.

    Returns
    -------
    numpy.ndarray
        n expected counts.
    """
    e = np.asarray(edges_us, dtype=float)
    width = np.diff(e)
    decay = np.exp(-e / tau_us)
    # τ (e^{-a/τ} − e^{-b/τ}) written with expm1 so narrow bins keep full precision
    exp_part = -tau_us * decay[:-1] * np.expm1(-width / tau_us)
    theta = omega_rad_per_us * e + phi
    antiderivative = decay * (omega_rad_per_us * np.sin(theta) - np.cos(theta) / tau_us)
    osc_part = np.diff(antiderivative) / (omega_rad_per_us**2 + tau_us**-2)
    return n0 * (exp_part + asym * osc_part)
