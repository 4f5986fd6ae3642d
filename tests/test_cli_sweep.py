"""A sweep over the whole command line, generated from the argument parser itself.

For every command and every option that takes a value (and every positional argument), the
option is given, in an otherwise valid and cheap command, each of: 0, −1, nan, inf, 1e308, 1e20,
2**70 (too large for a C integer), a FIFO, a directory, a missing path (options that name a path,
by their metavar: 0 stands for every other name). Because the cases are
read from ``steepest.cli.build_parser()``, an option added tomorrow is swept without anyone
remembering to add it here. The only outcomes allowed:

- a valid run (exit status 0, or 1 for "the work ran but failed", e.g. a gradient check above
  its threshold), or
- exactly one line ``steepest: error: <what>; <what to do>`` on stderr and exit status 2, with
  nothing on disk changed;

never a traceback, never a warning on stderr, and every case ends within :data:`TIMEOUT`
seconds (a FIFO that is opened blocks forever, so a hang is caught by an alarm in-process and a
timeout in the subprocesses). The cases run in-process through ``steepest.cli.main(argv)``
(cheap); a deterministic sample of them runs again as real ``python -m steepest`` processes
under a 2 GiB address-space limit, where warnings and tracebacks would reach stderr as they
would for a user.
"""

from __future__ import annotations

import contextlib
import io
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from steepest.cli import build_parser, main

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="FIFOs, signals and resource limits are POSIX")

NUMBERS = ("0", "-1", "nan", "inf", "1e308", "1e20", str(2**70))
PATHS = ("FIFO", "DIR", "MISSING")
VALUES = NUMBERS + PATHS
TIMEOUT = 120       # seconds per case: a hang, not a slow plot on a loaded machine
SAMPLE_EVERY = 29   # every 29th case also runs as a subprocess


class Hang(Exception):
    pass


@pytest.fixture(scope="module")
def ws(tmp_path_factory):
    """A workspace: a tiny dataset, a trained model, a .npy input, a FIFO, an empty directory."""
    root = tmp_path_factory.mktemp("sweep")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    np.savez(root / "tiny.npz", X=X, y=y, X_test=X[:12], y_test=y[:12])
    np.save(root / "rows.npy", X[:2])
    assert _run(["train", "--dataset", str(root / "tiny.npz"), "--hidden", "4", "--epochs", "1",
                 "--batch-size", "8", "--out", str(root / "model"), "--quiet"])[0] == 0
    os.mkfifo(root / "fifo")
    (root / "adir").mkdir()
    (root / "scratch").mkdir()
    return root


def _run(argv) -> tuple[int, str]:
    """``main(argv)`` in-process: (exit status, stderr); an alarm turns a hang into :class:`Hang`."""
    err = io.StringIO()

    def alarm(signum, frame):
        raise Hang(f"no answer after {TIMEOUT} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(TIMEOUT)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main(argv)
            except SystemExit as e:  # argparse: --help, usage errors
                rc = e.code if isinstance(e.code, int) else 2
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    return rc, err.getvalue()


def base_commands(ws: Path, out: Path) -> dict[str, list[str]]:
    """A valid, cheap invocation of every command (a few seconds at most)."""
    data, model = str(ws / "tiny.npz"), str(ws / "model")
    return {
        "train": ["--dataset", data, "--hidden", "4", "--epochs", "1", "--batch-size", "8", "--out", str(out),
                  "--quiet", "--time-budget", "20"],
        "evaluate": [model, "--dataset", data],
        "predict": [model, str(ws / "rows.npy")],
        "gradcheck": ["--hidden", "3", "--inputs", "3", "--classes", "2", "--samples", "3"],
        "datasets": [],
        "compare": ["--dataset", data, "--hidden", "4", "--epochs", "1", "--runs", "gd", "sgd:batch=8",
                    "--noise-batches", "2", "--noise-draws", "2", "--n-samples", "20", "--out", str(out), "--quiet"],
        "landscape": [model, "--dataset", data, "--parts", "line", "--n-samples", "20", "--resolution", "3",
                      "--steps", "2", "--out", str(out), "--quiet"],
        "explain": [model, "--dataset", data, "--batch", "8", "--units", "2", "--out", str(out), "--quiet"],
        "report": [model, "--out", str(out / "report.html")],
        "export": [model, "-o", str(out / "model.onnx")],
        "lab": ["--dataset", "moons", "--hidden", "4", "--no-browser", "--dry-run", "--runs-dir", str(out)],
        "recipes": [],
    }


def is_path(action) -> bool:
    """An option or positional that names a file or directory (read from its metavar or name)."""
    words = " ".join(map(str, action.metavar if isinstance(action.metavar, tuple) else [action.metavar or ""]))
    return any(w in words for w in ("DIR", "FILE", "PATH", "MODEL")) or action.dest in ("model", "files", "dir")


def values_for(action) -> tuple[str, ...]:
    """Every value for a number; for a path, one relative name ("0": "nan" or "1e308" would name a
    file just the same) and the three kinds of path."""
    return ("0",) + PATHS if is_path(action) else VALUES


def swept_arguments():
    """``(command, action, positionals)`` for every value-taking option and positional of every command."""
    parser = build_parser()
    for name, sub in parser.commands.items():
        positionals = [a for a in sub._actions if not a.option_strings and a.nargs != 0]
        for action in sub._actions:
            if action.nargs == 0 or action.dest in ("help", "version"):
                continue
            yield name, action, positionals


def _with(base: list[str], positionals: list, action, value: str) -> list[str]:
    """``base`` with ``action`` given ``value`` (as many times as its nargs needs)."""
    n = action.nargs if isinstance(action.nargs, int) else 1
    if not action.option_strings:  # a positional: base lists positionals first, in order
        argv = list(base)
        argv[positionals.index(action)] = value
        return argv
    argv, flags, i = [], set(action.option_strings), 0
    while i < len(base):  # drop the option and its values from base
        if base[i] in flags:
            i += 1
            while i < len(base) and not base[i].startswith("--"):
                i += 1
            continue
        argv.append(base[i])
        i += 1
    return argv + [action.option_strings[-1]] + [value] * n


def cases(ws: Path):
    """Every (command, argv, label) of the sweep."""
    out = ws / "scratch" / "out"
    bases = base_commands(ws, out)
    paths = {"FIFO": str(ws / "fifo"), "DIR": str(ws / "adir"), "MISSING": str(ws / "scratch" / "missing.npz")}
    for command, action, positionals in swept_arguments():
        for value in values_for(action):
            argv = [command, *_with(bases[command], positionals, action, paths.get(value, value))]
            name = action.option_strings[-1] if action.option_strings else action.dest
            yield command, argv, f"{command} {name} {value}"


def snapshot(root: Path) -> dict:
    """Every path under ``root`` but the scratch area, with size and mtime."""
    out = {}
    for p in root.rglob("*"):
        if "scratch" in p.relative_to(root).parts:
            continue
        st = p.lstat()
        out[str(p.relative_to(root))] = (st.st_size, st.st_mtime_ns, st.st_mode)
    return out


def reset(ws: Path) -> None:
    """Empty the scratch area and the directory given as DIR (a valid run may write there)."""
    for d in (ws / "scratch", ws / "adir"):  # emptied, not removed: the sweep's cwd is the scratch area
        for p in d.iterdir():
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    if not (ws / "fifo").is_fifo():  # a valid run replaced it: the next cases need a FIFO again
        (ws / "fifo").unlink()
        os.mkfifo(ws / "fifo")


def check_outcome(label, rc, err):
    lines = err.strip().splitlines()
    assert "Traceback" not in err, f"{label}: traceback\n{err}"
    assert "Warning" not in err, f"{label}: a warning reached stderr\n{err}"
    assert rc in (0, 1, 2), f"{label}: exit status {rc}\n{err}"
    if rc == 2:
        assert len(lines) == 1 and lines[0].startswith("steepest: error: "), f"{label}: not one line\n{err}"
        assert "; " in lines[0], f"{label}: the message lacks its '; what to do' half\n{err}"


def test_every_option_of_every_command(ws, monkeypatch):
    monkeypatch.chdir(ws / "scratch")  # a relative --out such as "0" lands in the scratch area
    before, failures, outcomes, n = snapshot(ws), [], {0: 0, 1: 0, 2: 0}, 0
    t0 = time.monotonic()
    for command, argv, label in cases(ws):
        n += 1
        try:
            rc, err = _run(argv)
            check_outcome(label, rc, err)
        except Exception as e:  # a traceback, a hang, a broken promise: collect them all, then fail
            failures.append(f"{label}: {type(e).__name__}: {e}"[:600])
            reset(ws)
            continue
        outcomes[rc] += 1
        if rc == 2:
            now = snapshot(ws)
            if now != before:
                changed = sorted(set(now.items()) ^ set(before.items()))
                failures.append(f"{label}: refused, but changed {changed[:3]}")
        reset(ws)
        before = snapshot(ws)
    seconds = time.monotonic() - t0
    print(f"\nsweep: {n} cases in {seconds:.0f} s; exit 0: {outcomes[0]}, 1: {outcomes[1]}, 2: {outcomes[2]}")
    assert n > 500, "the sweep found fewer options than the commands have"
    assert not failures, f"{len(failures)} of {n} cases broke a promise:\n" + "\n".join(failures[:40])


def _limited():
    resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))


def test_a_sample_as_real_processes(ws, monkeypatch):
    """Every SAMPLE_EVERY-th case as ``python -m steepest``: what a user's terminal shows."""
    monkeypatch.chdir(ws / "scratch")
    sample = [c for i, c in enumerate(cases(ws)) if i % SAMPLE_EVERY == 0]
    failures = []
    for command, argv, label in sample:
        before = snapshot(ws)
        try:
            r = subprocess.run([sys.executable, "-m", "steepest", *argv], capture_output=True, text=True,
                               timeout=TIMEOUT + 30, preexec_fn=_limited, stdin=subprocess.DEVNULL,
                               cwd=ws / "scratch")
            check_outcome(label, r.returncode, r.stderr)
            if r.returncode == 2:
                assert snapshot(ws) == before, f"{label}: refused, but changed the workspace"
        except (AssertionError, subprocess.TimeoutExpired) as e:
            failures.append(f"{label}: {e}"[:600])
        reset(ws)
    assert len(sample) > 20
    assert not failures, "\n".join(failures)


def test_the_sweep_can_fail(ws):
    """The checks catch what they are for: a traceback, a warning, two lines, a hang."""
    with pytest.raises(AssertionError, match="traceback"):
        check_outcome("x", 1, "Traceback (most recent call last):\n")
    with pytest.raises(AssertionError, match="warning"):
        check_outcome("x", 0, "x.py:1: RuntimeWarning: overflow\n")
    with pytest.raises(AssertionError, match="not one line"):
        check_outcome("x", 2, "steepest: error: a; b\nmore\n")
    with pytest.raises(AssertionError, match="what to do"):
        check_outcome("x", 2, "steepest: error: something is wrong\n")
    with pytest.raises(Hang):
        _hang_on_fifo(ws)


def _hang_on_fifo(ws):
    """What an unguarded open() of the FIFO does: block (the alarm ends it)."""
    def alarm(signum, frame):
        raise Hang("blocked")
    old = signal.signal(signal.SIGALRM, alarm)
    signal.alarm(1)
    try:
        open(ws / "fifo", "rb").close()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_an_empty_value_is_refused_everywhere(ws, monkeypatch):
    """``--resume "$UNSET"``, ``--recipe ""``, an empty model path: each option and positional of each
    command refuses an empty or blank value before anything runs — never read as "not given", which
    would silently start a default run instead."""
    monkeypatch.chdir(ws / "scratch")
    out = ws / "scratch" / "out"
    bases, failures, n = base_commands(ws, out), [], 0
    for command, action, positionals in swept_arguments():
        for value in ("", "  "):
            n += 1
            label = f"{command} {action.option_strings[-1] if action.option_strings else action.dest} {value!r}"
            before = snapshot(ws)
            rc, err = _run([command, *_with(bases[command], positionals, action, value)])
            try:
                check_outcome(label, rc, err)
                assert rc == 2, f"{label}: exit status {rc}, not refused\n{err}"
                assert snapshot(ws) == before and not out.exists(), f"{label}: refused, but wrote"
            except AssertionError as e:
                failures.append(str(e)[:400])
            reset(ws)
    assert n > 150
    assert not failures, f"{len(failures)} of {n}:\n" + "\n".join(failures[:20])


def test_a_value_that_starts_with_a_dash_is_shown_how_to_give(ws, monkeypatch):
    """argparse reads ``--eval-every -1%`` or ``--out -runs`` as an option without its value; the one-line
    error says so and how to write it (``--eval-every=-1%``), and that form then reaches the option's
    own check (or is taken), for every single-valued option of every command."""
    monkeypatch.chdir(ws / "scratch")
    out = ws / "scratch" / "out"
    bases, failures, n = base_commands(ws, out), [], 0
    for command, action, positionals in swept_arguments():
        if not action.option_strings or action.nargs is not None:
            continue
        n += 1
        flag, value = action.option_strings[-1], "-z%"
        argv = _with(bases[command], positionals, action, value)
        rc, err = _run([command, *argv])
        try:
            assert rc == 2 and f"write {flag}={value})" in err and err.count("\n") == 1, f"{flag}: {err!r}"
            rc, err = _run([command, *argv[:-2], f"{flag}={value}"])
            assert "expected one argument" not in err, f"{flag}={value}: {err!r}"
        except AssertionError as e:
            failures.append(f"{command} {e}"[:400])
        reset(ws)
    assert n > 60
    assert not failures, f"{len(failures)} of {n}:\n" + "\n".join(failures[:20])


NOT_PLAIN = ("\u0663", "\uff15", "1_0", "0.\u0665", "1_0e-2", "\u0665%")  # other scripts' digits, '_' separators


def test_every_number_option_refuses_digits_int_and_float_would_take():
    """int() and float() read ٣, ５ and 1_0; every option of every command that takes a number — an argparse
    type (Count, Real) or a kind in train's option table — refuses them, generated from the parser and the
    table so that an option added tomorrow is covered."""
    import argparse

    from steepest.commands import _limits
    from steepest.commands._trainconfig import OPTIONS, convert
    from steepest.errors import ConfigError

    typed = [(name, a) for name, a, _ in swept_arguments() if isinstance(a.type, (_limits.Count, _limits.Real))]
    assert len(typed) > 20  # the sweep reaches the number options of every command
    for name, action in typed:
        for text in NOT_PLAIN:
            with pytest.raises(argparse.ArgumentTypeError):
                action.type(text)
    numeric = [o for o in OPTIONS if o.kind not in ("str", "flag", "bool", "choice", "activation")]
    assert {"lr", "epochs", "seed", "dropout", "hidden", "warmup_steps", "batch_size"} <= {o.name for o in numeric}
    for opt in numeric:
        for text in NOT_PLAIN:
            with pytest.raises(ConfigError):
                convert(opt, [text] if opt.kind in ("hidden", "rates") else text)
