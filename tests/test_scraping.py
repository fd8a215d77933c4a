"""ESQ voltage during the fill: scraping (closed orbit against the analytic shift, losses, validation) and the RC recovery (tune and CBO frequency drift)."""

import math

import numpy as np
import pytest

from ringsim.beam import Beam, initial_states, muon_charge_over_mass, sample_beam
from ringsim.config import load_config
from ringsim.constants import SPEED_OF_LIGHT_M_PER_S, codata
from ringsim.errors import ConfigError
from ringsim.ring_fields import needs_fields_at, ring_parameters
from ringsim.rings import ring_kinematics
from ringsim.tracker import radial_vertical_offsets_m, track_recorded, track_to_times

Q_OVER_M = muon_charge_over_mass()


def _period_s(cfg):
    # T_c = 2π γ m/(eB) from the constants, independently of ringsim.rings
    p_over_mc = SPEED_OF_LIGHT_M_PER_S * cfg.ring.field_t * cfg.ring.radius_m * 1e-6 / codata().muon_mass_mev
    return 2 * math.pi * math.sqrt(1 + p_over_mc**2) / (Q_OVER_M * cfg.ring.field_t)


def test_scraping_displaces_the_closed_orbit_by_the_analytic_amount_then_it_returns():
    """Continuous ESQ with the field centre at (x_s, y_s): E_r = κ(x − x_s), E_y = −κ(y − y_s).

    Linear motion in s (κ = nβcB₀/R₀; the magnetic field focuses radially by 1/R₀², the
    electric quadrupole defocuses radially and focuses vertically by n/R₀²):
        x″ = −x/R₀² + n(x − x_s)/R₀²  →  closed orbit x_co = −n x_s/(1 − n)
        y″ = −n(y − y_s)/R₀²           →  closed orbit y_co = y_s
    (the uniform part −κx_s of E_r pushes the beam away from the displaced centre). A muon started
    on the design orbit oscillates about (x_co, y_co); its time average over many betatron periods
    is the closed orbit. After the ramp-back the centre is (0, 0) again.
    """
    x_s, y_s, hold_us, ramp_us = 0.006, 0.004, 20.0, 10.0
    cfg = load_config(
        "fnal",
        overrides=[
            "esq.model='continuous'",
            "kicker.enabled=false",
            "collimators.azimuth_deg=[]",
            "ring.aperture_radius_m=0.2",
            f"esq.scrape_x_m={x_s}",
            f"esq.scrape_y_m={y_s}",
            f"esq.scrape_us={hold_us}",
            f"esq.scrape_ramp_us={ramp_us}",
        ],
    )
    kin = ring_kinematics(cfg)
    ring = ring_parameters(cfg, kin)
    assert needs_fields_at(ring)
    z = np.zeros(1)
    steps, every, turns = 64, 4, 450
    rec = track_recorded(initial_states(cfg, kin, Beam(z, z, z, z, z, z, z)), turns * steps, _period_s(cfg) / steps, every, ring, Q_OVER_M, cfg.muon.a_mu, 0.0)
    x, y = radial_vertical_offsets_m(rec[0, :, :3], cfg.ring.radius_m)
    t_us = rec[0, :, 9] * 1e6
    n = cfg.ring.field_index
    during = (t_us > 1.0) & (t_us < hold_us)
    after = t_us > hold_us + ramp_us + 5.0
    assert x[during].mean() == pytest.approx(-n * x_s / (1 - n), rel=0.01)
    assert y[during].mean() == pytest.approx(y_s, rel=0.01)
    assert abs(x[after].mean()) < 0.02 * n * x_s / (1 - n)
    assert abs(y[after].mean()) < 0.02 * y_s
    # unscraped reference: the same muon stays on the design orbit
    plain = ring_parameters(load_config("fnal", overrides=["esq.model='continuous'", "kicker.enabled=false", "collimators.azimuth_deg=[]"]), kin)
    rec0 = track_recorded(initial_states(cfg, kin, Beam(z, z, z, z, z, z, z)), 20 * steps, _period_s(cfg) / steps, every, plain, Q_OVER_M, cfg.muon.a_mu, 0.0)
    assert np.max(np.abs(radial_vertical_offsets_m(rec0[0, :, :3], cfg.ring.radius_m)[1])) == 0.0


def test_scraping_pushes_muons_into_the_collimators_during_the_window():
    hold_us, ramp_us = 5.0, 3.0
    base = ["kicker.enabled=false"]  # the preset's discrete ESQ and 45 mm collimators
    beam = sample_beam(load_config("fnal"), 1200, np.random.default_rng(11))
    lost = {}
    for label, extra in (("off", []), ("on", ["esq.scrape_x_m=-0.01", "esq.scrape_y_m=0.008", f"esq.scrape_us={hold_us}", f"esq.scrape_ramp_us={ramp_us}"])):
        cfg = load_config("fnal", overrides=base + extra)
        kin = ring_kinematics(cfg)
        period = _period_s(cfg)
        t_loss = track_to_times(initial_states(cfg, kin, beam), np.full(1200, 20e-6), period / 32, ring_parameters(cfg, kin), Q_OVER_M, cfg.muon.a_mu, 0.0)
        t_loss_us = t_loss * 1e6 - beam.t0_ns * 1e-3  # since each muon's start
        lost[label] = (np.mean(t_loss_us < hold_us + ramp_us), np.mean(t_loss_us >= hold_us + ramp_us + 1.0))
    # the displaced centre drives the beam edge into the collimators during the window ...
    assert lost["on"][0] > lost["off"][0] + 0.05
    # ... and once it is restored the scraped beam fits the aperture (no more than without scraping)
    assert lost["on"][1] <= lost["off"][1] + 0.005


def test_scraping_configuration_is_validated():
    with pytest.raises(ConfigError, match="esq.scrape_x_m"):
        load_config("jparc", overrides=["esq.scrape_x_m=0.01"])  # no ESQs to displace
    with pytest.raises(ConfigError, match="esq.scrape_us"):
        load_config("fnal", overrides=["esq.scrape_us=-1.0"])
    with pytest.raises(ConfigError, match="esq.scrape_ramp_us"):
        load_config("fnal", overrides=["esq.scrape_ramp_us='slow'"])
    # off in the preset: the fast static path is kept
    cfg = load_config("fnal")
    assert not needs_fields_at(ring_parameters(cfg, ring_kinematics(cfg)))


def test_rc_recovery_makes_the_radial_tune_and_the_cbo_frequency_drift():
    """Continuous ESQ whose voltage recovers, κ(t) = κ₀(1 − f e^{−t/τ}): the field index seen at
    time t is n(1 − f e^{−t/τ}), so the radial tune ν_x(t) = √(1 − n(t)) falls towards √(1 − n) and
    the CBO frequency f_c(1 − ν_x) seen by a fixed detector rises during the fill. The local tune of
    a muon's radial oscillation, fitted in windows of 20 turns, follows ν_x at the window centre."""
    from scipy.optimize import curve_fit

    frac, tau_us = 0.3, 8.0
    cfg = load_config("fnal", overrides=["esq.model='continuous'", "kicker.enabled=false", "collimators.azimuth_deg=[]", f"esq.rc_fraction={frac}", f"esq.rc_tau_us={tau_us}"])
    kin = ring_kinematics(cfg)
    n, period = cfg.ring.field_index, _period_s(cfg)
    one = np.ones(1)
    muon = initial_states(cfg, kin, Beam(0 * one, 0 * one, 0.005 * one, 0 * one, 0 * one, 0 * one, 0 * one))
    steps, turns = 32, 300
    rec = track_recorded(muon, turns * steps, period / steps, 1, ring_parameters(cfg, kin), Q_OVER_M, cfg.muon.a_mu, 0.0)[0]
    x, _ = radial_vertical_offsets_m(rec[:, :3], cfg.ring.radius_m)
    theta = 2 * math.pi * np.arange(1, x.size + 1) / steps  # turn angle of each record

    def wave(th, a, b, c, nu):
        return a * np.cos(nu * th) + b * np.sin(nu * th) + c

    tunes, expected = [], []
    for first in (0, 40, 120, 280):
        sel = slice(first * steps, (first + 20) * steps)
        (_, _, _, nu), _ = curve_fit(wave, theta[sel] - theta[sel][0], x[sel], p0=[0.005, 0.0, 0.0, math.sqrt(1 - n)])
        t_us = (first + 10) * period * 1e6
        tunes.append(nu)
        expected.append(math.sqrt(1 - n * (1 - frac * math.exp(-t_us / tau_us))))
    np.testing.assert_allclose(tunes, expected, atol=3e-4)  # the drift itself is 1.4e-2
    f_cbo = (1 - np.array(tunes)) / period
    assert f_cbo[-1] > 1.3 * f_cbo[0]  # the drift of the CBO frequency a fixed detector sees
