"""Ctrl-C and SIGTERM: one line, status 130 or 143, finished blocks kept, the same command resumes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ringsim.cli import main
from ringsim.interrupts import Interrupted, deferred, install_handlers, restore_handlers


def test_a_signal_inside_a_kernel_waits_for_its_end():
    previous = install_handlers()
    try:
        with pytest.raises(Interrupted) as caught:
            with deferred():
                os.kill(os.getpid(), signal.SIGTERM)
                time.sleep(0.05)  # the handler has run: the signal is pending, not raised here
                reached_end_of_block = True
        assert reached_end_of_block and caught.value.signum == signal.SIGTERM
        with pytest.raises(Interrupted):
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)
    finally:
        restore_handlers(previous)


def _interrupt_after_first_block(argv, parts_glob, cwd, signum):
    """Start ``ringsim ARGV`` and send ``signum`` once a block file matching ``parts_glob`` exists."""
    env = dict(os.environ, CI="1")
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from ringsim.cli import main; sys.exit(main())", *argv], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 240
    while not list(cwd.glob(parts_glob)) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, f"finished before the first block was kept: {proc.communicate()}"
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=240)
    return proc.returncode, out, err


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_simulate_ends_with_one_line_and_keeps_its_blocks(tmp_path, signum):
    rc, _, err = _interrupt_after_first_block(["simulate", "--positrons", "3000000", "--seed", "2", "-o", "run.root"], ".run.root.parts/block-*.part", tmp_path, signum)
    assert rc == 128 + signum
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err and "SystemError" not in err
    assert ("SIGTERM" in lines[0]) == (signum == signal.SIGTERM)
    assert list(tmp_path.glob(".run.root.parts/block-*.part")) and not (tmp_path / "run.root").exists()


@pytest.mark.slow
def test_run_resumes_after_sigterm(tmp_path):
    argv = ["run", "--positrons", "400000", "--seed", "3", "-o", "out"]
    rc, _, err = _interrupt_after_first_block(argv, ".out.partial/.events.root.parts/block-*.part", tmp_path, signal.SIGTERM)
    assert rc == 143 and len(err.strip().splitlines()) == 1
    kept = sorted(p.name for p in tmp_path.glob(".out.partial/.events.root.parts/block-*.part"))
    assert kept
    os.chdir(tmp_path)
    assert main([*argv, "--json", "resumed.json"]) == 0
    assert not (tmp_path / ".out.partial").exists()
    resumed = json.loads((tmp_path / "resumed.json").read_text())
    assert main(["run", "--positrons", "400000", "--seed", "3", "-o", "again", "--json", "again.json"]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert resumed["omega_a"] == again["omega_a"] and resumed["a_mu"] == again["a_mu"]


def test_a_second_writer_of_one_output_is_refused_and_a_stale_lock_taken_over(tmp_path, capsys):
    target = tmp_path / "run.root"
    lock = tmp_path / ".run.root.lock"
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        lock.write_text(str(holder.pid))  # a live writer
        assert main(["simulate", "--positrons", "1000", "-o", str(target)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"process {holder.pid}" in err and not target.exists()
    finally:
        holder.kill()
        holder.wait()
    # its writer is gone: the lock is stale, taken over, and removed when the run ends
    assert main(["simulate", "--positrons", "1000", "-o", str(target)]) == 0
    assert target.exists() and not lock.exists()


def test_a_kept_block_with_flipped_bytes_is_made_again(tmp_path, capsys):
    import numpy as np

    import ringsim.run_parts as parts
    from ringsim.simulate import Block

    block = Block(0, {"time_ns": np.arange(64.0)}, {"fill": np.arange(3)}, None)
    part = parts.save_part(tmp_path, block)
    assert parts.load_part(part, "e.")["time_ns"].tolist() == list(range(64))
    raw = bytearray(part.read_bytes())
    raw[-100] ^= 0xFF  # one byte inside the arrays: sizes and header still consistent
    part.write_bytes(bytes(raw))
    assert parts._part_contents(part) is None
    (tmp_path / "request.json").write_text(json.dumps({"r": 1}))
    assert parts.finished_parts(tmp_path, {"r": 1}) == [] and not part.exists()
    assert "is damaged (size, header or checksum)" in capsys.readouterr().err


def test_a_full_disk_says_so_and_keeps_the_finished_blocks(tmp_path, monkeypatch, capsys):
    import errno

    import ringsim.run_file as rf

    real_save = rf.save_part

    def save_until_full(folder, block):
        if block.number >= 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(folder, block)

    monkeypatch.setattr(rf, "save_part", save_until_full)
    target = tmp_path / "full.root"
    assert main(["simulate", "--positrons", "150000", "--set", "run.muons_per_fill=4000", "-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "disk full" in err and "1 finished block(s) are kept" in err and ".full.root.parts" in err
    assert len(list((tmp_path / ".full.root.parts").glob("block-*.part"))) == 1 and not target.exists()


def test_a_second_scan_into_one_folder_is_refused(tmp_path, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / ".scan.lock").write_text(str(holder.pid))
        assert main(["scan", "fit_start", "--seeds", "1", "-o", str(tmp_path / "scan")]) == 2
        assert f"process {holder.pid}" in capsys.readouterr().err and not (tmp_path / "scan").exists()
    finally:
        holder.kill()
        holder.wait()
