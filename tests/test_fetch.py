"""Downloading with verification, against a real local HTTP server serving the real files."""

import functools
import os
import shutil
import socket
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from steepest.data.datasets import load_dataset, load_mnist
from steepest.data.fetch import FILES, SHA256, fetch, missing_data_message, mirrors_for
from steepest.errors import ConfigError, DataNotFoundError


def sha256(path):
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A directory with good/ (the real MNIST files) and corrupt/ (one byte changed in each)."""
    env = os.environ.get("STEEPEST_DATA")
    if not env or not (Path(env) / "mnist").is_dir():
        pytest.skip("needs the real MNIST files: set STEEPEST_DATA to a directory with mnist/")
    root = tmp_path_factory.mktemp("site")
    (root / "good").mkdir()
    (root / "corrupt").mkdir()
    for f in FILES:
        shutil.copy(Path(env) / "mnist" / f, root / "good" / f)
        data = bytearray((root / "good" / f).read_bytes())
        data[len(data) // 2] ^= 0x01
        (root / "corrupt" / f).write_bytes(bytes(data))
    return root


class _Server:
    def __init__(self, directory):
        self.requests = []
        log = self.requests

        class Handler(SimpleHTTPRequestHandler):
            def log_message(self, fmt, *args):
                log.append(self.path)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(directory)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def server(site):
    s = _Server(site)
    yield s
    s.close()


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.delenv("STEEPEST_MIRRORS", raising=False)
    monkeypatch.delenv("STEEPEST_DATA", raising=False)
    return tmp_path / "cache"


@pytest.fixture
def closed_port_url():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens here now: connections are refused
    return f"http://127.0.0.1:{port}/"


def assert_complete(directory):
    assert sorted(p.name for p in directory.iterdir()) == sorted(FILES)  # no .part files left
    for f in FILES:
        assert sha256(directory / f) in SHA256["mnist"][f]


def test_success_lands_verified_files_in_cache(server, cache):
    out = fetch("mnist", cache, mirrors=[server.url + "/good/"], timeout=5)
    assert out == cache / "mnist"
    assert_complete(out)
    d = load_mnist(out)
    assert d.X_train.shape == (60000, 784) and list(d.y_train[:5]) == [5, 0, 4, 1, 9]


def test_corrupt_file_is_rejected_by_hash_and_next_mirror_used(server, cache):
    server.requests.clear()
    out = fetch("mnist", cache, mirrors=[server.url + "/corrupt", server.url + "/good"], timeout=5)
    assert_complete(out)
    for f in FILES:  # each file was tried on the corrupt mirror first
        assert server.requests.index(f"/corrupt/{f}") < server.requests.index(f"/good/{f}")


def test_failing_mirrors_fall_back(server, cache, closed_port_url):
    server.requests.clear()
    mirrors = [closed_port_url, server.url + "/no-such-dir/", server.url + "/good/"]
    out = fetch("mnist", cache, mirrors=mirrors, timeout=5)
    assert_complete(out)
    assert f"/no-such-dir/{FILES[0]}" in server.requests


def test_all_mirrors_fail_gives_one_helpful_error_and_leaves_nothing(server, cache, closed_port_url):
    mirrors = [closed_port_url, server.url + "/corrupt/", server.url + "/missing/"]
    with pytest.raises(DataNotFoundError) as e:
        fetch("mnist", cache, mirrors=mirrors, timeout=5)
    msg = str(e.value)
    assert "could not download mnist" in msg
    assert "cannot connect" in msg and "SHA-256 mismatch" in msg and "HTTP 404" in msg
    for way in ("load_dataset('mnist', data_dir=DIR)", "STEEPEST_DATA=DIR", "mnist/", str(cache / "mnist"),
                "load_dataset('digits')"):
        assert way in msg
    assert " --" not in msg                          # the library's advice names no command-line option
    assert (e.value.dataset, e.value.cache) == ("mnist", str(cache / "mnist")) and "could not" in e.value.reason
    assert e.value.__cause__ is None and e.value.__suppress_context__
    assert list((cache / "mnist").iterdir()) == []  # no partial, no corrupt file


def test_cached_good_files_are_not_downloaded_again(server, cache):
    fetch("mnist", cache, mirrors=[server.url + "/good/"], timeout=5)
    server.requests.clear()
    fetch("mnist", cache, mirrors=[server.url + "/good/"], timeout=5)
    assert server.requests == []


def test_corrupt_file_in_cache_is_replaced(server, cache):
    fetch("mnist", cache, mirrors=[server.url + "/good/"], timeout=5)
    (cache / "mnist" / FILES[1]).write_bytes(b"garbage")
    server.requests.clear()
    fetch("mnist", cache, mirrors=[server.url + "/good/"], timeout=5)
    assert server.requests == [f"/good/{FILES[1]}"]
    assert_complete(cache / "mnist")


def test_mirrors_from_environment(server, cache, monkeypatch):
    monkeypatch.setenv("STEEPEST_MIRRORS", f"{server.url}/missing/{{name}}/, {server.url}/good")
    assert mirrors_for("fashion-mnist") == [f"{server.url}/missing/fashion-mnist/", f"{server.url}/good"]
    assert_complete(fetch("mnist", cache, timeout=5))


def test_load_dataset_downloads_into_cache_as_last_resort(server, cache, monkeypatch):
    from steepest.data import datasets

    monkeypatch.setattr(datasets, "SYSTEM_DIRS", ())
    monkeypatch.setenv("STEEPEST_CACHE", str(cache))
    d = load_dataset("mnist", mirrors=[server.url + "/good/"])
    assert d.source == str(cache / "mnist") and d.X_test.shape == (10000, 784)
    assert_complete(cache / "mnist")


def test_default_mirrors_and_unknown_dataset(monkeypatch):
    monkeypatch.delenv("STEEPEST_MIRRORS", raising=False)
    assert mirrors_for("mnist")[0] == "https://ossci-datasets.s3.amazonaws.com/mnist/"
    assert "zalandoresearch/fashion-mnist" in mirrors_for("fashion-mnist")[1]
    with pytest.raises(ConfigError, match="no download known for dataset 'digits'"):
        fetch("digits", "/tmp/unused")


def test_hash_table_accepts_the_reference_files():
    env = os.environ.get("STEEPEST_DATA")
    if not env:
        pytest.skip("needs STEEPEST_DATA")
    for name in ("mnist", "fashion-mnist"):
        for f in FILES:
            assert sha256(Path(env) / name / f) in SHA256[name][f]


def test_message_mentions_every_file():
    msg = missing_data_message("fashion-mnist", "/c", "reason.")
    assert msg.startswith("reason.") and all(f in msg for f in FILES)
    assert np.all([len(h) == 64 for hs in SHA256["mnist"].values() for h in hs])
