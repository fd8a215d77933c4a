"""Write the synthetic field data sets of data_samples/ (one run period per ring, default settings).

Run from the repository root: ``python data_samples/make_field_samples.py``. The files are
reproducible (fixed seeds) and are read by tests/test_field.py and the README tour:

- ``fnal_field.npz``: 9 days, trolley maps every 3 days (17 probes × 72 azimuths), 378 fixed probes
  read every 2 h, 8 calibration swaps per probe; the configured (uniform) 1.4513 T field with a
  drift whose run average vanishes.
- ``jparc_field.npz``: the J-PARC mapping-probe scheme: maps before and after the run, 48 fixed probes;
  the 3 T field with its weak-focusing gradient n = 1.5e-4.
"""

from __future__ import annotations

from pathlib import Path

from calibration.field_maps import save_field_dataset, synthetic_field_dataset
from ringsim.config import load_config

SEEDS = {"fnal": 2024, "jparc": 2025}


def main() -> None:
    here = Path(__file__).resolve().parent
    for ring, seed in SEEDS.items():
        save_field_dataset(here / f"{ring}_field.npz", synthetic_field_dataset(load_config(ring), seed=seed))


if __name__ == "__main__":
    main()
