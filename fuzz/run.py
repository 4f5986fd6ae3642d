#!/usr/bin/env python3
"""Fuzz steepest's data loaders (and its TOML config reader) with mutated files; count outcomes.

Every input must end one of two ways: a correct load (checked against the Dataset contract) or
steepest's own typed error (a SteepestError). Anything else is a crash: another exception, a load
that breaks the contract ("invalid"), a hang past --timeout, a MemoryError under --mem-mb of
address space, a worker that died, or a pickle that ran ("executed").

    nice -n 19 .venv/bin/python fuzz/run.py --target all --count 100000 --jobs 2
    .venv/bin/python fuzz/run.py --target npz --replay 4711     # one input again, with traceback
    .venv/bin/python fuzz/run.py --engine atheris --target idx --count 20000

An input is a pure function of (--seed, target, index), so every crash replays from its index.
Results go to <out>/RESULTS.json and <out>/RESULTS.md; the first input of each distinct crash is
saved in <out>/crashes/. Each target runs in worker processes, so a segfault or a hang that
ignores the alarm is recorded (and skipped) rather than ending the campaign.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
from targets import TARGETS  # noqa: E402
from targets.common import Case, Invalid, names_a_file  # noqa: E402

BAD, OUTCOMES = report.BAD, report.OUTCOMES
MARKER = "PWNED"  # what the pickles in the npz target would create if unpickled
# What atheris feeds each target: one loader, one file name (it mutates bytes only).
ATHERIS_CASE = {"idx": ("read", ""), "npz": ("load_npz", ".npz"), "csv": ("load_file", ".csv"),
                "image": ("mnist", ".png"), "toml": ("config", ".toml"),
                "tomllib": ("tomllib", ".toml"), "meta": ("model", ".safetensors"), "bombs": ("idx", ".gz")}


class Hang(BaseException):
    """Raised by SIGALRM; a BaseException so that no loader's ``except Exception`` eats it."""


def _alarm(signum, frame):
    raise Hang()


# ---------------------------------------------------------------- one input

def make_case(mod, seed: int, index: int, pool) -> Case:
    return mod.generate(random.Random(f"{seed}:{mod.NAME}:{index}"), pool)


def _where(tb) -> str:
    """The innermost frame in steepest's own code, else the innermost frame."""
    frames = traceback.extract_tb(tb)
    ours = [f for f in frames if "steepest" in f.filename and "/fuzz/" not in f.filename]
    f = (ours or frames or [None])[-1]
    return f"{Path(f.filename).name}:{f.lineno} {f.name}" if f else "?"


def classify(mod, case: Case, work: Path, timeout: float | None):
    """Run one case; return (outcome, detail dict)."""
    from steepest.errors import SteepestError

    typed = getattr(mod, "typed_errors", lambda c: (SteepestError,))(case)
    clear = getattr(mod, "clear", lambda m, c, p: names_a_file(m, p))
    paths, exc = [], None
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if timeout:
            signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            call, paths = mod.prepare(case, work)
            mod.check(call(), case)
            outcome = "load"
        except Invalid as e:
            outcome, exc = "invalid", e
        except typed as e:
            outcome, exc = "typed", e
        except Hang as e:
            outcome, exc = "hang", e
        except MemoryError as e:
            outcome, exc = "memory", e
        except Exception as e:  # noqa: BLE001 - this is what we are looking for
            outcome, exc = "crash", e
        finally:
            if timeout:
                signal.setitimer(signal.ITIMER_REAL, 0)
    seconds = time.perf_counter() - t0
    if timeout and seconds > timeout and outcome != "hang":
        outcome = "hang"  # C code that did not let the alarm in
    if os.path.exists(MARKER):
        os.unlink(MARKER)
        outcome = "executed"
    detail = {"seconds": seconds, "warnings": [f"{w.category.__name__} at {Path(w.filename).name}:{w.lineno}"
                                               for w in caught]}
    if exc is not None:
        detail.update(type=type(exc).__name__, message=str(exc)[:400],
                      where=_where(exc.__traceback__))
        if outcome == "typed":
            detail["clear"] = bool(clear(str(exc), case, paths))
    return outcome, detail


def signature(outcome: str, detail: dict, case: Case) -> str:
    if outcome == "invalid":
        return f"invalid: {detail['message'][:60]}"
    if outcome in ("hang", "executed"):
        return f"{outcome} via {case.how}"
    return f"{detail.get('type', outcome)} at {detail.get('where', '?')}"


# ---------------------------------------------------------------- bookkeeping

def new_stats(target: str, start: int) -> dict:
    return {"target": target, "next": start, "inputs": 0, "outcomes": dict.fromkeys(OUTCOMES, 0),
            "by_how": {}, "typed_classes": {}, "typed_sites": {}, "unclear": 0, "unclear_examples": [], "crashes": {},
            "warnings": {}, "seconds": 0.0, "slowest": []}


def record(stats, outcome, detail, case: Case, index, crash_dir: Path):
    stats["inputs"] += 1
    stats["outcomes"][outcome] += 1
    how = stats["by_how"].setdefault(case.how, dict.fromkeys(OUTCOMES, 0))
    how[outcome] += 1
    stats["seconds"] += detail.get("seconds", 0.0)
    stats["slowest"] = sorted(stats["slowest"] + [[round(detail.get("seconds", 0.0), 4), index, case.how]],
                              reverse=True)[:5]
    for w in detail.get("warnings", ()):
        stats["warnings"][w] = stats["warnings"].get(w, 0) + 1
    if outcome == "typed":
        stats["typed_classes"][detail["type"]] = stats["typed_classes"].get(detail["type"], 0) + 1
        stats["typed_sites"][detail["where"]] = stats["typed_sites"].get(detail["where"], 0) + 1
        if not detail["clear"]:
            stats["unclear"] += 1
            if len(stats["unclear_examples"]) < 5:
                stats["unclear_examples"].append({"index": index, "how": case.how, "message": detail["message"]})
    if outcome in BAD:
        sig = signature(outcome, detail, case)
        c = stats["crashes"].get(sig)
        if c is None:
            crash_dir.mkdir(parents=True, exist_ok=True)
            saved = crash_dir / f"{stats['target']}-{index}{case.suffix or '.bin'}"
            saved.write_bytes(case.data)
            stats["crashes"][sig] = {"count": 1, "first_index": index, "outcome": outcome, "how": case.how,
                                     "options": {k: repr(v) for k, v in case.options.items()},
                                     "type": detail.get("type"), "message": detail.get("message"),
                                     "where": detail.get("where"), "input": str(saved)}
        else:
            c["count"] += 1


def dump(stats, path: Path):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stats))
    os.replace(tmp, path)


def merge(parts: list[dict]) -> dict:
    out = new_stats(parts[0]["target"], 0)
    for s in parts:
        out["inputs"] += s["inputs"]
        out["seconds"] += s["seconds"]
        out["unclear"] += s["unclear"]
        out["unclear_examples"] = (out["unclear_examples"] + s["unclear_examples"])[:5]
        out["slowest"] = sorted(out["slowest"] + s["slowest"], reverse=True)[:5]
        for key in ("outcomes", "typed_classes", "typed_sites", "warnings"):
            for k, v in s[key].items():
                out[key][k] = out[key].get(k, 0) + v
        for how, counts in s["by_how"].items():
            mine = out["by_how"].setdefault(how, dict.fromkeys(OUTCOMES, 0))
            for k, v in counts.items():
                mine[k] += v
        for sig, c in s["crashes"].items():
            first = (lambda c: -1 if c["first_index"] is None else c["first_index"])
            if sig not in out["crashes"] or first(c) < first(out["crashes"][sig]):
                out["crashes"][sig] = dict(c, count=c["count"] + out["crashes"].get(sig, {}).get("count", 0))
            else:
                out["crashes"][sig]["count"] += c["count"]
    return out


# ---------------------------------------------------------------- workers

def _limit_memory(mb: int):
    if mb:
        resource.setrlimit(resource.RLIMIT_AS, (mb << 20, mb << 20))


def worker(args):
    """Run inputs [start, stop) of one target in this process; keep <work>/stats.json current."""
    mod = TARGETS[args.target]
    work = Path(args.work)
    stats_path, crash_dir = work / "stats.json", Path(args.out) / "crashes"
    os.chdir(work)
    warnings.simplefilter("ignore")
    pool = mod.seeds()
    _limit_memory(args.mem_mb)
    signal.signal(signal.SIGALRM, _alarm)
    stats = json.loads(stats_path.read_text()) if stats_path.exists() else new_stats(args.target, args.start)
    skip = {int(i) for i in args.skip.split(",") if i}
    progress = os.open(work / "progress", os.O_RDWR | os.O_CREAT)
    for i in range(stats["next"], args.stop):
        stats["next"] = i + 1
        if i in skip:
            continue
        os.pwrite(progress, f"{i:<20d}".encode(), 0)
        case = make_case(mod, args.seed, i, pool)
        outcome, detail = classify(mod, case, work, args.timeout)
        record(stats, outcome, detail, case, i, crash_dir)
        if i % 200 == 0:
            dump(stats, stats_path)
    dump(stats, stats_path)


def atheris_worker(args):
    """Coverage-guided: libFuzzer picks the bytes (half the mutations are our structure-aware ones)."""
    import atheris

    mod = TARGETS[args.target]
    work = Path(args.work)
    stats_path, crash_dir = work / "stats.json", Path(args.out) / "crashes"
    os.chdir(work)
    warnings.simplefilter("ignore")
    pool = mod.seeds()
    corpus = work / "corpus"
    corpus.mkdir(exist_ok=True)
    for k, data in enumerate(pool):
        (corpus / f"seed-{k}").write_bytes(data)
    # Load what the loaders will use, then instrument every Python function now in memory.
    call, _ = mod.prepare(Case(pool[0], *ATHERIS_CASE[args.target]), work)
    try:
        call()  # imports everything the loader uses: zipfile, gzip, csv, tomllib, Pillow plugins
    except Exception:  # noqa: BLE001 - only the imports matter here
        pass
    atheris.instrument_all()
    _limit_memory(args.mem_mb)
    how, suffix = ATHERIS_CASE[args.target]
    stats = new_stats(args.target, 0)
    n = args.stop - args.start

    def one_input(data: bytes):
        case = Case(data, how=how, suffix=suffix)
        outcome, detail = classify(mod, case, work, None)  # libFuzzer's -timeout watches hangs
        record(stats, outcome, detail, case, stats["inputs"], crash_dir)
        if stats["inputs"] % 200 == 0 or stats["inputs"] >= n:
            stats["next"] = args.start + stats["inputs"]
            dump(stats, stats_path)
        if stats["inputs"] >= n:
            os._exit(0)

    def mutator(data: bytes, max_size: int, seed: int) -> bytes:
        r = random.Random(seed)
        if r.random() < 0.5:
            return atheris.Mutate(data, max_size)
        return mod.mutate_bytes(r, data, pool)[:max_size]

    atheris.Setup([sys.argv[0], str(corpus), f"-seed={args.seed * 1_000_003 + args.start + 1}", "-max_len=200000",
                   f"-timeout={int(args.timeout)}", f"-rss_limit_mb={args.mem_mb or 2048}",
                   f"-runs={10 * n}", "-print_final_stats=1"], one_input, custom_mutator=mutator)
    atheris.Fuzz()


# ---------------------------------------------------------------- the campaign

def _spawn(args, task, skip):
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--target", task["target"],
           "--seed", str(args.seed), "--start", str(task["start"]), "--stop", str(task["stop"]),
           "--work", str(task["work"]), "--out", str(args.out), "--timeout", str(args.timeout),
           "--mem-mb", str(args.mem_mb), "--engine", args.engine, "--skip", ",".join(map(str, skip))]
    # One BLAS thread: the workers are single-threaded, and idle BLAS threads reserve address space.
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    with open(task["work"] / "worker.log", "ab") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def _progress(task) -> int | None:
    try:
        return int((task["work"] / "progress").read_text().strip() or -1)
    except (OSError, ValueError):
        return None


def campaign(args) -> dict:
    names = list(TARGETS) if args.target == "all" else [args.target]
    skipped = {}
    for name in names:
        why = getattr(TARGETS[name], "available", lambda: None)()
        if why:
            skipped[name] = why
    names = [n for n in names if n not in skipped]
    per = {n: args.count // len(names) + (k < args.count % len(names)) for k, n in enumerate(names)}
    root = Path(tempfile.mkdtemp(prefix="steepest-fuzz-"))
    tasks = []
    for name in names:
        step = -(-per[name] // args.jobs)
        for start in range(0, per[name], step):
            work = root / f"{name}-{start}"
            work.mkdir()
            tasks.append({"target": name, "start": start, "stop": min(start + step, per[name]),
                          "work": work, "skip": [], "deaths": []})
    pending, running = list(tasks), []
    t0 = time.time()
    watchdog = max(3 * args.timeout, 30)
    while pending or running:
        while pending and len(running) < args.jobs:
            task = pending.pop(0)
            task["proc"], task["seen"] = _spawn(args, task, task["skip"]), (None, time.time())
            running.append(task)
        time.sleep(0.5)
        for task in list(running):
            rc = task["proc"].poll()
            at = _progress(task)
            if rc is None:
                if at != task["seen"][0]:
                    task["seen"] = (at, time.time())
                elif time.time() - task["seen"][1] > watchdog and args.engine == "mutate":
                    task["proc"].kill()  # stuck in C code that ignores the alarm
                    task["proc"].wait()
                    rc = "killed: hang"
            if rc is None:
                continue
            running.remove(task)
            if rc == 0:
                continue
            if args.engine == "atheris":  # libFuzzer exits on timeout or rss limit
                task["deaths"].append({"index": at, "why": f"exit {rc}"})
                print(f"atheris worker {task['work'].name} exited with {rc}; see its worker.log",
                      file=sys.stderr)
                continue
            task["deaths"].append({"index": at, "why": rc if isinstance(rc, str) else f"exit {rc}"})
            if at is not None:
                task["skip"].append(at)
                pending.insert(0, task)  # resume after the input that killed it
        if args.verbose:
            done = sum(_progress(t) is not None for t in tasks)
            print(f"\r{time.time() - t0:7.0f} s  workers running {len(running)}  started {done}/{len(tasks)}",
                  end="", file=sys.stderr)
    results = {}
    for name in names:
        parts = []
        for task in (t for t in tasks if t["target"] == name):
            stats_path = task["work"] / "stats.json"
            s = json.loads(stats_path.read_text()) if stats_path.exists() else new_stats(name, task["start"])
            for death in task["deaths"]:
                s["inputs"] += 1
                s["outcomes"]["died"] += 1
                sig = f"worker died ({death['why']})"
                s["crashes"].setdefault(sig, {"count": 0, "first_index": death["index"], "outcome": "died",
                                              "how": "?", "type": None, "message": death["why"],
                                              "where": None, "input": None})["count"] += 1
            if args.engine == "atheris":
                status = re.findall(r"cov: \d+ ft: \d+ corp: \d+/\S+", (task["work"] / "worker.log").read_text())
                s["coverage"] = status[-1] if status else None
            parts.append(s)
        results[name] = merge(parts)
        if args.engine == "atheris":
            results[name]["coverage"] = parts[0].get("coverage")
    if not args.keep_work:
        shutil.rmtree(root, ignore_errors=True)
    return {"targets": results, "skipped": skipped, "seconds": round(time.time() - t0, 1), "work": str(root)}


# ---------------------------------------------------------------- reports

def _versions() -> dict:
    import numpy
    import PIL

    out = {"python": sys.version.split()[0], "numpy": numpy.__version__, "pillow": PIL.__version__}
    try:
        import atheris  # noqa: F401

        out["atheris"] = "installed"
    except ImportError:
        out["atheris"] = "not installed"
    return out


def _stdlib(name: str) -> bool:
    return bool(getattr(TARGETS[name], "STDLIB", False))


def replay(args) -> int:
    """Regenerate one input, save it, run it with the full traceback shown."""
    mod = TARGETS[args.target]
    case = make_case(mod, args.seed, args.replay, mod.seeds())
    with tempfile.TemporaryDirectory(prefix="steepest-replay-") as work:
        return _replay(args, mod, case, Path(work))


def _replay(args, mod, case, work: Path) -> int:
    from steepest.errors import SteepestError

    saved = Path(args.out) / "crashes" / f"replay-{args.target}-{args.replay}{case.suffix or '.bin'}"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_bytes(case.data)
    print(f"input {args.replay} of {args.target}: how={case.how} options={case.options} "
          f"{len(case.data)} bytes, saved to {saved}")
    call, _ = mod.prepare(case, work)
    _limit_memory(args.mem_mb)
    try:
        result = call()
        mod.check(result, case)
        print("outcome: load")
    except SteepestError as e:
        print(f"outcome: typed error {type(e).__name__}: {e}")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--target", default="all", choices=["all", *TARGETS])
    p.add_argument("--count", type=int, default=1000, help="inputs in total, split evenly over the targets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--engine", default="mutate", choices=["mutate", "atheris"],
                   help="mutate: our own generators, reproducible by index; atheris: coverage-guided libFuzzer")
    p.add_argument("--jobs", type=int, default=1, help="worker processes at once")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds one input may take")
    p.add_argument("--mem-mb", type=int, default=2048, help="address-space limit of a worker (0: none)")
    p.add_argument("--out", default=str(HERE), help="where RESULTS.json, RESULTS.md and crashes/ go")
    p.add_argument("--replay", type=int, help="run only input number REPLAY of --target, with traceback")
    p.add_argument("--keep-work", action="store_true", help="keep the workers' scratch directories")
    p.add_argument("-v", "--verbose", action="store_true")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--stop", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--skip", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        (atheris_worker if args.engine == "atheris" else worker)(args)
        return 0
    if args.replay is not None:
        if args.target == "all":
            p.error("--replay needs one --target")
        return replay(args)
    command = shlex.join(["fuzz/run.py", *(sys.argv[1:] if argv is None else argv)])
    summary = campaign(args)
    report.write(Path(args.out), {
        "command": command, "seed": args.seed, "engine": args.engine, "timeout_s": args.timeout,
        "mem_limit_mb": args.mem_mb, "jobs": args.jobs, "finished": time.strftime("%Y-%m-%d %H:%M:%S"),
        "wall_seconds": summary["seconds"], "versions": _versions(), "skipped_targets": summary["skipped"],
        "reference_targets": [n for n in summary["targets"] if _stdlib(n)], "targets": summary["targets"]})
    crashes = sum(s["outcomes"][k] for n, s in summary["targets"].items() if not _stdlib(n) for k in BAD)
    total = sum(s["inputs"] for s in summary["targets"].values())
    print(f"\n{total} inputs, {crashes} crashes; see {Path(args.out) / 'RESULTS.md'}")
    return 1 if crashes else 0


if __name__ == "__main__":
    sys.exit(main())
