"""Smoke tests of the benchmark harness (benchmarks/run.py, benchmarks/workloads.py) on tiny data.

No timing is asserted beyond what must hold on any machine: the GEMM floor — the bare matrix products
of a training step — takes less time than the training step that contains them.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name):
    spec = importlib.util.spec_from_file_location(f"_bench_{name}", BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCH))
    return module


@pytest.fixture(scope="module")
def run():
    return _load("run")


@pytest.fixture(scope="module")
def W():
    return _load("workloads")


def _has(module):
    return importlib.util.find_spec(module) is not None


def test_step_flops_counts_the_eight_products(W):
    # forward 3 products + dW 3 products (same shapes) + 2 delta products (layers 2 and 3)
    B = 128
    fwd = 2 * B * (784 * 256 + 256 * 128 + 128 * 10)
    assert W.step_flops(B) == 2 * fwd + 2 * B * (256 * 128 + 128 * 10)
    floor = W.GemmFloor(1000, 128)
    assert floor.steps == [128] * 7 + [104]
    assert floor.flops == 7 * W.step_flops(128) + W.step_flops(104)


def test_quick_run_reports_ratios_and_floor(run, tmp_path):
    out = tmp_path / "RESULTS.md"
    res = run.main(["--quick", "--data", "synthetic:4096", "--workloads", "a,b", "--repeats", "3",
                    "--threads", "1", "--out", str(out)], log=lambda *a: None)
    text = out.read_text()
    assert text == res["report"]
    assert "Command: `python benchmarks/run.py --quick --data synthetic:4096" in text
    for section in ("## Headline", "## Machine", "## SGEMM rate", "### batch 128", "## (b) One full-batch"):
        assert section in text
    for row in ("| steepest / PyTorch |", "| steepest / scikit-learn |", "| steepest / GEMM floor |",
                "| (a) epoch, batch 128: steepest / PyTorch |", "| (b) full-batch step: steepest / GEMM floor |"):
        assert row in text
    assert "| (a) epoch, batch 128: steepest's NumPy path / GEMM floor |" in text
    for r in (res["a"][128], res["b"]):
        assert len(r["steepest"]["times"]) == 3 and len(r["steepest, NumPy path"]["times"]) == 3
        # no timing comparisons here: on a shared machine even "floor < steepest" can flip
        assert r["GEMM floor"]["median"] > 0 and r["steepest"]["median"] > 0
        assert r["steepest"]["history_seconds"]["median"] <= r["steepest"]["median"]
        for lib, module in (("PyTorch", "torch"), ("scikit-learn", "sklearn")):
            assert (lib in r) == _has(module)


def test_missing_libraries_give_na_ratios(run, tmp_path):
    res = run.main(["--quick", "--data", "synthetic:512", "--workloads", "a", "--repeats", "1",
                    "--libs", "steepest", "--out", "-"], log=lambda *a: None)
    assert set(res["a"][128]) == {"GEMM floor", "steepest", "steepest, NumPy path"}
    assert "| steepest / PyTorch | n/a |" in res["report"]


@pytest.mark.skipif(not _has("torch"), reason="needs torch")
def test_time_to_accuracy_runs_the_same_recipe_in_both(W):
    """Same θ₀, batch order and schedule: both libraries follow one trajectory up to float rounding."""
    data = W.load_data("synthetic:2048")
    recipe = W.Recipe(hidden=(32, 16), batch=64, max_lr=0.05, epochs=2, target=0.0)
    s = W.time_to_accuracy("steepest", data, recipe)
    t = W.time_to_accuracy("PyTorch", data, recipe)
    for o in (s, t):
        assert o["epochs"] == 1 and o["seconds"] == o["times"][0] > 0 and len(o["acc"]) == 2
    assert np.allclose(s["loss"], t["loss"], rtol=1e-4)
    assert np.allclose(s["acc"], t["acc"], atol=0.01)


def test_memory_child_reports_its_own_peak():
    r = _load("memory").peak_rss("steepest", 64, "synthetic:512", threads=1)
    assert r["lib"] == "steepest"
    assert 0 < r["after_import_kb"] <= r["after_data_kb"] <= r["peak_kb"]
    assert r["train_peak_kb"] is None or r["after_data_kb"] <= r["train_peak_kb"] <= r["peak_kb"]


def test_accuracy_selection_table_reads_validation_never_test(tmp_path):
    """A candidate run tried while choosing a recipe is tabled by its options that differ from the recipe
    and its validation accuracy; its test accuracy (in the same metrics file) must not appear."""
    import json
    import subprocess

    acc = _load("accuracy")
    out = tmp_path / "cand"
    r = subprocess.run([sys.executable, "-m", "steepest", "train", "--recipe", "mnist-dropout", "--dataset", "digits",
                        "--hidden", "16", "16", "--epochs", "2", "--val-split", "0.1", "--threads", "1", "--out",
                        str(out), "--quiet"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    last = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    c = acc.candidate("mnist-dropout", out)
    # compared with the recipe as it was chosen (its chosen_with: val_split 0.1, 300 epochs); epochs: a lever
    assert c["differ"] == {"dataset": "digits", "hidden": [16, 16], "epochs": 2}
    assert c["val_acc"] == last["val_acc"] and c["reached"] == 2 and c["finished"] and "test_acc" not in c
    md = "\n".join(acc.selection_markdown("mnist-dropout", [c]))
    assert f"{100 * last['val_acc']:.2f}%" in md and "2 of 2" in md and "dataset = digits, hidden = [16, 16], epochs = 2" in md
    assert "Seed 0, each candidate trained on 90% of the training data and measured on the held-out 10% validation split" in md
    seed1 = acc.candidate("mnist-dropout", out) | {"seed": 1}  # as the same options run with --seed 1 would be
    md = "\n".join(acc.selection_markdown("mnist-dropout", [c, seed1]))
    assert md.count("| candidate | seed | epochs run |") == 1 and "Each candidate trained on 90%" in md
    assert "| dataset = digits, hidden = [16, 16], epochs = 2 | 0 | 2 of 2 |" in md
    assert "| dataset = digits, hidden = [16, 16], epochs = 2 | 1 | 2 of 2 |" in md
    other = acc.candidate("mnist-dropout", out) | {"val_split": 0.125}  # as a run holding out 12.5% would be
    md = "\n".join(acc.selection_markdown("mnist-dropout", [c, other]))
    assert "less its own validation split (its val_split)" in md and "| val_split = 0.125, dataset = digits" in md
    assert f"{100 * last['test_acc']:.2f}%" not in md or last["test_acc"] == last["val_acc"]
    (out / "model.safetensors").unlink()  # a run stopped by hand leaves no model: marked as stopped
    assert "2 of 2 (stopped)" in "\n".join(acc.selection_markdown("mnist-dropout", [acc.candidate("mnist-dropout", out)]))


def test_accuracy_selection_against_the_run_the_candidates_were_tried_against(tmp_path):
    """--selection-base: after the recipe changed, earlier candidates are tabled by where they differ from the
    run they were tried against (the former recipe), not by everything that has changed since."""
    import subprocess

    acc = _load("accuracy")
    runs = {}
    for label, extra in (("base", []), ("cand", ["--lr", "0.2"])):
        runs[label] = tmp_path / label
        r = subprocess.run([sys.executable, "-m", "steepest", "train", "--recipe", "mnist-dropout", "--dataset",
                            "digits", "--hidden", "16", "16", "--epochs", "2", "--val-split", "0.1", "--threads",
                            "1", *extra, "--out", str(runs[label]), "--quiet"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    c = acc.candidate("mnist-dropout", runs["cand"], base=runs["base"])
    assert c["differ"] == {"lr": 0.2} and not c["shipped"]
    assert acc.candidate("mnist-dropout", runs["base"], base=runs["base"])["differ"] == {}
    md = "\n".join(acc.selection_markdown("mnist-dropout", [c], runs["base"]))
    assert "differs from `base`" in md and "| lr = 0.2 |" in md and "as shipped" not in md
    assert acc.candidate("mnist-dropout", runs["cand"], base=runs["base"] / "config.toml")["differ"] == {"lr": 0.2}


def test_accuracy_a_recipe_chosen_on_validation_then_trained_on_all_the_data(tmp_path):
    """mnist-dropout was chosen by a run holding out 10% for 300 epochs (its chosen_with) and its final model
    trains on everything for 270: a seed is compared with the recipe as shipped, a candidate with the recipe
    as chosen — a run that held nothing out chose nothing and is refused — and ACCURACY.md says which recipe
    keeps its split and which does not."""
    import subprocess

    acc = _load("accuracy")
    final = tmp_path / "final"
    r = subprocess.run([sys.executable, "-m", "steepest", "train", "--recipe", "mnist-dropout", "--dataset", "digits",
                        "--hidden", "16", "16", "--epochs", "2", "--threads", "1", "--out", str(final), "--quiet"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert acc._against("mnist-dropout", final)[1] == {"dataset": "digits", "hidden": [16, 16]}
    with pytest.raises(SystemExit, match="held out no validation split"):
        acc.candidate("mnist-dropout", final)
    run = {"seed": 0, "test_acc": 0.5, "val_acc": None, "epochs": 2, "wall": 60.0, "run_dir": str(final),
           "date": "2026-12-01"}
    kept = dict(run, val_acc=0.25)
    results = {"mnist-dropout": {"runs": [run], "summary": acc.summary([run]), "shortened": True},
               "mnist-record": {"runs": [kept], "summary": acc.summary([kept]), "shortened": True}}
    md = acc.markdown(results, "this machine", [])
    assert "`mnist-record` holds out 10% of the training data as a validation split (reported below); `mnist-d" in md
    both = acc.markdown({"mnist-record": results["mnist-record"], "fashion-record": results["mnist-record"]}, "here", [])
    assert "`mnist-record` and `fashion-record` hold out 10% of the training data as a validation split" in both
    assert ("`mnist-dropout` was chosen on a validation split and trains its final model on all the training data "
            "(chosen with val_split = 0.1, epochs = 300; its final model trains with val_split = off, epochs = 270)") in md
    assert "| mnist-dropout | ≥ 99.0% | 0 | 2 | – | 50.00% | 1.0 |" in md and "| 25.00% | 50.00% |" in md


def test_accuracy_measured_dates_the_runs_not_the_table(tmp_path, monkeypatch):
    """A table rewritten from runs of days ago (--from-runs) said the recipe was measured today: the date
    written to measured.toml is the day the last seed finished."""
    import tomllib

    acc = _load("accuracy")
    runs = [{"seed": s, "test_acc": 0.9, "val_acc": None, "epochs": 1, "wall": 60.0, "run_dir": "r", "date": d}
            for s, d in ((0, "2026-11-30"), (1, "2026-12-02"), (2, "2026-12-01"))]
    monkeypatch.setattr(acc, "MEASURED", tmp_path / "measured.toml")
    acc.write_measured({"mnist-record": {"runs": runs, "summary": acc.summary(runs), "shortened": False}}, "here; x")
    assert tomllib.loads((tmp_path / "measured.toml").read_text())["mnist-record"]["date"] == "2026-12-02"


def test_accuracy_torch_cache_reuses_a_row_of_the_same_recipe_version(tmp_path):
    """A PyTorch row kept under the recipe's fingerprint, seed and epochs is read back, not trained again."""
    import json

    from steepest import recipes

    acc = _load("accuracy")
    row = {"seed": 0, "test_acc": 0.5, "epochs": 3, "wall": 1.0}
    (tmp_path / f"mnist-record-{recipes.fingerprint('mnist-record')}-seed0-epochs3.json").write_text(json.dumps(row))
    assert acc.cached_torch(str(tmp_path), "mnist-record", 0, 3, None) == row


def test_accuracy_script_checks_every_argument_before_training(tmp_path):
    """benchmarks/accuracy.py trains for hours: a wrong argument is refused at once, in one line, before
    any run starts (no runs directory, no ACCURACY.md), never after the training as a traceback."""
    import subprocess

    runs, out = tmp_path / "runs", tmp_path / "ACC.md"
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.toml").write_text('dataset = "mnist"\n')
    (tmp_path / "half" / "metrics.jsonl").write_text("")
    base = ["--runs-dir", str(runs), "--no-measured", "--no-torch"]
    bad = {
        "unknown recipe": ["--recipes", "mnist-record", "bogus"],
        "no seeds": ["--seeds", "0"],
        "zero epochs": ["--epochs", "0"],
        "negative epochs": ["--epochs", "-3"],
        "pair without =": ["--from-runs", "mnist-record"],
        "pair without name": ["--from-runs", f"={tmp_path}"],
        "missing run": ["--from-runs", f"mnist-record={tmp_path / 'nope'}"],
        "unfinished run": ["--from-runs", f"mnist-record={tmp_path / 'half'}"],
        "selection after training": ["--recipes", "mnist-record", "--seeds", "1", "--selection",
                                     f"mnist-record={tmp_path / 'nope'}"],
        "output folder": ["--recipes", "mnist-record", "--out", str(tmp_path / "nope" / "ACC.md")],
        "torch row for an unknown recipe": ["--recipes", "mnist-record", "--torch-for", "bogus"],
        "selection base without selection": ["--recipes", "mnist-record", "--selection-base", f"mnist-record={tmp_path / 'half'}"],
        "torch cache not a folder": ["--recipes", "mnist-record", "--torch-cache", str(tmp_path / "nope")],
    }
    for label, args in bad.items():
        argv = [sys.executable, str(BENCH / "accuracy.py"), *base, *args]
        argv += [] if "--out" in args else ["--out", str(out)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=120)
        assert r.returncode == 2, f"{label}: exit {r.returncode}\n{r.stderr[-800:]}"
        last = r.stderr.strip().splitlines()[-1]
        assert "Traceback" not in r.stderr and not last.startswith("usage:"), label
        assert "error:" in last, f"{label}: {r.stderr[-400:]}"
        assert not runs.exists() and not out.exists(), f"{label}: refused only after starting"
