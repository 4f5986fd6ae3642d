"""Shared fixtures. Data fixtures: real datasets (via $STEEPEST_DATA) and tiny fake ones."""

import contextlib
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest


@pytest.fixture
def real_data_dir() -> Path:
    """$STEEPEST_DATA, the directory with mnist/ and fashion-mnist/; skip the test if unset."""
    env = os.environ.get("STEEPEST_DATA")
    if not env or not Path(env).is_dir():
        pytest.skip("real datasets not available: set STEEPEST_DATA to a directory with mnist/ and fashion-mnist/")
    return Path(env)


@pytest.fixture
def data_env(tmp_path, monkeypatch):
    """Isolate dataset lookup: no $STEEPEST_DATA/$STEEPEST_MIRRORS, a fresh cache, no system dirs.

    Returns the cache root ($STEEPEST_CACHE), which starts empty.
    """
    from steepest.data import datasets

    for var in ("STEEPEST_DATA", "STEEPEST_MIRRORS"):
        monkeypatch.delenv(var, raising=False)
    cache = tmp_path / "cache"
    monkeypatch.setenv("STEEPEST_CACHE", str(cache))
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", ())
    return cache


def write_tiny_mnist(directory, n_train=6, n_test=4, seed=0, gzip=True, dotted=False):
    """Write a small, valid MNIST-format dataset (four IDX files) into ``directory``."""
    from steepest.data.idx import write_idx

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": rng.integers(0, 10, n_train, dtype=np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    for stem, a in arrays.items():
        name = stem.replace("-idx", ".idx") if dotted else stem
        write_idx(directory / (name + (".gz" if gzip else "")), a, gzip=gzip)
    return directory


@pytest.fixture
def tiny_mnist():
    """The function write_tiny_mnist(directory, n_train=6, n_test=4, ...)."""
    return write_tiny_mnist


@pytest.fixture
def readonly_dir(tmp_path):
    """A directory nobody can write into, root included (chattr +i), holding keep.txt."""
    d = tmp_path / "ro"
    d.mkdir()
    (d / "keep.txt").write_text("precious")
    with _read_only(d):
        yield d


@pytest.fixture
def read_only():
    """``with read_only(d):`` — the existing directory ``d`` unwritable for everyone, root included, inside
    the block (the test is skipped where that cannot be done)."""
    return _read_only


@contextlib.contextmanager
def _read_only(d):
    if os.geteuid() == 0:
        if subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode != 0:
            pytest.skip("running as root without chattr +i: cannot make a read-only directory")
        undo = ["chattr", "-i", str(d)]
    else:
        d.chmod(0o555)
        undo = ["chmod", "755", str(d)]
    try:
        try:
            (d / "probe").write_text("")
            pytest.skip("this file system ignores read-only directories")
        except OSError:
            pass
        yield d
    finally:
        subprocess.run(undo, check=True)


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's bundled 8×8 digits as a steepest Dataset (one load per test module, as before)."""
    from steepest.data import load_dataset

    return load_dataset("digits")
