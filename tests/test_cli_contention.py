"""Short CI versions of reliability/contention.py: two resumes at once, and a full disk under report.

The full campaign (10 rounds; every writing command on a full disk at five amounts of free space)
is ``python reliability/contention.py``; these run one round and one command through the same code.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "reliability"))
import contention  # noqa: E402

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="flock, SIGKILL and tmpfs are POSIX")


def test_two_resumes_at_once_one_trains_the_other_is_refused(tmp_path):
    failures = []
    data = contention.write_data(tmp_path / "syn.npz")
    r = contention.steepest("train", "--dataset", data, *contention.TRAIN, "--out", tmp_path / "whole")
    assert r.returncode == 0, r.stderr
    total = contention.one_round(1, data, tmp_path, contention.theta(tmp_path / "whole"), failures.append)
    assert not failures, failures
    if "skipped" in total:
        pytest.skip("the run ended before its first checkpoint could be killed")
    assert total["processes"] == 3 and total["refused"] == 2


def test_a_full_disk_never_truncates_a_report(tmp_path):
    failures = []
    data = contention.write_data(tmp_path / "syn.npz")
    tally = contention.full_disk(None, data, tmp_path, failures.append, only=("report", "landscape"),
                                 free_list=(0, 65536))
    assert not failures, failures
    assert tally["refused"] >= 2, tally


def test_a_full_disk_under_export_and_the_labs_save(tmp_path):
    """`steepest export` and the lab's save (POST /api/save to the real server) on a full disk: one line
    naming the file, or a whole file; a refused save leaves no run directory behind."""
    pytest.importorskip("starlette")
    failures = []
    data = contention.write_data(tmp_path / "syn.npz")
    tally = contention.full_disk(None, data, tmp_path, failures.append, only=("export", "lab save"),
                                 free_list=(0, 65536))
    assert not failures, failures
    assert tally["runs"] == 4 and tally["refused"] >= 2 and tally["completed"] >= 1, tally
