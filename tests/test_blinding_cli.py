"""``ringsim fit --blind``: every option of the fit keeps ω_a blinded.

Each case runs the same fit three ways on one small simulated file: blinded, unblinded with R free
(the true R and ω_a of every fit in the output: combined, per station, per scan point) and, when
the blinded run fixes R, unblinded with R fixed at the true value the blinded one stands for. The
blinded run's stdout, stderr, JSON file and the text drawn in its plots must contain no number equal, to
its printed precision, to a true R, ω_a or f_a, to ±ΔR, or to the blinding shift ω_ref·ΔR·1e-6 of ω_a.
ΔR is computed here with :mod:`analysis.blinding` only, to check that it is absent.
"""

import json
import math
import re

import pytest

from analysis import plots
from analysis.blinding import Blinder
from ringsim.cli import main
from ringsim.config import load_config
from ringsim.run_file import simulate_to_file

PHRASE = "muon g-2 blinding phrase for the option tests"
OMEGA_REF = 2.0 * math.pi * 0.2291  # rad/μs: FNAL ω_ref/2π = 0.2291 MHz, docs/physics.md §3
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+)(?:[eE][-+]?\d+)?|[-+]?\d+[eE][-+]?\d+")


def delta_r_ppm() -> float:
    """ΔR of PHRASE through the public API: the blinded R of a true frequency equal to ω_ref."""
    return Blinder(PHRASE, OMEGA_REF).r_from_omega(OMEGA_REF)


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("blind") / "run.root"
    cfg = load_config("fnal", overrides=["fastmodel.loss_fraction=0.05", "fastmodel.cbo_amplitude_m=0.005", "fastmodel.cbo_tau_us=150"])
    simulate_to_file(path, cfg, "fast", n_positrons=50_000, seed=4)  # with CBO and lost muons for models 9 and 5+loss
    return path


@pytest.fixture
def plot_texts(monkeypatch):
    """Every text drawn in the figures the fit saves (titles, labels, legends)."""
    from matplotlib.text import Text

    texts: list[str] = []
    save = plots._save

    def recording_save(fig, path):
        save(fig, path)
        texts.extend(t.get_text() for t in fig.findobj(Text))

    monkeypatch.setattr(plots, "_save", recording_save)
    return texts


def _values(node, keys=("R_ppm", "omega_a")) -> list[float]:
    """All numbers stored under ``keys`` anywhere in a JSON document (lists included), errors and correlations aside."""
    out = []
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("errors", "correlation"):
                continue
            if k in keys and isinstance(v, (int, float)):
                out.append(float(v))
            elif k in keys and isinstance(v, list):
                out += [float(x) for x in v if isinstance(x, (int, float))]
            else:
                out += _values(v, keys)
    elif isinstance(node, list):
        for v in node:
            out += _values(v, keys)
    return out


def _tolerance(token: str) -> float:
    """Half a unit of the last printed digit of ``token`` (its printed precision)."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 0.5 * 10.0 ** (-decimals + (int(exponent) if exponent else 0))


def _leaks(text: str, forbidden: list[tuple[float, float]]) -> list[str]:
    """Numbers in ``text`` (with a decimal point or exponent) that show a forbidden value.

    ``forbidden`` holds (value, scale) pairs: a number shows the value when it equals it to its
    printed precision and that precision is finer than a tenth of ``scale`` (the blinding shift of
    that kind of number), so "0.0" does not show a shift of 1e-5 rad/μs.
    """
    found = []
    for token in NUMBER.findall(text):
        x = float(token)
        tol = max(_tolerance(token), 1e-12 * abs(x))
        found += [f"{token} ≈ {f!r}" for f, scale in forbidden if abs(x - f) <= tol and tol < 0.1 * scale]
    return found


def _fit(sample, tmp_path, tag, args, capsys) -> tuple[dict, str]:
    out = tmp_path / f"{tag}.json"
    capsys.readouterr()
    assert main(["fit", str(sample), *args, "--json", str(out)]) == 0
    printed = capsys.readouterr()
    return json.loads(out.read_text()), "\n".join((printed.out, printed.err, out.read_text()))


def _plot_args(tmp_path, *options):
    return [x for o in options for x in (f"--{o}", str(tmp_path / f"{o}.png"))]


CASES = {
    "T": [],
    "A": ["--method", "A"],
    "A-michel": ["--method", "A", "--a-weights", "michel"],
    "Q": ["--method", "Q"],
    "R": ["--method", "R"],
    "threshold": ["--threshold", "1500"],
    "window": ["--start", "40", "--end", "500"],
    "per-station": ["--per-station", "--selection", "calo < 3"],
    "pileup": ["--pileup"],
    "hist": ["--hist", "hist/calo_00"],
    "hist-Q": ["--hist", "hist/calo_00", "--method", "Q"],
    "fix-tau": ["--fix", "tau_us=64.4"],
    "model-9": ["--model", "9", "--fix", "tau_cbo_us=150", "--frequencies", "cbo=0.37", "--ring", "fnal"],
    "loss": ["--model", "5+loss", "--loss-coincidences"],
    "gain-seed": ["--gain", "0.05,30", "--seed", "3"],
    "pileup-options": ["--pileup", "--dead-time", "4", "--shadow-gap", "12", "--shadow-window", "4"],
    "layout": ["--tree", "events", "--time-branch", "time_ns", "--energy-branch", "energy_mev", "--calo-branch", "calo", "--time-unit", "ns", "--energy-unit", "MeV"],
    "R-per-station": ["--method", "R", "--per-station", "--selection", "calo < 3"],
    "scan-start": ["--scan-start", "30.2,40,60"],
    "scan-end": ["--scan-end", "650,500,400"],
    "plots": "plot residual-plot correlation-plot pulls-plot",
    "R-plots": "plot residual-plot pulls-plot",
    "scan-plot": "scan-plot",
}


def _case_args(name, tmp_path) -> list[str]:
    spec = CASES[name]
    if isinstance(spec, list):
        return spec
    head = ["--method", "R"] if name == "R-plots" else ["--scan-start", "30.2,40,60"] if name == "scan-plot" else []
    return head + _plot_args(tmp_path, *spec.split())


# options whose fits take a fixed R through their own path (methods, stations, histograms, other fixed
# parameters, beam terms, loss, scans, plots); the others only change the histogram
FIXED_ALSO = ("T", "A", "Q", "R", "per-station", "hist", "fix-tau", "model-9", "loss", "scan-start", "scan-end", "plots")
RUNS = [(name, None) for name in CASES] + [(name, 0.0) for name in FIXED_ALSO] + [("R", 3.5)]


def _without_plots(args: list[str]) -> list[str]:
    """``args`` less the plot options (the unblinded comparison runs draw nothing)."""
    keep, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a.endswith("-plot") or a == "--plot":
            skip = True
        else:
            keep.append(a)
    return keep


def _with_fixed_r(args: list[str], r_ppm: float | None) -> list[str]:
    """``args`` with R_ppm added to their --fix (or a new --fix); unchanged for ``None``."""
    if r_ppm is None:
        return list(args)
    if "--fix" not in args:
        return [*args, "--fix", f"R_ppm={r_ppm!r}"]
    i = args.index("--fix") + 1
    return [*args[:i], f"{args[i]},R_ppm={r_ppm!r}", *args[i + 1 :]]


@pytest.mark.parametrize(("name", "fix_r_ppm"), RUNS, ids=[f"{n}-{'free' if f is None else f'fix{f:g}'}" for n, f in RUNS])
def test_blinded_fit_reveals_no_true_value(sample, tmp_path, capsys, plot_texts, name, fix_r_ppm):
    dr = delta_r_ppm()
    assert 5.0 < abs(dr) < 30.0  # a phrase whose offset is not confused with a small number
    args = _case_args(name, tmp_path)
    truth, _ = _fit(sample, tmp_path, "truth", [*_without_plots(args), "--unblind", "--force"], capsys)
    plot_texts.clear()
    fix = _with_fixed_r(args, fix_r_ppm)
    blinded, text = _fit(sample, tmp_path, "blinded", [*fix, "--blind", PHRASE, "--force"], capsys)

    assert blinded["blinded"] is True and truth["blinded"] is False
    if fix_r_ppm is None:
        assert blinded["R_ppm"] - truth["R_ppm"] == pytest.approx(dr, abs=1e-6)
        assert blinded["chi2"] == pytest.approx(truth["chi2"], rel=1e-9)
    else:
        # the fixed R is a blinded R: the same fit as an unblinded one fixed at R − ΔR
        assert blinded["R_ppm"] == pytest.approx(fix_r_ppm, abs=1e-12) and blinded["params"]["R_ppm"] == blinded["R_ppm"]
        same, _ = _fit(sample, tmp_path, "fixed-true", [*_with_fixed_r(_without_plots(args), fix_r_ppm - dr), "--unblind", "--force"], capsys)
        assert blinded["chi2"] == pytest.approx(same["chi2"], rel=1e-7)
        assert same["R_ppm"] == pytest.approx(fix_r_ppm - dr, abs=1e-9)
    shift = abs(OMEGA_REF * dr * 1e-6)
    r_scale = abs(dr)
    forbidden = [(r, r_scale) for r in _values(truth, ("R_ppm",))] + [(w, shift) for w in _values(truth, ("omega_a",))]
    forbidden += [(w / (2.0 * math.pi), shift / (2.0 * math.pi)) for w in _values(truth, ("omega_a",))]  # f_a in MHz
    forbidden += [(dr, r_scale), (-dr, r_scale), (shift, shift), (-shift, shift)]
    leaks = _leaks(text + "\n".join(plot_texts), forbidden)
    assert not leaks, f"{name}: blinded output shows true values: {leaks[:5]}"
    if not isinstance(CASES[name], list):
        assert plot_texts  # the plots were drawn and their text read


def test_a_fixed_blinded_r_of_zero_is_not_the_offset(sample, tmp_path, capsys):
    """The issue's command: --blind P --fix R_ppm=0 once reported R_ppm = ΔR."""
    blinded, text = _fit(sample, tmp_path, "b", ["--blind", PHRASE, "--fix", "R_ppm=0"], capsys)
    assert blinded["R_ppm"] == 0.0 and blinded["omega_a"] == pytest.approx(OMEGA_REF, rel=1e-12)
    assert not _leaks(text, [(delta_r_ppm(), abs(delta_r_ppm())), (-delta_r_ppm(), abs(delta_r_ppm()))])


def test_the_leak_check_sees_a_printed_true_value():
    """The checker flags a value printed to a precision that tells it from the blinded one, and only then."""
    assert _leaks("R_ppm = 53.82 ppm", [(53.8200586, 8.05)])
    assert _leaks('"omega_a": 1.4393409799669117', [(1.4393409799669117, 1.16e-5)])
    assert _leaks("blinded ω_a = 1.4393410 ± 0.0005640 rad/μs", [(1.4393409799669117, 1.16e-5)])
    assert not _leaks("χ²/ndf = 0.0/12", [(1.16e-5, 1.16e-5)])
    assert not _leaks("f_a = 0.229 MHz", [(0.2290742, 1.85e-6)])
