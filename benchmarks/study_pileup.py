"""Study: the fitted lifetime γτ and ω_a of the default Fermilab run, with and without pileup subtraction.

Simulates ``--seeds`` runs of the default size (fast mode) and fits each file twice through
:func:`workflows.fit_file.fit_file`: with the shadow-window subtraction (the default chain) and
without. Prints, per variant, the mean and spread of the pulls of γτ against the true γτ and of
ω_a against the true ω_a (the C_e and C_p shifts are < 0.001 of the ω_a error at this size), and
the mean shift between the two fits in units of the ω_a error.

    python benchmarks/study_pileup.py --seeds 20 --positrons 2000000
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np

from ringsim.config import load_config
from ringsim.rings import ring_kinematics
from ringsim.run_file import simulate_to_file
from workflows.fit_file import FitOptions, fit_file


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--positrons", type=int, default=2_000_000)
    args = parser.parse_args()
    cfg = load_config("fnal")
    kin = ring_kinematics(cfg)
    pulls: dict[str, dict[str, list[float]]] = {v: {"tau": [], "omega": []} for v in ("pileup subtracted", "not subtracted")}
    shifts = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(1, args.seeds + 1):
            path = Path(folder) / f"run{seed}.root"
            simulate_to_file(path, cfg, "fast", n_positrons=args.positrons, seed=seed, progress=False)
            fits = {}
            for variant, pileup in (("pileup subtracted", True), ("not subtracted", False)):
                fit = fit_file(FitOptions(files=(str(path),), seed=seed, pileup=pileup)).fit
                fits[variant] = fit
                pulls[variant]["tau"].append((fit.params["tau_us"] - kin.gamma_tau_us) / fit.errors["tau_us"])
                pulls[variant]["omega"].append((fit.omega_a - kin.omega_a_rad_per_us) / fit.omega_a_err)
            shifts.append((fits["pileup subtracted"].omega_a - fits["not subtracted"].omega_a) / fits["not subtracted"].omega_a_err)
            path.unlink()
            print(f"seed {seed:3d}: " + "  ".join(f"{v}: γτ pull {p['tau'][-1]:+.2f}, ω_a pull {p['omega'][-1]:+.2f}" for v, p in pulls.items()), flush=True)
    n = args.seeds
    print(f"\n{n} seeds × {args.positrons:.3g} positrons (fnal, fast mode); true γτ = {kin.gamma_tau_us:.4f} μs")
    for variant, p in pulls.items():
        for name, values in (("γτ", p["tau"]), ("ω_a", p["omega"])):
            v = np.asarray(values)
            print(f"{variant:>18}  {name:>3} pull: mean {v.mean():+.2f} ± {v.std(ddof=1) / math.sqrt(n):.2f}, spread {v.std(ddof=1):.2f}")
    s = np.asarray(shifts)
    print(f"ω_a shift (subtracted − not) / σ(ω_a): mean {s.mean():+.3f} ± {s.std(ddof=1) / math.sqrt(n):.3f}")


if __name__ == "__main__":
    main()
