"""What a new user meets first, through the real command: the fallback offline, the advice when data is
missing, and the compare table that names every run's lr, batch and momentum."""

import json

from clirun import steepest

OFFLINE = {"STEEPEST_MIRRORS": "http://127.0.0.1:9/"}   # nothing listens on the discard port


def _offline(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    return {**OFFLINE, "STEEPEST_DATA": empty, "STEEPEST_CACHE": tmp_path / "cache"}


def test_compare_falls_back_to_digits_when_mnist_is_missing(tmp_path):
    r = steepest("compare", "--dataset", "mnist", "--fallback", "digits", "--epochs", "1", "--hidden", "8",
                 "--runs", "gd", "sgd:batch=64", "--noise-batches", "4", "--noise-draws", "2", "--n-samples", "100",
                 "--out", tmp_path / "cmp", env=_offline(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "note: mnist was not found locally nor downloaded; using digits instead" in r.stdout
    assert "data digits: 1,437 training samples" in r.stdout
    lines = r.stdout.splitlines()
    head = next(line for line in lines if line.startswith("run "))
    assert head.split()[:4] == ["run", "lr", "batch", "μ"]
    gd = next(line for line in lines if line.startswith("GD "))
    assert gd.split()[1:3] == ["0.5", "full"]
    sgd = next(line for line in lines if line.startswith("SGD B=64"))
    assert sgd.split()[2:5] == ["0.1", "64", "—"]
    # one epoch is one full-batch step: the command says the GD curve is a dot, and how to fix it
    assert "note: GD took only 1 step(s) under this budget" in r.stdout


def test_missing_data_advice_names_the_options_on_the_command_line(tmp_path):
    r = steepest("compare", "--dataset", "mnist", "--no-download", "--out", tmp_path / "cmp", env=_offline(tmp_path))
    assert r.returncode == 2 and r.stdout == ""
    err = r.stderr.strip()
    assert err.count("\n") == 0 and err.startswith("steepest: error: mnist not found")
    for way in ("--data-dir DIR", "STEEPEST_DATA=DIR", "--dataset digits", "--fallback digits"):
        assert way in err
    assert "load_dataset" not in err                    # the library's wording stays in the library
    assert not (tmp_path / "cmp").exists()


def test_the_seeing_sequence_runs_offline_in_order(tmp_path):
    """The README's "Seeing gradient descent" commands, in order, offline with no MNIST (at reduced cost:
    smaller network, budgets and samples): the fallback carries through, each command writes its own
    directory, and the report gathers them on one page."""
    env = _offline(tmp_path)
    run = tmp_path / "runs" / "seeing"
    steps = [
        ("train", "--dataset", "mnist", "--fallback", "digits", "--hidden", "16", "--epochs", "2", "--out", run,
         "--quiet"),
        ("compare", "--dataset", "mnist", "--fallback", "digits", "--threads", "1", "--hidden", "8", "--epochs", "2",
         "--runs", "gd", "sgd:batch=64", "--noise-batches", "4", "--noise-draws", "2", "--n-samples", "100",
         "--out", run / "compare", "--quiet"),
        ("landscape", run, "--parts", "line", "probe", "minima", "--n-samples", "100", "--quiet"),
        ("explain", run, "--epochs-at", "1", "2", "--batch", "32", "--quiet"),
        ("report", run),
    ]
    for argv in steps:
        r = steepest(*argv, env=env)
        assert r.returncode == 0, (argv[0], r.stderr)
    explain = json.loads((run / "explain" / "explain.json").read_text())
    assert explain["over_training"]["retrained_matches_model"] is True     # `steepest train`'s own θ, re-made
    page = (run / "report.html").read_text()
    for title in ("Summary", "Training", "Configuration", "Comparison of optimizers (compare)",
                  "Loss landscape (landscape)", "The gradient&#x27;s anatomy (explain)", "Misclassified test images"):
        assert f"{title}</a></li>" in page, title
    assert "Data: digits" in page and "https://" not in page
