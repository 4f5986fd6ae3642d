"""The lab's server against hostile input, for real: a `steepest lab` subprocess on 127.0.0.1.

Whatever a request holds — a body of nested brackets, a number of thousands of digits, a run name with a
newline or a NUL, a name longer than a file system takes — the answer is one line of JSON
``{"error": "<what is wrong>; <what to do>"}`` with a 4xx status (5xx only when the disk refuses), and
nothing reaches the server's stderr. The command line refuses what the server would refuse, and says
the same limits.
"""

import http.client
import json
import os
import time

import pytest

pytest.importorskip("starlette", reason="steepest lab needs the lab extra (starlette)")
pytest.importorskip("uvicorn", reason="steepest lab needs the lab extra (uvicorn)")

from clirun import steepest  # noqa: E402
from labserver import Lab  # noqa: E402

BODY_ENDPOINTS = ("/api/configure", "/api/race", "/api/predict", "/api/save",
                  "/api/start", "/api/pause", "/api/step", "/api/reset")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = Lab("--dataset", "digits", "--hidden", "8", cwd=tmp_path_factory.mktemp("hostile"))
    yield server
    server.stop()


def refused(lab, path, status=400, **kw):
    """The error of a request that must be refused with ``status``: one line of JSON."""
    code, out = lab.request(path, **kw)
    assert code == status, (path, code, out)
    assert set(out) == {"error"} and "\n" not in out["error"], out
    return out["error"]


def says_what_to_do(error):
    assert "; " in error, f"no '; what to do' half: {error}"
    return error


@pytest.fixture(autouse=True)
def no_traceback(request):
    """Nothing a test sends to the module's server puts a traceback on its stderr."""
    if "lab" not in request.fixturenames:
        yield
        return
    lab = request.getfixturevalue("lab")
    start = len(lab.stderr())
    yield
    time.sleep(0.3)  # a server logs an unhandled error after it has answered 500
    err = lab.stderr()[start:]
    assert "Traceback" not in err, err[-3000:]


@pytest.mark.parametrize("raw, words", [
    (b"[" * 100_000 + b"]" * 100_000, "nests deeper"),
    (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "nests deeper"),
    (b'{"lr": [[[[[[[[[[0.1]]]]]]]]]]}', "nests deeper"),      # parses, but deeper than any request
    (b'{"seed": ' + b"9" * 5000 + b"}", "5000 digits"),          # past Python's int() limit (4300)
    (b'{"lr": ' + b"1" * 400 + b"}", "400 digits"),              # past float's range
    (b'{"lr": NaN}', "NaN is not a JSON number"),
    (b'{"lr": Infinity}', "Infinity is not a JSON number"),
    (b"\xff\xfe\xfd", "not valid JSON"),
    (b'{"lr": ', "not valid JSON"),
], ids=["deep-arrays", "deep-objects", "deeper-than-a-request", "5000-digits", "400-digits", "NaN", "Infinity",
        "not-utf8", "truncated"])
def test_a_hostile_body_is_a_400_on_every_endpoint_that_reads_one(lab, raw, words):
    before = lab.request("/api/status")[1]
    for path in BODY_ENDPOINTS:
        assert words in says_what_to_do(refused(lab, path, raw=raw))
    after = lab.request("/api/status")[1]
    assert (after["config"], after["generation"], after["running"]) == (before["config"], before["generation"], False)


def test_a_body_too_large_is_refused_before_it_is_read(lab):
    """A declared gigabyte is answered 413 at once (the server does not wait for, nor keep, the bytes)."""
    host, port = lab.base.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.putrequest("POST", "/api/configure")
    conn.putheader("X-Lab-Token", lab.token)
    conn.putheader("Content-Length", str(10**9))
    conn.endheaders()
    r = conn.getresponse()
    out = json.loads(r.read())
    assert r.status == 413 and "larger than" in says_what_to_do(out["error"]), out


@pytest.mark.parametrize("path, body, words", [
    ("/api/configure", {"lr": 10**60}, "lr must be at most"),
    ("/api/configure", {"seed": 2**64}, "seed must be at most 4,294,967,295"),
    ("/api/configure", {"x" * 100_000: 1}, "unknown setting"),
    ("/api/configure", {"\ud800": 1}, "unknown setting"),            # a lone surrogate, echoed in the message
    ("/api/configure", {"dataset": "x" * 100_000}, "dataset must be one of"),
    ("/api/race", {"racers": [{}] * 100_000}, "racers must be a list of 1 to"),
    ("/api/race", {"racers": [{}], "start": "no"}, "start must be true or false"),
    ("/api/race", {"racers": [{}], "bogus": 1}, "unknown field"),
    ("/api/predict", {"pixels": [1e308] * 64}, "outside 0…16"),
    ("/api/predict", {"pixels": [0] * 64, "target": 10**60}, "target must be a class"),
    ("/api/predict", {"pixels": [0] * 64, "bogus": 1}, "unknown field"),
    ("/api/save", {"name": "ok", "bogus": 1}, "unknown field"),
])
def test_hostile_values_in_each_field_are_short_one_line_400s(lab, path, body, words):
    raw = json.dumps(body, ensure_ascii=True).encode()
    error = refused(lab, path, raw=raw)
    assert words in error and len(error) < 400, error  # a value is echoed, cut short: never 100 kB of it


def test_surface_takes_n_in_digits_only(lab):
    for n in ("9" * 5000, "%D9%A7", "1_0", "%207", "7.0"):  # 5000 digits, an Arabic-Indic 7, 10, " 7"
        assert "n must be an integer written in digits" in refused(lab, f"/api/surface?n={n}")


def test_unknown_paths_and_methods_are_json_too(lab):
    assert "Not Found" in refused(lab, "/api/nothing", status=404)
    assert "Method Not Allowed" in refused(lab, "/api/configure", status=405)


@pytest.mark.parametrize("name, words", [
    ("a" * 5000, "5,000 bytes"),             # ENAMETOOLONG
    ("é" * 128, "256 bytes"),                # 128 characters, but 256 bytes in UTF-8
    ("x\u0000y", "printable"),               # "embedded null byte"
    ("con\nsole", "printable"),              # a directory whose name holds a newline
    ("tab\there", "printable"),
    ("\ud800", "printable"),                 # a lone surrogate: no file system takes it
    ("../escape", "'/'"), ("a\\b", "'\\'"), (".hidden", "'.'"), ("..", "'.'"),
    (" padded ", "space"), ("", "non-empty"), (5, "non-empty string"), (["a"], "non-empty string"),
])
def test_a_run_name_is_checked_before_anything_is_written(lab, name, words):
    runs = os.path.join(lab_cwd(lab), "runs")
    before = sorted(os.listdir(runs)) if os.path.isdir(runs) else []
    raw = json.dumps({"name": name}, ensure_ascii=True).encode()
    error = says_what_to_do(refused(lab, "/api/save", raw=raw))
    assert words in error and "type" in error, error
    assert (sorted(os.listdir(runs)) if os.path.isdir(runs) else []) == before


def test_the_longest_name_is_saved_and_a_taken_one_is_refused_in_the_pages_words(lab):
    name = "é" * 127 + "a"  # 255 bytes: the most one path component holds
    status, out = lab.post("/api/save", {"name": name})
    assert status == 200 and os.path.basename(out["run_dir"]) == name, out
    error = says_what_to_do(refused(lab, "/api/save", body={"name": name}))
    assert "already exists" in error and "another name" in error, error
    assert "--out" not in error and "--force" not in error  # the page has neither


def test_saves_within_one_second_get_names_of_their_own(lab):
    dirs = {lab.post("/api/save")[1]["run_dir"] for _ in range(3)}
    assert len(dirs) == 3, dirs


def test_a_save_the_disk_refuses_is_a_json_error_that_names_the_runs_dir(tmp_path):
    server = Lab("--dataset", "moons", "--hidden", "4", "--runs-dir", "saved", cwd=tmp_path)
    try:
        (tmp_path / "saved").write_text("a file where the runs directory should be\n")
        error = says_what_to_do(refused(server, "/api/save", status=500, body={"name": "x"}))
        assert "--runs-dir" in error and "not a directory" in error, error
        time.sleep(0.3)
        assert "Traceback" not in server.stderr()
    finally:
        server.stop()


def lab_cwd(lab):
    return os.readlink(f"/proc/{lab.proc.pid}/cwd")


def one_line_error(r):
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and r.stderr.startswith("steepest: error: "), r.stderr
    assert "Traceback" not in r.stderr and "ready to serve" not in r.stdout
    return r.stderr


@pytest.mark.parametrize("args, words", [
    (["--host", "8.8.8.8"], "cannot listen on 8.8.8.8"),
    (["--host", "nonexistent.invalid"], "cannot listen on nonexistent.invalid"),
    (["--runs-dir", "/dev/null"], "--runs-dir /dev/null: not a directory"),
    (["--runs-dir", "/dev/null/runs"], "/dev/null is not a directory"),
    (["--runs-dir", "/proc/x"], "cannot write in /proc"),
])
def test_dry_run_refuses_what_the_real_run_would(tmp_path, args, words):
    """--dry-run binds (and closes) the address and probes the runs directory, as the real run does first:
    same one line, same exit status; and neither leaves anything behind."""
    base = ["lab", "--dataset", "moons", "--hidden", "4", "--no-browser", *args]
    dry = one_line_error(steepest(*base, "--dry-run", cwd=tmp_path, timeout=120))
    assert words in dry, dry
    real = one_line_error(steepest(*base, cwd=tmp_path, timeout=120))
    assert real == dry
    assert list(tmp_path.iterdir()) == []


def test_dry_run_of_a_good_setup_creates_nothing(tmp_path):
    r = steepest("lab", "--dataset", "moons", "--hidden", "4", "--no-browser", "--dry-run",
                 "--runs-dir", tmp_path / "new" / "runs", cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and "ready to serve moons" in r.stdout, r.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("option, value, limit", [
    ("--hidden", "65536", "MAX_LAYER"), ("--hidden", "2049", "MAX_LAYER"),
    ("--lr", "5000", "MAX_LR"), ("--seed", str(2**32), "MAX_SEED"),
])
def test_the_command_line_states_the_limits_the_lab_keeps(tmp_path, lab, option, value, limit):
    """--hidden, --lr and --seed are parsed with the bounds the server checks (steepest.lab.config): refused
    by the parser, which states the limit the API's refusal states too — not train's larger ones."""
    from steepest.lab import config

    bound = getattr(config, limit)
    shown = f"{bound:,}" if isinstance(bound, int) else f"{bound:g}"
    err = one_line_error(steepest("lab", "--dataset", "moons", "--dry-run", option, value, cwd=tmp_path))
    assert f"argument {option}" in err and shown in err, err
    key = {"--hidden": "hidden", "--lr": "lr", "--seed": "seed"}[option]
    api = refused(lab, "/api/configure", body={key: [int(value)] if key == "hidden" else int(value)})
    assert f"at most {shown}" in api, api
    at_limit = [str(bound)] if isinstance(bound, int) else [f"{bound:g}"]
    r = steepest("lab", "--dataset", "moons", "--dry-run", option, *at_limit, cwd=tmp_path, timeout=120)
    assert r.returncode == 0, r.stderr


def test_saving_many_runs_keeps_no_descriptor_per_run(lab):
    """Each save locks its new run directory while writing it; a lab that saves hundreds of runs must not
    hold a descriptor for each (it would end at the process's open-file limit)."""
    def fds():
        return len(os.listdir(f"/proc/{lab.proc.pid}/fd"))

    lab.post("/api/save")
    before = fds()
    for _ in range(12):
        assert lab.post("/api/save")[0] == 200
    assert fds() <= before + 2, (before, fds())


@pytest.mark.parametrize("body", [{"lr": -0.1}, {"lr": 0}, {"batch_size": 0}, {"hidden": [0]}, {"activation": "nope"},
                                  {"optimizer": "nope"}, {"seed": -1}, {"momentum": -1}, {"schedule": "nope"}])
def test_every_refused_setting_says_what_to_do_in_the_pages_terms(lab, body):
    error = says_what_to_do(refused(lab, "/api/configure", body=body))
    assert "--help" not in error, error
