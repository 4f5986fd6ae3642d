"""The lab's server, for real: a `steepest lab` subprocess on 127.0.0.1 and plain HTTP requests."""

import http.client
import time

import numpy as np
import pytest

pytest.importorskip("starlette", reason="steepest lab needs the lab extra (starlette)")
pytest.importorskip("uvicorn", reason="steepest lab needs the lab extra (uvicorn)")

from clirun import steepest  # noqa: E402
from labserver import Lab  # noqa: E402


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = Lab("--dataset", "digits", "--hidden", "16", cwd=tmp_path_factory.mktemp("lab"))
    yield server
    server.stop()


def test_every_request_needs_the_token(lab):
    for path in ("/", "/api/status", "/static/lab.js", "/api/events"):
        status, body = lab.request(path, token=False)
        assert status == 403 and "token" in body["error"]
    assert lab.request("/api/status", token=False, headers={"X-Lab-Token": "wrong"})[0] == 403
    assert lab.request("/api/status")[0] == 200


def test_the_menus_come_from_the_registry(lab):
    """GET /api/status carries every name the page's menus offer, from steepest.registry; the page's own
    files list none of them, so a new optimizer or activation reaches the page without an edit."""
    import re
    from importlib import resources

    from steepest.lab.config import check_racer
    from steepest.registry import ACTIVATIONS, INITS, OPTIMIZER_OPTIONS, OPTIMIZERS

    status, body = lab.request("/api/status")
    ch = body["choices"]
    assert (ch["activations"], ch["inits"], ch["optimizers"]) == (list(ACTIVATIONS), list(INITS), list(OPTIMIZERS))
    assert ch["optimizer_options"] == {k: list(v) for k, v in OPTIMIZER_OPTIONS.items()}
    assert ch["budgets"] == ["steps", "samples", "seconds"]
    for r in ch["race_defaults"]:
        assert check_racer(r, body["config"])["optimizer"] in OPTIMIZERS
    static = resources.files("steepest.lab").joinpath("static")
    html, js = static.joinpath("index.html").read_text(), static.joinpath("lab.js").read_text()
    names = {*ACTIVATIONS, *INITS, *OPTIMIZERS} - {"momentum"}  # "momentum" is also the μ input's id
    listed = set(re.findall(r"<option>([^<]*)</option>", html)) & {*ACTIVATIONS, *INITS, *OPTIMIZERS}
    assert not listed, f"index.html lists {sorted(listed)} itself"
    quoted = set(re.findall(r"""["'`]([a-z_]+)["'`]""", js)) & names
    assert not quoted, f"lab.js names {sorted(quoted)} itself"


def test_host_header_must_be_the_bound_address(lab):
    status, body = lab.request("/api/status", headers={"Host": "attacker.example:80"})
    assert status == 403 and "Host" in body["error"]
    host, port = lab.base.split("//")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/api/status", headers={"Host": f"localhost:{port}", "X-Lab-Token": lab.token})
    assert conn.getresponse().status == 200


@pytest.mark.parametrize("body, words", [
    ({"lr": -0.1}, "lr must be > 0"), ({"batch_size": 0}, "batch_size must be ≥ 1"),
    ({"hidden": [100000]}, "at most 2,048"), ({"hidden": [2048, 2048, 2048]}, "parameters"),
    ({"batch_size": 5000}, "larger than the 1437"), ({"optimizer": "lbfgs"}, "optimizer must be one of"),
    ({"nonsense": 1}, "unknown setting"), ([1, 2], "JSON object"),
])
def test_bad_settings_are_400_and_leave_the_run_alone(lab, body, words):
    before = lab.request("/api/status")[1]
    status, out = lab.post("/api/configure", body)
    assert status == 400 and words in out["error"], out
    after = lab.request("/api/status")[1]
    assert after["config"] == before["config"] and after["generation"] == before["generation"]


def test_malformed_json_is_400(lab):
    status, out = lab.request("/api/configure", raw=b'{"lr": ')
    assert status == 400 and "not valid JSON" in out["error"]


def test_training_runs_pauses_and_steps(lab):
    assert lab.post("/api/reset")[0] == 200
    assert lab.post("/api/configure", {"lr": 0.1, "batch_size": 32})[0] == 200
    assert lab.post("/api/start")[0] == 200
    msgs = lab.events(20, stop=lambda m: m["status"]["step"] > 300)
    assert msgs[0]["fresh"] and msgs[0]["info"]["name"] == "digits"
    losses = [p["loss"] for m in msgs for p in m["racers"][0]["points"] if p["loss"] is not None]
    assert len(losses) >= 2 and losses[-1] < losses[0]
    lab.post("/api/pause")
    time.sleep(0.5)
    s1 = lab.request("/api/status")[1]["step"]
    time.sleep(0.6)
    s2 = lab.request("/api/status")[1]["step"]
    assert s1 == s2 and not lab.request("/api/status")[1]["running"]
    lab.post("/api/step")
    time.sleep(0.8)
    assert lab.request("/api/status")[1]["step"] == s2 + 1


def test_predict_pixels_and_their_range(lab):
    from steepest.data import load_digits

    ds = load_digits()
    status, out = lab.post("/api/predict", {"pixels": ds.X_test[0].tolist(), "target": 3})
    assert status == 200 and len(out["probabilities"]) == 10 and abs(sum(out["probabilities"]) - 1) < 1e-3
    assert out["target"] == 3 and len(out["toward_target"]) == 64
    for bad, words in (([17] + [0] * 63, "outside 0…16"), ([0] * 10, "64 numbers"), (["a"] * 64, "numbers")):
        status, out = lab.post("/api/predict", {"pixels": bad})
        assert status == 400 and words in out["error"], out
    status, out = lab.post("/api/predict", {"pixels": [0] * 64, "target": 10})
    assert status == 400 and "target" in out["error"]


def test_predict_a_drawing_goes_through_the_predict_preprocessing(lab):
    from steepest.data import image_to_mnist

    img = np.zeros((112, 112))
    img[20:90, 50:62] = 255  # a "1"
    status, out = lab.post("/api/predict", {"image": img.tolist()})
    assert status == 200
    expected = image_to_mnist(img, size=8) / 255.0
    assert np.allclose(out["input"], expected, atol=1e-3)
    assert lab.post("/api/predict", {"image": [[300]]})[0] == 400


def test_race_gives_every_racer_the_same_budget(lab):
    racers = [{"optimizer": "gd", "lr": 0.5, "batch_size": "full"}, {"optimizer": "sgd", "lr": 0.1, "batch_size": 32}]
    assert lab.post("/api/race", {"racers": racers, "budget": "samples"})[0] == 200
    msgs = lab.events(45, stop=lambda m: min(r["points"] for r in m["status"]["racers"]) >= 6)
    lab.post("/api/pause")
    last = {}
    for m in msgs:
        for r in m["racers"]:
            if r["points"]:
                last[r["index"]] = r["points"][-1]
    assert set(last) == {0, 1}
    s0, s1 = last[0]["samples"], last[1]["samples"]
    assert s0 > 0 and s1 > 0 and abs(s0 - s1) <= 1437 + 512 * 2, (s0, s1)
    assert last[1]["step"] > last[0]["step"]  # same samples, many more (smaller) steps
    status, out = lab.post("/api/race", {"racers": [{"optimizer": "gd", "lr": -1}]})
    assert status == 400 and "lr" in out["error"]
    lab.post("/api/race", {"racers": [{}], "budget": "seconds", "start": False})


def test_reset_draws_a_new_theta0_that_every_racer_starts_from(lab):
    """Each reset draws θ₀ from the next seed (the settings show it), unlike the last one; setting the
    seed back gives that θ₀ again; in a race every racer takes its first step from the one θ₀. Seen by
    full-batch racers: the loss of a first step is L(θ₀) on every training row."""
    racers = [{"optimizer": "gd", "lr": 0.5, "batch_size": "full"},
              {"optimizer": "momentum", "lr": 0.1, "batch_size": "full"}]
    assert lab.post("/api/race", {"racers": racers, "budget": "steps", "start": False})[0] == 200

    def first_losses():
        assert lab.post("/api/step")[0] == 200
        msgs = lab.events(30, stop=lambda m: all(r["points"] >= 1 for r in m["status"]["racers"]))
        first = {r["index"]: r["points"][0] for m in msgs for r in m["racers"] if r["points"] and r["from"] == 0}
        assert sorted(first) == [0, 1] and all(p["step"] == 1 for p in first.values()), first
        a, b = first[0]["loss"], first[1]["loss"]
        assert abs(a - b) <= 1e-9 * a, (a, b)  # the racers started from one θ₀
        return a

    seed = lab.request("/api/status")[1]["config"]["seed"]
    losses = [first_losses()]
    for k in (1, 2):
        status, out = lab.post("/api/reset")
        assert status == 200 and out["config"]["seed"] == seed + k and not out["running"]
        assert [r["points"] for r in out["racers"]] == [0, 0] and [r["spec"] for r in out["racers"]] == [
            {**r, "momentum": out["config"]["momentum"]} for r in racers]
        losses.append(first_losses())
    assert all(abs(a - b) > 1e-6 * a for a, b in ((losses[0], losses[1]), (losses[1], losses[2]))), losses
    # the seed set on the page (it also sets the first racer: keep it full-batch)
    assert lab.post("/api/configure", {"seed": seed + 1, **racers[0]})[0] == 200
    assert abs(first_losses() - losses[1]) <= 1e-9 * losses[1]
    lab.post("/api/race", {"racers": [{}], "budget": "seconds", "start": False})


def test_surface_and_save_a_run_that_evaluate_and_report_read(lab, tmp_path):
    lab.post("/api/start")
    time.sleep(1.0)
    lab.post("/api/pause")
    status, s = lab.request("/api/surface?n=7")
    assert status == 200 and len(s["loss"]) == 7 and all(v is None or v > 0 for row in s["loss"] for v in row)
    assert lab.request("/api/surface?n=1000")[0] == 400
    status, out = lab.post("/api/save", {"name": "from-lab"})
    assert status == 200, out
    run_dir = out["run_dir"]
    cwd = lab_cwd(lab)
    r = steepest("evaluate", run_dir, "--json", cwd=cwd)
    assert r.returncode == 0, r.stderr
    r = steepest("report", run_dir, cwd=cwd)
    assert r.returncode == 0, r.stderr
    assert lab.post("/api/save", {"name": "from-lab"})[0] == 400  # not overwritten
    assert lab.post("/api/save", {"name": "../escape"})[0] == 400


def lab_cwd(lab):
    import os

    return os.readlink(f"/proc/{lab.proc.pid}/cwd")


def test_ctrl_c_stops_cleanly_and_keeps_the_run(tmp_path):
    server = Lab("--dataset", "moons", "--hidden", "8", cwd=tmp_path)
    server.post("/api/start")
    time.sleep(1.0)
    code, out, err = server.stop()
    assert code == 0, err
    assert "the run is saved in" in out
    saved = [p for p in (tmp_path / "runs").iterdir()]
    assert len(saved) == 1 and (saved[0] / "model.safetensors").is_file()


def test_host_0000_warns(tmp_path):
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-m", "steepest", "lab", "--no-browser", "--port", "0", "--host", "0.0.0.0", "--dataset", "moons"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    try:
        line = p.stdout.readline()
        assert line.startswith("lab: http://127.0.0.1:")
    finally:
        p.terminate()
        _, err = p.communicate(timeout=20)
    assert "warning" in err and "other machines" in err


def test_five_pages_at_once_all_update_and_closing_them_leaves_training_running(lab):
    import threading

    lab.post("/api/race", {"racers": [{}], "budget": "seconds", "start": True})
    got = [[] for _ in range(5)]

    def watch(k):
        got[k] = lab.events(3.0)

    threads = [threading.Thread(target=watch, args=(k,)) for k in range(5)]
    for t in threads:
        t.start()
    time.sleep(1.0)
    assert lab.request("/api/status")[1]["clients"] == 5
    for t in threads:
        t.join()
    for msgs in got:
        steps = [m["status"]["step"] for m in msgs]
        assert len(msgs) >= 3 and steps[-1] > steps[0], steps
    time.sleep(0.5)
    s = lab.request("/api/status")[1]
    assert s["clients"] == 0 and s["running"]
    time.sleep(0.6)
    assert lab.request("/api/status")[1]["step"] > s["step"]
    lab.post("/api/pause")


def test_missing_mnist_falls_back_with_a_note_and_without_it_is_one_line(tmp_path):
    """The README's `steepest lab --dataset mnist --fallback digits` works offline, as train's does."""
    empty = tmp_path / "empty"
    empty.mkdir()
    offline = ["--dataset", "mnist", "--data-dir", empty, "--no-download", "--dry-run"]
    env = {"STEEPEST_DATA": None, "STEEPEST_CACHE": tmp_path / "cache"}
    r = steepest("lab", *offline, "--fallback", "digits", cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    assert "starting on digits instead (--fallback digits)" in r.stdout
    assert "ready to serve digits" in r.stdout
    r = steepest("lab", *offline, cwd=tmp_path, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "--fallback digits" in r.stderr
    r = steepest("lab", *offline, "--fallback", "nonsense", cwd=tmp_path, env=env)
    assert r.returncode == 2 and "--fallback must be one of" in r.stderr
