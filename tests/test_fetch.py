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
from steepest.errors import ConfigError, DataError, DataNotFoundError


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


# --- hostile mirrors: a real server on 127.0.0.1 that misbehaves on purpose -------------------------

class _Hostile:
    """/endless/F: zeros without end; /huge/F: a Content-Length of 1 GB; /encoded/F: the real file labelled
    Content-Encoding: gzip (a common misconfiguration); /trickle/F: a byte every 0.1 s; /good/F: the file."""

    def __init__(self, site):
        import time
        from http.server import BaseHTTPRequestHandler

        self.requests = []
        log = self.requests

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, fmt, *args):
                log.append(self.path)

            def do_GET(self):
                mode, fname = self.path.strip("/").split("/")[-2:]
                body = (site / "good" / fname).read_bytes()
                self.send_response(200)
                try:
                    if mode == "endless":
                        self.end_headers()
                        while True:
                            self.wfile.write(bytes(2**16))
                    if mode == "huge":
                        self.send_header("Content-Length", str(10**9))
                    if mode == "encoded":
                        self.send_header("Content-Encoding", "gzip")
                    if mode == "trickle":
                        self.end_headers()
                        for b in body:
                            self.wfile.write(bytes([b]))
                            self.wfile.flush()
                            time.sleep(0.1)
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the client hung up, as it should
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def hostile(site):
    h = _Hostile(site)
    yield h
    h.httpd.shutdown()
    h.httpd.server_close()


def test_a_body_larger_than_any_dataset_file_is_cut_off_not_written_to_the_end(hostile, cache, monkeypatch):
    """A mirror sending zeros without end filled the cache's .part file until the disk was full; one that
    announces a gigabyte is refused before its body is read."""
    from steepest.data import fetch as fetch_module

    monkeypatch.setattr(fetch_module, "MAX_BYTES", 2**20)  # the real bound is 64 MiB; the test need not write it
    with pytest.raises(DataNotFoundError) as e:
        fetch("mnist", cache, mirrors=[hostile.url + "/endless/", hostile.url + "/huge/"], timeout=5)
    assert "/endless/train-images-idx3-ubyte.gz: the server sent more than 1 MiB" in str(e.value)
    assert "/huge/train-images-idx3-ubyte.gz: the server offers 1,000,000,000 bytes" in str(e.value)
    assert list((cache / "mnist").iterdir()) == []


def test_a_file_labelled_with_a_content_encoding_is_kept_as_sent(hostile, cache):
    """requests decoded a .gz served with Content-Encoding: gzip — an inflating bomb, for a hostile server,
    and for a misconfigured one a file whose SHA-256 no longer matched. The body is kept as sent."""
    assert_complete(fetch("mnist", cache, mirrors=[hostile.url + "/encoded/"], timeout=5))


def test_a_mirror_too_slow_to_finish_is_left_and_not_asked_again(hostile, cache):
    """A byte every 0.1 s never trips a per-read timeout: the run hung. Below 1,024 bytes/s once `timeout`
    seconds have passed, the mirror is left for the next, and not tried again for the other files."""
    hostile.requests.clear()
    out = fetch("mnist", cache, mirrors=[hostile.url + "/trickle/", hostile.url + "/good/"], timeout=1)
    assert_complete(out)
    assert [r for r in hostile.requests if r.startswith("/trickle/")] == [f"/trickle/{FILES[0]}"]


def test_messages_do_not_show_a_mirrors_password(cache, closed_port_url):
    with pytest.raises(DataNotFoundError) as e:
        fetch("mnist", cache, mirrors=[closed_port_url.replace("http://", "http://me:s3cret@")], timeout=5)
    assert "s3cret" not in str(e.value) and "me:" not in str(e.value) and closed_port_url in str(e.value)


def test_downloaded_files_are_readable_as_the_umask_allows_and_stale_parts_are_removed(server, cache):
    """Files were made by mkstemp, mode 0600 whatever the umask, so a shared cache was unreadable to its other
    users; a download killed by SIGKILL left its .part file for ever."""
    import stat
    import time

    target = cache / "mnist"
    target.mkdir(parents=True)
    stale, fresh = target / f".{FILES[0]}.dead.part", target / f".{FILES[0]}.live.part"
    stale.write_bytes(b"x" * 100)
    fresh.write_bytes(b"y")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    old = os.umask(0o022)
    try:
        fetch("mnist", cache, mirrors=[server.url + "/good/"], timeout=5)
    finally:
        os.umask(old)
    assert stat.S_IMODE((target / FILES[0]).stat().st_mode) == 0o644
    assert not stale.exists() and fresh.exists()  # a younger one may be another process's download


def test_a_directory_where_a_file_belongs_is_named(server, cache):
    (cache / "mnist" / FILES[2]).mkdir(parents=True)
    with pytest.raises(DataNotFoundError, match=f"{FILES[2]} is not a file; remove it"):
        fetch("mnist", cache, mirrors=[server.url + "/good/"], timeout=5)


def test_a_damaged_file_in_steepests_own_cache_is_downloaded_again(server, cache, monkeypatch):
    """A truncated cache file made every later run fail with 'download the file again', which steepest
    never did: the cache was only checked for the four names. Now load_dataset mends its own cache."""
    from steepest.data import datasets

    monkeypatch.setattr(datasets, "SYSTEM_DIRS", ())
    monkeypatch.setenv("STEEPEST_CACHE", str(cache))
    fetch("mnist", cache, mirrors=[server.url + "/good/"], timeout=5)
    path = cache / "mnist" / FILES[0]
    path.write_bytes(path.read_bytes()[:100_000])
    server.requests.clear()
    d = load_dataset("mnist", mirrors=[server.url + "/good/"])
    assert d.X_train.shape == (60000, 784) and server.requests == [f"/good/{FILES[0]}"]
    assert_complete(cache / "mnist")
    path.write_bytes(path.read_bytes()[:100_000])
    with pytest.raises(DataError, match="truncated"):  # without downloads, the damage is reported
        load_dataset("mnist", download=False)


def test_a_cache_that_cannot_be_written_is_named_as_such(tmp_path, server, read_only):
    """It was reported as a failure of every mirror ('could not download … Permission denied … .part')."""
    target = tmp_path / "cache" / "mnist"
    target.mkdir(parents=True)
    with read_only(target):
        with pytest.raises(DataNotFoundError, match=f"cannot write to the cache directory {target}; set "
                                                    "STEEPEST_CACHE to a directory you can write to"):
            fetch("mnist", tmp_path / "cache", mirrors=[server.url + "/good/"], timeout=5)
    fetch("mnist", tmp_path / "cache", mirrors=[server.url + "/good/"], timeout=5)  # filled, then made read-only:
    with read_only(target):  # a complete cache is used as it is
        assert fetch("mnist", tmp_path / "cache", mirrors=["http://127.0.0.1:9/"], timeout=5) == target
