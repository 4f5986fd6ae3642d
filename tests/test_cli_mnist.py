"""The README's main command (the Makefile's `run` target) on real MNIST."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Exactly the Makefile's `run` target.
MAKE_RUN = ["train", "--dataset", "mnist", "--fallback", "digits", "--hidden", "128", "64", "--activation", "relu",
            "--init", "he", "--optimizer", "momentum", "--lr", "0.05", "--momentum", "0.9", "--batch-size", "128",
            "--epochs", "5", "--seed", "0"]


def test_make_run_command_matches_the_makefile():
    makefile = Path(__file__).resolve().parents[1] / "Makefile"
    if not makefile.is_file():
        pytest.skip("no Makefile beside the tests")
    text = makefile.read_text().replace("\\\n", " ")
    line = next(line for line in text.splitlines() if "steepest train" in line)
    assert line.split("steepest", 1)[1].split() == MAKE_RUN


@pytest.mark.slow
def test_make_run_reaches_97_percent_on_mnist(tmp_path):
    data = os.environ.get("STEEPEST_DATA")
    if not data or not (Path(data) / "mnist").is_dir():
        pytest.skip("real MNIST not available: set STEEPEST_DATA to a directory with mnist/")
    r = subprocess.run([sys.executable, "-m", "steepest", *MAKE_RUN], capture_output=True, text=True,
                       cwd=tmp_path, timeout=1800)
    assert r.returncode == 0, r.stderr
    m = re.search(r"test accuracy (\d+\.\d+)% \(mnist, 10000 images\) — model saved to (\S+)", r.stdout)
    assert m, r.stdout
    assert "fall" not in r.stdout and "instead" not in r.stdout  # MNIST was found, no fallback
    acc, model = float(m.group(1)), tmp_path / m.group(2)
    assert acc >= 97.0
    assert len(re.findall(r"^epoch +\d/5 ", r.stdout, flags=re.M)) == 5
    e = subprocess.run([sys.executable, "-m", "steepest", "evaluate", model, "--json"], capture_output=True,
                       text=True, timeout=600)
    assert e.returncode == 0, e.stderr
    assert f"{100 * json.loads(e.stdout)['accuracy']:.2f}" == m.group(1)
