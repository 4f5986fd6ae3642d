"""Named datasets: real MNIST/Fashion-MNIST, digits, and the order in which places are searched."""

import sys
from pathlib import Path

import numpy as np
import pytest

from steepest.data import datasets
from steepest.data.datasets import (
    describe_datasets,
    find_dataset,
    load_dataset,
    load_digits,
    load_mnist,
)
from steepest.data.idx import write_idx
from steepest.errors import ConfigError, DataError, DataNotFoundError


# ---------------------------------------------------------------- real data (needs $STEEPEST_DATA)

@pytest.mark.parametrize("kind, first_labels", [
    ("mnist", [5, 0, 4, 1, 9]),
    ("fashion-mnist", [9, 0, 0, 3, 0]),
])
def test_real_dataset_loads_with_known_shapes_and_labels(real_data_dir, kind, first_labels):
    d = load_mnist(real_data_dir / kind, kind=kind)
    assert d.X_train.shape == (60000, 784) and d.X_train.dtype == np.uint8
    assert d.y_train.shape == (60000,) and d.y_train.dtype == np.int64
    assert d.X_test.shape == (10000, 784) and d.y_test.shape == (10000,)
    assert list(d.y_train[:5]) == first_labels
    assert set(np.unique(d.y_train)) == set(range(10)) == set(np.unique(d.y_test))
    assert d.X_train.max() == 255 and d.X_train.min() == 0
    assert d.input_scale == pytest.approx(1 / 255) and d.image_shape == (28, 28)
    assert d.n_classes == 10 and len(d.class_names) == 10
    assert d.source == str(real_data_dir / kind)


def test_fashion_class_names(real_data_dir):
    d = load_mnist(real_data_dir / "fashion-mnist", kind="fashion-mnist")
    assert d.class_names[0] == "T-shirt/top" and d.class_names[9] == "Ankle boot"


def test_load_dataset_finds_real_data_through_env(real_data_dir, data_env, monkeypatch):
    monkeypatch.setenv("STEEPEST_DATA", str(real_data_dir))
    d = load_dataset("mnist", download=False)
    assert d.X_train.shape == (60000, 784) and list(d.y_train[:3]) == [5, 0, 4]
    assert not data_env.exists()  # nothing was downloaded or written to the cache


# ---------------------------------------------------------------- load_mnist on small files

def test_uncompressed_and_dotted_names_are_accepted(tmp_path, tiny_mnist):
    tiny_mnist(tmp_path / "a", gzip=False)
    tiny_mnist(tmp_path / "b", gzip=False, dotted=True)
    a, b = load_mnist(tmp_path / "a"), load_mnist(tmp_path / "b")
    np.testing.assert_array_equal(a.X_train, b.X_train)
    assert a.X_train.shape == (6, 784) and a.X_test.shape == (4, 784)


def test_missing_file_is_named(tmp_path, tiny_mnist):
    d = tiny_mnist(tmp_path / "m")
    (d / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataNotFoundError, match="missing t10k-labels-idx1-ubyte.gz"):
        load_mnist(d)


def test_image_label_count_mismatch(tmp_path, tiny_mnist):
    d = tiny_mnist(tmp_path / "m")
    write_idx(d / "train-labels-idx1-ubyte.gz", np.zeros(5, np.uint8), gzip=True)
    with pytest.raises(DataError, match="6 images but .* has 5 labels"):
        load_mnist(d)


def test_label_out_of_range(tmp_path, tiny_mnist):
    d = tiny_mnist(tmp_path / "m")
    write_idx(d / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 10, 3], np.uint8), gzip=True)
    with pytest.raises(DataError, match="label 10 at index 2"):
        load_mnist(d)


@pytest.mark.parametrize("images", [np.zeros((6, 27, 28), np.uint8), np.zeros((6, 784), np.uint8),
                                    np.zeros((6, 28, 28), np.float32)], ids=["27x28", "flat", "float"])
def test_wrong_image_format(tmp_path, tiny_mnist, images):
    d = tiny_mnist(tmp_path / "m")
    write_idx(d / "train-images-idx3-ubyte.gz", images, gzip=True)
    with pytest.raises(DataError, match=r"uint8 \(n, 28, 28\)"):
        load_mnist(d)


# ---------------------------------------------------------------- search order

def test_search_order_data_dir_then_env_then_cache_then_system(tmp_path, data_env, tiny_mnist, monkeypatch):
    tiny_mnist(tmp_path / "arg" / "mnist", n_train=3)
    tiny_mnist(tmp_path / "env" / "mnist", n_train=4)
    tiny_mnist(data_env / "mnist", n_train=5)
    tiny_mnist(tmp_path / "system" / "mnist", n_train=7)
    monkeypatch.setattr(datasets, "SYSTEM_DIRS", (tmp_path / "system",))
    monkeypatch.setenv("STEEPEST_DATA", str(tmp_path / "env"))

    def n_found(**kw):
        return len(load_dataset("mnist", download=False, **kw).y_train)

    assert n_found(data_dir=tmp_path / "arg") == 3
    assert n_found(data_dir=tmp_path / "empty") == 4   # data_dir lacks it: fall through
    assert n_found() == 4
    monkeypatch.delenv("STEEPEST_DATA")
    assert n_found() == 5
    assert n_found(cache_dir=tmp_path / "other-cache") == 7
    assert find_dataset("mnist", cache_dir=tmp_path / "other-cache", download=False) == \
        tmp_path / "system" / "mnist"


def test_data_dir_may_hold_the_files_directly(tmp_path, data_env, tiny_mnist):
    d = tiny_mnist(tmp_path / "flat", n_train=3)
    assert find_dataset("mnist", data_dir=d, download=False) == d
    assert load_dataset("mnist", data_dir=d, download=False).source == str(d)


def test_subdirectory_wins_over_files_in_data_dir(tmp_path, data_env, tiny_mnist):
    d = tiny_mnist(tmp_path / "both", n_train=3)
    tiny_mnist(d / "fashion-mnist", n_train=8)
    assert len(load_dataset("fashion-mnist", data_dir=d, download=False).y_train) == 8


def test_a_directory_the_user_named_with_some_files_missing_is_an_error_not_passed_over(
        tmp_path, data_env, tiny_mnist, monkeypatch):
    """It used to be skipped for the next copy found: a user who gave 1,000 images of their own trained on
    another copy's 60,000 without a word. The cache and system directories are still passed over."""
    tiny_mnist(tmp_path / "env" / "mnist", n_train=4)
    (tmp_path / "env" / "mnist" / "t10k-images-idx3-ubyte.gz").unlink()
    tiny_mnist(data_env / "mnist", n_train=5)
    monkeypatch.setenv("STEEPEST_DATA", str(tmp_path / "env"))
    with pytest.raises(DataError, match=r"env/mnist holds train-images-idx3-ubyte.gz, train-labels-idx1-"
                                                r"ubyte.gz, t10k-labels-idx1-ubyte.gz but not t10k-images-idx3-ubyte.gz"):
        load_dataset("mnist", download=False)
    with pytest.raises(DataError, match="but not t10k-images"):
        load_dataset("mnist", data_dir=tmp_path / "env", download=False)
    monkeypatch.delenv("STEEPEST_DATA")
    assert len(load_dataset("mnist", download=False).y_train) == 5


def test_not_found_without_download_says_how_to_supply(data_env, tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        find_dataset("fashion-mnist", data_dir=tmp_path / "nowhere", download=False)
    msg = str(e.value)
    for expected in ("data_dir=DIR", "STEEPEST_DATA", "fashion-mnist/", "load_dataset('digits')",
                     str(data_env / "fashion-mnist"), "train-images-idx3-ubyte.gz",
                     str(tmp_path / "nowhere")):
        assert expected in msg
    assert " --" not in msg        # raised from the library, the advice is in the library's terms


def test_found_data_is_not_downloaded(tmp_path, data_env, tiny_mnist, monkeypatch):
    from steepest.data import fetch

    def no_download(*a, **k):
        raise AssertionError("fetch must not be called when the data is present")

    monkeypatch.setattr(fetch, "fetch", no_download)
    tiny_mnist(data_env / "mnist")
    assert find_dataset("mnist", download=True) == data_env / "mnist"


def test_download_is_the_last_resort(data_env, monkeypatch, tiny_mnist):
    from steepest.data import fetch

    calls = []

    def fake_fetch(name, cache_dir, mirrors=None, progress=False):
        calls.append((name, cache_dir))
        return tiny_mnist(cache_dir / name, n_train=2)

    monkeypatch.setattr(fetch, "fetch", fake_fetch)
    assert len(load_dataset("mnist").y_train) == 2
    assert calls == [("mnist", data_env)]


@pytest.mark.parametrize("loader", [load_dataset, find_dataset])
def test_unknown_name_lists_known_ones(loader):
    with pytest.raises(ConfigError, match="unknown dataset 'cifar'.*mnist, fashion-mnist, digits"):
        loader("cifar")


def test_describe_datasets(tmp_path, data_env, tiny_mnist):
    tiny_mnist(tmp_path / "d" / "mnist", n_train=6, n_test=4)
    rows = {r["name"]: r for r in describe_datasets(data_dir=tmp_path / "d")}
    assert set(rows) == {"mnist", "fashion-mnist", "digits", "moons", "circles", "spirals", "xor"}
    assert rows["moons"]["found"] and rows["moons"]["n_train"] == 600
    m, f = rows["mnist"], rows["fashion-mnist"]
    assert m["found"] and m["path"] == str(tmp_path / "d" / "mnist")
    assert (m["n_train"], m["n_test"], m["image_shape"]) == (6, 4, (28, 28))
    assert m["bytes"] > 0
    assert not f["found"] and f["path"] is None and f["n_train"] is None
    assert f["fetch_from"].startswith("http") and f["cache"] == str(data_env / "fashion-mnist")
    assert rows["digits"]["found"] and rows["digits"]["n_train"] == 1437


# ---------------------------------------------------------------- digits

def test_digits_split_and_scale():
    d = load_digits()
    assert len(d.y_train) + len(d.y_test) == 1797
    assert d.X_train.shape == (1437, 64) and d.X_test.shape == (360, 64)
    assert d.X_train.dtype == np.uint8 and d.X_train.max() == 16
    assert d.input_scale == 1 / 16 and d.image_shape == (8, 8) and d.n_classes == 10
    assert set(np.unique(d.y_test)) == set(range(10))
    again = load_dataset("digits")
    np.testing.assert_array_equal(d.X_test, again.X_test)
    np.testing.assert_array_equal(d.y_train, again.y_train)


def test_digits_split_is_a_partition_of_sklearn_digits():
    from sklearn.datasets import load_digits as sk

    d, full = load_digits(), sk()

    def rows(X, y):
        return sorted(zip((x.tobytes() for x in X), y.tolist()))

    ours = rows(np.vstack([d.X_train, d.X_test]), np.concatenate([d.y_train, d.y_test]))
    assert ours == rows(full.data.astype(np.uint8), full.target)


def test_digits_without_sklearn_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn", None)
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(DataNotFoundError, match="scikit-learn"):
        load_digits()
    with pytest.raises(DataNotFoundError, match="pip install scikit-learn"):
        find_dataset("digits")


def test_a_split_without_images_is_refused_in_one_line_and_listed_as_unreadable(tmp_path, data_env, tiny_mnist):
    """0 test images (a header that says 0) raised NumPy's 'cannot reshape array of size 0'; `steepest
    datasets` listed the directory as found. Files whose counts disagree were listed as found too."""
    tiny_mnist(tmp_path / "d" / "mnist", n_train=6, n_test=0)
    with pytest.raises(DataError, match=r"t10k-images-idx3-ubyte.gz holds no images; download the dataset again"):
        load_dataset("mnist", data_dir=tmp_path / "d", download=False)
    rows = {r["name"]: r for r in describe_datasets(data_dir=tmp_path / "d")}
    assert "holds no images" in rows["mnist"]["error"]
    tiny_mnist(tmp_path / "e" / "mnist", n_train=6, n_test=4)
    (tmp_path / "e" / "mnist" / "t10k-labels-idx1-ubyte.gz").unlink()
    tiny_mnist(tmp_path / "f", n_train=6, n_test=3)
    import shutil

    shutil.copy(tmp_path / "f" / "t10k-labels-idx1-ubyte.gz", tmp_path / "e" / "mnist")
    rows = {r["name"]: r for r in describe_datasets(data_dir=tmp_path / "e")}
    assert "has 4 images but" in rows["mnist"]["error"] and "3 labels" in rows["mnist"]["error"]


_REAL_DATA = __import__("os").environ.get("STEEPEST_DATA")  # read before data_env hides it


def test_the_other_datasets_files_are_not_taken_for_this_one(tmp_path, data_env):
    """MNIST and Fashion-MNIST share file names and shapes: --dataset fashion-mnist --data-dir pointing at
    MNIST trained on digits under clothing names. Their labels files are known by SHA-256."""
    import shutil

    real = _REAL_DATA
    if not real or not (Path(real) / "mnist").is_dir():
        pytest.skip("needs the real MNIST files: set STEEPEST_DATA to a directory with mnist/")
    shutil.copytree(Path(real) / "mnist", tmp_path / "fashion-mnist")
    with pytest.raises(DataError, match="train-labels-idx1-ubyte.gz is mnist's train-labels-idx1-ubyte.gz, not "
                                        "fashion-mnist's"):
        load_dataset("fashion-mnist", data_dir=tmp_path, download=False)
