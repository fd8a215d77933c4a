"""ω_a fit speed: compiled models with analytic gradients and MIGRAD versus scipy.optimize.

For the 5-, 13- and 22-parameter presets it fits a Poisson pseudo-histogram of ``--bins`` bins of
149.2 ns (generated from the model's own terms with CBO, vertical waist, vertical betatron and
losses) and prints, side by side:

- ``ours auto``: :func:`analysis.fitting.fit_wiggle` with automatic start values (five-parameter
  fit, FFT of residuals, staged release) — what ``ringsim fit`` runs;
- ``ours truth``: one MIGRAD from the true values;
- ``scipy truth``: ``scipy.optimize.minimize`` (L-BFGS-B, finite-difference gradient) of the same
  Poisson deviance, the model written with numpy (:func:`analysis.pseudo_data.toy_rate`) on the same
  3-node Gauss–Legendre bin integration, from the true values, parameters scaled by their errors;
- the ratio scipy/ours and the difference of the two ω_a in units of the error.

Then a ``--scan-points`` start-time scan (30.2 → 80 μs, each point started from the previous one)
of the 22-parameter model, ours versus the same loop of scipy fits. Wall-clock times, best of
``--repeats`` (after a warm-up that compiles the kernels); they share the machine with everything
else running on it.

Run: python benchmarks/bench_fit.py [--bins 4000] [--scan-points 50] [--repeats 3]
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
from scipy import optimize
from scipy.special import xlogy

from analysis import pseudo_data as toy
from analysis.fitting import fit_wiggle
from analysis.models import LossSpectrum, beam_frequencies_mhz, gauss_nodes, parse_model
from analysis.scans import start_time_scan

OMEGA_REF = 2.0 * math.pi * 0.2291
TAU = 64.4
BIN_US = 0.1492
START_US = 30.2
TRUTH = dict(
    N0=1.0, tau_us=TAU, A=0.37, R_ppm=12.0, phi=2.1, omega_cbo=2 * math.pi * 0.37, tau_cbo_us=150.0, A_cbo_N=0.008,
    phi_cbo_N=0.3, A_cbo_A=0.03, phi_cbo_A=1.0, A_cbo_phi=0.03, phi_cbo_phi=-0.5, omega_vw=2 * math.pi * 2.30,
    tau_vw_us=60.0, A_vw=0.02, phi_vw=0.1, omega_y=2 * math.pi * 2.20, tau_y_us=80.0, A_y=0.01, phi_y=-1.2,
    k_loss=0.02, loss_tau_us=30.0, loss_end_us=700.0,
)  # fmt: skip
N_WINDOW = 5e7


def _best(fn, repeats):
    best, out = math.inf, None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


class NumpyDeviance:
    """Poisson deviance of the numpy-written model on 3-node Gauss–Legendre bin integration."""

    def __init__(self, model, counts, edges, values, scale):
        self.model, self.counts = model, counts
        self.nodes, self.weights = gauss_nodes(edges)
        self.values, self.scale = dict(values), scale
        self.origin = np.array([values[k] for k in model.names])

    def params(self, x):
        return self.values | dict(zip(self.model.names, self.origin + x * self.scale))

    def __call__(self, x):
        mu = np.sum(toy.toy_rate(self.nodes, self.params(x), OMEGA_REF) * self.weights, axis=1)
        if not np.all(mu > 0):
            return 1e30
        return 2.0 * float(np.sum(mu - self.counts + xlogy(self.counts, self.counts / mu)))


def scipy_fit(model, counts, edges, start, errors):
    """L-BFGS-B from ``start`` with parameters in units of ``errors``, tolerances tight enough to
    reach the minimum found by MIGRAD (Δχ² ≪ 1); returns (R_ppm, values)."""
    scale = np.array([errors[k] for k in model.names])
    fixed = {k: TRUTH[k] for k in ("loss_tau_us", "loss_end_us")} if "loss" in model.terms else {}
    cost = NumpyDeviance(model, counts, edges, fixed | start, scale)
    res = optimize.minimize(cost, np.zeros(scale.size), method="L-BFGS-B", options={"maxiter": 20000, "maxfun": 10**7, "ftol": 1e-13, "gtol": 1e-7})
    best = cost.params(res.x)
    return best["R_ppm"], {k: best[k] for k in model.names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bins", type=int, default=4000)
    parser.add_argument("--scan-points", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    edges = START_US + BIN_US * np.arange(args.bins + 1)
    loss_edges = np.linspace(0.0, 700.0, 7001)
    loss = LossSpectrum(loss_edges, -np.diff(np.exp(-loss_edges / TRUTH["loss_tau_us"])), TAU)
    freqs = beam_frequencies_mhz(6.705, 0.108)
    rng = np.random.default_rng(1)
    print(f"{args.bins} bins of {BIN_US} us from {START_US} us, {N_WINDOW:.0e} positrons; wall-clock seconds, best of {args.repeats}")
    print(f"{'model':>6} {'params':>6} {'ours auto':>10} {'ours truth':>11} {'scipy truth':>12} {'scipy/ours':>11} {'Δω/σ':>8}")
    data = {}
    for name in ("5", "13", "22"):
        model = parse_model(name)
        truth = {k: v for k, v in TRUTH.items() if k in model.names or k.startswith("loss_")}
        mu = toy.bin_integrals(edges, lambda t, truth=truth: toy.toy_rate(t, truth, OMEGA_REF))
        n0 = N_WINDOW / mu.sum()
        counts = rng.poisson(mu * n0).astype(float)
        start = {k: TRUTH[k] for k in model.names} | {"N0": n0}
        kw = {"start_us": START_US, "end_us": edges[-1], "omega_ref_rad_per_us": OMEGA_REF, "tau_guess_us": TAU, "loss": loss if "loss" in model.terms else None, "frequencies_mhz": freqs}
        fit_wiggle(counts, edges, model, start=start, **kw)  # compile
        t_auto, auto = _best(lambda: fit_wiggle(counts, edges, model, **kw), args.repeats)
        t_truth, ours = _best(lambda: fit_wiggle(counts, edges, model, start=start, **kw), args.repeats)
        t_scipy, (r_scipy, _) = _best(lambda: scipy_fit(model, counts, edges, start, ours.errors), 1)
        print(f"{name:>6} {model.n_parameters:>6} {t_auto:>10.3f} {t_truth:>11.3f} {t_scipy:>12.3f} {t_scipy / t_truth:>11.1f} {(r_scipy - ours.params['R_ppm']) / ours.errors['R_ppm']:>8.3f}")
        data[name] = (model, counts, start, ours, kw)

    model, counts, start, ours, kw = data["22"]
    starts = np.linspace(START_US, 80.0, args.scan_points)
    scan_kw = {k: v for k, v in kw.items() if k != "start_us" and k != "end_us"}
    t_scan, scan = _best(lambda: start_time_scan(counts, edges, starts, end_us=edges[-1], model=model, start=start, **scan_kw), args.repeats)

    def scipy_scan():
        values, out = dict(start), []
        for t0 in starts:
            sub = edges[edges >= t0 - 1e-9]
            i0 = edges.size - sub.size
            r, values = scipy_fit(model, counts[i0:], sub, values, ours.errors)
            out.append(r)
        return np.array(out)

    t_ref, r_ref = _best(scipy_scan, 1)
    r_ours = (scan.omega_a / OMEGA_REF - 1.0) * 1e6
    print(
        f"{args.scan_points}-point start-time scan, 22 parameters: ours {t_scan:.2f} s, scipy {t_ref:.2f} s, ratio {t_ref / t_scan:.1f}; "
        f"max |ΔR| {np.max(np.abs(r_ref - r_ours)):.3f} ppm (σ_R {ours.errors['R_ppm']:.2f} ppm)"
    )


if __name__ == "__main__":
    main()
