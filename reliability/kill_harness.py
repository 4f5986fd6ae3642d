"""Kill `steepest train` with SIGKILL at random moments; resume after every kill; lose nothing.

    nice -n 10 python reliability/kill_harness.py              # the full campaign (300 kills) → RESULTS.md
    python reliability/kill_harness.py --kills 10 --no-results  # a quick one

A **round** trains one configuration (``CONFIGS``) into a fresh run directory with the real command,
``python -m steepest train … --checkpoint-every 25``, and kills it with SIGKILL — no handler, no
goodbye — then continues it with ``--resume`` (or, when the kill came before the first checkpoint,
starts it again with the same command or with ``--resume``, alternately: neither needs ``--force``), kills that, and so on, until the round has made its kills; then the
last ``--resume`` runs to the end. Its θ must equal, byte for byte, the θ of the same configuration
trained without interruption. Rounds repeat until the campaign has made its kills.

Each kill picks its moment (from a generator seeded with ``--seed``) in one of five ways:

* ``anytime``  — a uniform delay after the process starts: start-up, data loading, a step, an
  evaluation or a write, wherever it lands;
* ``running``  — once this process has written a checkpoint of its own, a uniform delay of up to
  50 ms (two checkpoints apart);
* ``write``    — the moment a temporary checkpoint (``.checkpoint.safetensors.*.tmp``) appears,
  then 0-1.5 ms: inside :func:`steepest.io.atomic_write`, between mkstemp, write, fsync and rename;
* ``inside``   — at an exact point of the process's N-th checkpoint write (N random): halfway
  through its bytes, on entering fsync, or on entering the rename (``reliability/killpoint.py``:
  hooks on open/fsync/rename, not on steepest, so a write in place would be caught too);
* ``end``      — the same for the model file, written once at the end of a run.

Those four ways are SIGKILLs sent by this harness; ``inside`` and ``end`` are SIGKILLs the process
sends itself at the chosen point. Either way it dies at once, with no handler and no cleanup.

After every kill the run directory is checked:

1. the newest checkpoint loads (:func:`steepest.io.load_checkpoint`);
2. its step is never behind the step of the checkpoint seen after the previous kill;
3. every file that is not a run file is a temporary ``.NAME.XXXXXXXX.tmp`` of a run file: no name a
   reader could take for a checkpoint; loaded as one, it gives a checkpoint or steepest's typed error;
4. no metrics row without its checkpoint; a model file only beside a finished checkpoint with its θ.

A kill "landed during a checkpoint write" when it left a temporary checkpoint behind: evidence, not
intent. The random delays are reproducible; where exactly a kill lands also depends on scheduling.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

CHECKPOINT = Path("checkpoints") / "checkpoint.safetensors"
RUN_FILES = {"config.toml", "metrics.csv", "metrics.jsonl", "model.safetensors", "checkpoints", str(CHECKPOINT)}
EVERY = 25  # --checkpoint-every: 10 checkpoints an epoch, so most kills land mid-epoch

# Each configuration exercises another part of the training state a checkpoint must carry.
COMMON = ["--hidden", "256", "256", "--threads", "1", "--checkpoint-every", str(EVERY)]
CONFIGS = {
    "momentum-f32": ["--optimizer", "momentum", "--lr", "0.01", "--batch-size", "8", "--epochs", "5",
                     "--seed", "3"],
    "adam-f64-cosine-val": ["--optimizer", "adam", "--lr", "0.001", "--batch-size", "8", "--epochs", "4",
                            "--dtype", "float64", "--schedule", "cosine", "--warmup-steps", "100",
                            "--val-split", "0.1", "--seed", "5"],
    "nesterov-l2-patience": ["--optimizer", "nesterov", "--lr", "0.02", "--batch-size", "8", "--epochs", "5",
                             "--l2", "1e-4", "--val-split", "0.2", "--patience", "3", "--seed", "7"],
}
MODES = ("anytime", "running", "write", "inside", "end")
CHANCES = (0.3, 0.2, 0.2, 0.22, 0.08)
POINTS = ("write", "fsync", "rename")
KILLPOINT = Path(__file__).with_name("killpoint.py")


def write_data(path, n=2000, d=32, k=5, seed=0) -> Path:
    """A synthetic classification problem (a linear teacher) with a test split: loads in milliseconds."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(d, k))
    X, X_test = rng.normal(size=(n, d)).astype(np.float32), rng.normal(size=(n // 5, d)).astype(np.float32)
    np.savez(path, X=X, y=(X @ W).argmax(1), X_test=X_test, y_test=(X_test @ W).argmax(1))
    return Path(path)


def command(data, config: str, run, *more) -> list[str]:
    """``steepest train`` arguments of a new run of ``config`` into ``run``."""
    return ["train", "--dataset", str(data), *COMMON, *CONFIGS[config], "--out", str(run), "--quiet", *more]


def launch(args, killpoint=None) -> subprocess.Popen:
    """``python -m steepest ARGS``, or under killpoint.py with ``killpoint = (file, point, n)``."""
    head = [sys.executable, "-m", "steepest"] if killpoint is None else \
        [sys.executable, str(KILLPOINT), *map(str, killpoint)]
    return subprocess.Popen(head + list(args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def temporaries(run: Path) -> list[Path]:
    """Files in the run directory that are not run files (temporaries, or anything unexpected)."""
    out = []
    for d in (run, run / "checkpoints"):
        try:
            out += [d / n for n in os.listdir(d) if str((d / n).relative_to(run)) not in RUN_FILES]
        except FileNotFoundError:
            pass
    return sorted(out)


def _watch_for(proc, run: Path, target: str, old: set, timeout: float) -> bool:
    """Spin until a new temporary of ``target`` appears (True), or the process ends or time runs out."""
    d = run / Path(target).parent
    prefix = f".{Path(target).name}."
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with os.scandir(d) as it:
                for e in it:
                    if e.name.startswith(prefix) and e.name.endswith(".tmp") and e.name not in old:
                        return True
        except FileNotFoundError:
            pass
    return False


def _mtime(path: Path):
    try:
        return path.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def strike(proc, run: Path, mode: str, rng, span: float) -> None:
    """Wait for the moment ``mode`` asks for, then SIGKILL ``proc`` (if it is still running)."""
    old = {p.name for p in temporaries(run)}
    if mode == "anytime":
        time.sleep(rng.uniform(0, span))
    elif mode == "running":
        before = _mtime(run / CHECKPOINT)
        deadline = time.monotonic() + 60
        while _mtime(run / CHECKPOINT) == before and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.0005)
        time.sleep(rng.uniform(0, 0.05))
    elif mode == "write":
        if _watch_for(proc, run, str(CHECKPOINT), old, timeout=120):
            pause = rng.uniform(0, 0.0015)
            if pause > 0.0002:
                time.sleep(pause)
    else:  # inside, end: the process kills itself
        return
    try:
        proc.send_signal(signal.SIGKILL)
    except ProcessLookupError:
        pass


@dataclass
class Tally:
    """What the campaign did and found."""

    kills: int = 0
    modes: Counter = field(default_factory=Counter)
    points: Counter = field(default_factory=Counter)  # inside/end: (file, point) → kills
    during_checkpoint_write: int = 0    # left a .checkpoint.safetensors.*.tmp
    written_into: Counter = field(default_factory=Counter)  # mode → kills that left a temporary checkpoint
    during_other_write: Counter = field(default_factory=Counter)  # model, metrics, config temporaries
    before_first_checkpoint: int = 0
    temporaries_refused: int = 0        # truncated temporary checkpoints: load_checkpoint refused them
    temporaries_complete: int = 0       # written in full, killed before the rename: loadable, never used
    resumes: int = 0
    before_config: int = 0              # of those, during start-up: no config.toml yet
    restarts: int = 0                   # started again (same command / --resume) after a kill before the first checkpoint
    ran_out: int = 0                    # attempts meant to be killed that finished first
    checks: int = 0
    rounds: list = field(default_factory=list)   # (config, kills, θ equal)
    failures: list = field(default_factory=list)

    @property
    def survived(self) -> int:
        """Kills in rounds that ended on the uninterrupted θ with every check passed."""
        return sum(k for _, k, ok in self.rounds if ok)


def inspect(run: Path, last_step: int, tally: Tally, fail):
    """Check the run directory after a kill; return the checkpoint's state (None if there is none)."""
    from steepest.errors import ModelFileError
    from steepest.io import load_checkpoint, load_model

    tally.checks += 1
    for t in temporaries(run):
        # .NAME.XXXXXXXX.tmp (mkstemp's random part has no dots) → NAME, which must be a run file's name
        real = t.name[1:].rsplit(".", 2)[0] if t.name.startswith(".") and t.name.endswith(".tmp") else None
        if real is None or str((t.parent / real).relative_to(run)) not in RUN_FILES:
            fail(f"unexpected file {t.relative_to(run)} after a kill")
            continue
        if real == CHECKPOINT.name:
            tally.during_checkpoint_write += 1
            try:
                load_checkpoint(t)
                tally.temporaries_complete += 1
            except ModelFileError:
                tally.temporaries_refused += 1
            except Exception as e:  # anything but the typed error is a crash of the loader
                fail(f"load_checkpoint on the temporary {t.name} raised {type(e).__name__}: {e}")
        else:
            tally.during_other_write[real] += 1
    ckpt = run / CHECKPOINT
    if not ckpt.exists():
        if (run / "model.safetensors").exists():
            fail("a model file without a checkpoint")
        return None
    try:
        net, state, _ = load_checkpoint(ckpt)
    except Exception as e:
        fail(f"the checkpoint does not load after a kill: {type(e).__name__}: {e}")
        return None
    if state.step < last_step:
        fail(f"the checkpoint went back from step {last_step} to step {state.step}")
    try:
        rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines(keepends=True)
                if x.endswith("\n")]
    except (FileNotFoundError, json.JSONDecodeError) as e:  # a resume rewrites them from the checkpoint
        rows = []
        if not isinstance(e, FileNotFoundError):
            fail(f"metrics.jsonl has a malformed complete line: {e}")
    if len(rows) > len(state.history.epochs):
        fail(f"{len(rows)} metrics rows but the checkpoint holds {len(state.history.epochs)} epochs")
    if (run / "model.safetensors").exists():
        try:
            _, theta, _ = load_model(run / "model.safetensors")
        except Exception as e:
            fail(f"the model file does not load after a kill: {type(e).__name__}: {e}")
        else:
            if state.stop_reason in (None, "interrupted") or theta.tobytes() != state.theta.tobytes():
                fail("a model file that is not the finished checkpoint's θ")
    return state


def reference(data, config: str, workdir: Path) -> dict:
    """The uninterrupted run: θ bytes, the epochs' train losses, and its wall time."""
    from steepest.io import load_model

    run = workdir / f"whole-{config}"
    t = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "steepest", *command(data, config, run)], capture_output=True,
                       text=True, timeout=600)
    seconds = time.monotonic() - t
    if r.returncode != 0:
        raise RuntimeError(f"the uninterrupted {config} run failed: {r.stderr}")
    losses = [json.loads(x)["train_loss"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {"theta": load_model(run / "model.safetensors")[1].tobytes(), "losses": losses, "seconds": seconds}


def run_round(index: int, config: str, data, ref: dict, workdir: Path, quota: int, rng, tally: Tally, log) -> None:
    """One run directory, killed ``quota`` times (fewer if it finishes first), then finished and compared."""
    from steepest.io import load_model

    run = workdir / f"round-{index:03d}-{config}"
    new = command(data, config, run)
    cmd, made, last_step, ok = new, 0, -1, True

    def fail(msg):
        nonlocal ok
        ok = False
        tally.failures.append(f"round {index} ({config}), kill {made}: {msg}")
        log(f"  FAIL: {msg}")

    while True:
        kill = made < quota
        mode = MODES[rng.choice(len(MODES), p=CHANCES)] if kill else None
        point = None
        if mode == "inside":
            point = (CHECKPOINT.name, POINTS[rng.integers(len(POINTS))], int(rng.integers(1, 13)))
        elif mode == "end":
            point = ("model.safetensors", POINTS[rng.integers(len(POINTS))], 1)
        proc = launch(cmd, point)
        if kill:
            strike(proc, run, mode, rng, span=ref["seconds"] * 0.8)
        _, err = proc.communicate(timeout=600)
        if proc.returncode == -signal.SIGKILL:
            made += 1
            tally.kills += 1
            tally.modes[mode] += 1
            if point:
                tally.points[f"{point[0]} {point[1]}"] += 1
            inside = tally.during_checkpoint_write
            state = inspect(run, last_step, tally, fail)
            tally.written_into[mode] += tally.during_checkpoint_write - inside
            if state is None:
                tally.before_first_checkpoint += 1
                tally.restarts += 1
                # Nothing to continue from: the same command starts it again, and so does --resume
                # (alternately, so both ways are tried); --force is not needed. A kill during start-up,
                # before config.toml was written, left nothing --resume could start from: only the
                # same command can (and --resume rightly refuses a directory that holds no run).
                written = (run / "config.toml").is_file()
                tally.before_config += not written
                cmd = new if tally.restarts % 2 or not written else ["train", "--resume", str(run), "--quiet"]
                continue
            last_step = state.step
            if state.stop_reason not in (None, "interrupted") and (run / "model.safetensors").exists():
                break  # killed after its last write: nothing left to do
            tally.resumes += 1
            cmd = ["train", "--resume", str(run), "--quiet"]
            continue
        if kill:
            tally.ran_out += 1
        if proc.returncode != 0:
            fail(f"exit status {proc.returncode}: {err.strip()[-500:]}")
            break
        break
    try:
        theta = load_model(run / "model.safetensors")[1].tobytes()
        losses = [json.loads(x)["train_loss"] for x in (run / "metrics.jsonl").read_text().splitlines()]
    except Exception as e:
        fail(f"the finished run cannot be read: {type(e).__name__}: {e}")
    else:
        if theta != ref["theta"]:
            fail("θ differs from the uninterrupted run")
        if losses != ref["losses"]:
            fail("the per-epoch training losses differ from the uninterrupted run")
    left = temporaries(run)
    if left:
        fail(f"files left at the end: {[str(p.relative_to(run)) for p in left]}")
    tally.rounds.append((config, made, ok))
    log(f"round {index:3d} {config:22s} kills {made:2d}  {'θ equal, all checks passed' if ok else 'FAILED'}  "
        f"(total {tally.kills} kills, {tally.during_checkpoint_write} in checkpoint writes)")


def campaign(workdir, kills: int = 300, seed: int = 0, configs=tuple(CONFIGS), per_round: int = 8, log=print) -> Tally:
    """Make at least ``kills`` SIGKILLs across rounds of ``configs`` (in turn); return the tally."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    data = write_data(workdir / "syn.npz")
    refs = {c: reference(data, c, workdir) for c in configs}
    rng = np.random.default_rng(seed)
    tally, index = Tally(), 0
    while tally.kills < kills:
        config = configs[index % len(configs)]
        quota = min(per_round, kills - tally.kills)
        run_round(index, config, data, refs[config], workdir, quota, rng, tally, log)
        index += 1
    return tally


def environment_line() -> str:
    from steepest.io import environment

    env = environment()
    blas = ", ".join(f"{b.get('internal_api')} {b.get('version')} ({b.get('architecture', '?')})" for b in env["blas"])
    return f"steepest {env['steepest']}, NumPy {env['numpy']}, {blas or 'BLAS unknown'}, Python {env['python']}, " \
           f"{env['platform']}, {os.cpu_count()} CPUs"


def results_markdown(tally: Tally, argv, seconds: float, per_round: int) -> str:
    equal = sum(ok for _, _, ok in tally.rounds)
    other = ", ".join(f"{n} in a {name} write" for name, n in sorted(tally.during_other_write.items())) or "none"
    modes = ", ".join(f"{tally.modes[m]} {m}" for m in MODES)
    outside = sum(n for m, n in tally.written_into.items() if m not in ("inside", "end"))
    by_config = Counter(c for c, _, _ in tally.rounds)
    lines = [
        "# Kill campaign: SIGKILL during `steepest train`, then `--resume`",
        "",
        f"Run {time.strftime('%Y-%m-%d %H:%M %Z')} with",
        "",
        "```",
        f"{' '.join(argv)}",
        "```",
        "",
        f"on {environment_line()}; {seconds / 60:.1f} minutes.",
        "",
        "| | |",
        "| --- | --- |",
        f"| kills made (SIGKILL) | **{tally.kills}** |",
        f"| kills survived (every check passed, the round ended on the uninterrupted θ) | **{tally.survived}** |",
        f"| kills that landed during a checkpoint write (a temporary checkpoint was left) | "
        f"{tally.during_checkpoint_write} ({outside} sent from outside at a timed moment, "
        f"{tally.written_into['inside']} at an exact point from inside) |",
        f"| ... of which the temporary was truncated / complete but not yet renamed | "
        f"{tally.temporaries_refused} / {tally.temporaries_complete} |",
        f"| kills during other writes | {other} |",
        f"| kills before the first checkpoint (started again by the same command or `--resume`, no `--force`) | {tally.before_first_checkpoint} |",
        f"| … of which during start-up, before config.toml was written (started again by the same command) | "
        f"{tally.before_config} |",
        f"| resumes (`--resume`, each of which could be killed again) | {tally.resumes} |",
        f"| kill moments chosen | {modes} |",
        f"| exact points of `inside` / `end` kills | "
        f"{', '.join(f'{n} at {k}' for k, n in sorted(tally.points.items())) or 'none'} |",
        f"| attempts that finished before their kill | {tally.ran_out} |",
        f"| checks of the run directory after a kill | {tally.checks} |",
        f"| rounds ending with θ equal to the uninterrupted run, bit for bit | **{equal} / {len(tally.rounds)}** "
        f"({', '.join(f'{n} {c}' for c, n in by_config.items())}) |",
        f"| failures | **{len(tally.failures)}** |",
        "",
    ]
    if tally.failures:
        lines += ["## Failures", ""] + [f"- {f}" for f in tally.failures] + [""]
    lines += [
        "## What was done",
        "",
        f"Each round trains one configuration into a fresh run directory with `python -m steepest train ... "
        f"{' '.join(COMMON)}` on a synthetic 2000 × 32, 5-class `.npz`, kills it up to {per_round} times "
        "(each resume may be killed again), then lets the last `--resume` finish and compares the model's θ "
        "bytes and the per-epoch training losses with an uninterrupted run of the same configuration. "
        "After every kill: the checkpoint loads, its step never goes back, every leftover file is a "
        "`.NAME.XXXXXXXX.tmp` temporary of a run file (a truncated temporary checkpoint is refused by "
        "`load_checkpoint` with its typed error), no metrics row is ahead of the checkpoint, and a model "
        "file only sits beside a finished checkpoint with the same θ. At the end of each round no temporary "
        "is left (`--resume` removes them). Kill moments are described in `reliability/kill_harness.py`.",
        "",
        "Configurations:",
        "",
    ]
    lines += [f"- `{name}`: `{' '.join(args)}`" for name, args in CONFIGS.items() if name in by_config]
    lines += [
        "",
        "## What it cannot show",
        "",
        "A SIGKILL ends the process, not the machine: bytes already handed to the kernel survive it. So "
        "this campaign shows that no reader ever sees a half-written checkpoint or model, and that resuming "
        "loses nothing, but not that the data would survive a power cut — that rests on the fsync of the "
        "file and of its directory in `steepest.io.atomic_write`, which only reading the code confirms. "
        "To see the harness fail, run it against a copy of steepest whose `atomic_write` writes the file "
        "in place (`PYTHONPATH=/path/to/copy/src python reliability/kill_harness.py --kills 20 --no-results`): "
        "`inside`/`write` kills then leave checkpoints that do not load.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--kills", type=int, default=300, help="SIGKILLs to make in all (default 300)")
    p.add_argument("--per-round", type=int, default=8, help="kills per run directory before it may finish")
    p.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    p.add_argument("--configs", nargs="+", choices=tuple(CONFIGS), default=tuple(CONFIGS))
    p.add_argument("--workdir", help="where the run directories go (default: a new temporary directory)")
    p.add_argument("--keep", action="store_true", help="keep the run directories")
    p.add_argument("--results", default=str(Path(__file__).with_name("RESULTS.md")),
                   help="write the figures here (default reliability/RESULTS.md)")
    p.add_argument("--no-results", dest="results", action="store_const", const=None)
    args = p.parse_args(argv)
    import shutil
    import tempfile

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="steepest-kills-"))
    t = time.monotonic()
    try:
        tally = campaign(workdir, args.kills, args.seed, tuple(args.configs), args.per_round)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    seconds = time.monotonic() - t
    print(f"\n{tally.kills} kills, {tally.survived} survived, {tally.during_checkpoint_write} during checkpoint "
          f"writes, {tally.resumes} resumes, {len(tally.failures)} failures, {seconds:.0f} s")
    if args.results:
        shown = ["python", "reliability/kill_harness.py", *(argv if argv is not None else sys.argv[1:])]
        if os.getpriority(os.PRIO_PROCESS, 0) > 0:
            shown = ["nice", "-n", str(os.getpriority(os.PRIO_PROCESS, 0))] + shown
        Path(args.results).write_text(results_markdown(tally, shown, seconds, args.per_round))
        print(f"written to {args.results}")
    return 1 if tally.failures else 0


if __name__ == "__main__":
    sys.exit(main())
