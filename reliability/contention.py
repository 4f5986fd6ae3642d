"""Two processes in one run directory, and a full disk under every command that writes.

    nice -n 10 python reliability/contention.py                  # both parts → RESULTS-contention.md
    python reliability/contention.py --rounds 2 --no-results      # a quick one

**Concurrent resume.** Each round trains a small run with the real command, kills it (SIGKILL)
after its first checkpoint, then starts two ``steepest train --resume RUN_DIR`` at the same
moment — and, every other round, a third process, ``steepest train … --out RUN_DIR --force``,
trying to start over in the same directory. Exactly one may train; every other must exit 2 with
one line saying the directory is in use, having changed nothing. When the winner ends, the metrics
files hold each epoch once and in order, and θ equals that of a run never interrupted, bit for
bit.

**Full disk, every command.** Each command that writes files — train, compare, landscape,
explain, report, export (ONNX), and the lab's *save run* (``POST /api/save`` to a real
``steepest lab`` server, no browser) — runs with its output on a file system that is full but for ``free`` bytes
(0, 4 kB, 64 kB, 512 kB, 2 MB). A small tmpfs (``mount -t tmpfs -o size=8m``, needs root) is
filled with a filler file; where no tmpfs can be mounted, ``RLIMIT_FSIZE`` set in the child
(with SIGXFSZ ignored) stands in for it (the output says which). Each run must end with exit 0,
or exit 2 and one line naming a file (the lab: HTTP 200, or 400 with that line); every file left in the
output directory must be whole (PNG decodes, JSON parses, HTML ends with ``</html>``, the ONNX graph
passes ``onnx.checker``), a file that existed before is either the
old one or the new one (``report.html`` written over an older one: never truncated), and no
temporary ``.*.tmp`` file may be left.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))  # run as a script or imported by the tests
import kill_harness  # noqa: E402  (its synthetic data)

HERE = Path(__file__).resolve().parent
TRAIN = ["--hidden", "64", "--batch-size", "4", "--lr", "0.01", "--optimizer", "momentum", "--epochs", "4",
         "--seed", "3", "--threads", "1", "--checkpoint-every", "20", "--quiet"]
FREE = (0, 4096, 65536, 512 * 1024, 2 * 2**20)


def steepest(*args, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "steepest", *map(str, args)], capture_output=True, text=True,
                          timeout=600, **kw)


def popen(*args, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "steepest", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def write_data(path, n=600, d=16, k=4, seed=0):
    """The kill harness's synthetic problem (a linear teacher), smaller."""
    return kill_harness.write_data(path, n=n, d=d, k=k, seed=seed)


def theta(run: Path) -> bytes:
    from steepest.io import load_model

    return load_model(run / "model.safetensors")[1].tobytes()


# ---------------------------------------------------------------- concurrent resume

def one_round(k: int, data: Path, work: Path, whole: bytes, fail) -> dict:
    run = work / f"run-{k}"
    proc = popen("train", "--dataset", data, *TRAIN, "--out", run)
    ck = run / "checkpoints" / "checkpoint.safetensors"
    deadline = time.monotonic() + 300
    while not ck.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    if not ck.exists():
        return {"skipped": 1}
    rivals = [["train", "--resume", run, "--quiet"], ["train", "--resume", run, "--quiet"]]
    if k % 2:
        rivals.append(["train", "--dataset", data, *TRAIN, "--out", run, "--force"])
    procs = [popen(*r) for r in rivals]
    results = [(p.wait(timeout=600), p.stdout.read(), p.stderr.read()) for p in procs]
    winners = [r for r in results if r[0] == 0]
    refused = [r for r in results if r[0] == 2]
    if len(winners) != 1 or len(refused) != len(rivals) - 1:
        fail(f"round {k}: exit statuses {[r[0] for r in results]}: " + " | ".join(r[2].strip() for r in results))
    late = 0
    for rc, _, err in refused:
        lines = err.strip().splitlines()
        if len(lines) == 1 and "already finished" in lines[0]:
            late += 1  # it started after the winner had ended: refused, but not for being second at once
        elif len(lines) != 1 or "in use" not in lines[0]:
            fail(f"round {k}: the refused process said {err!r}")
    epochs = [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    rows = (run / "metrics.csv").read_text().splitlines()[1:]
    if epochs != sorted(set(epochs)) or len(rows) != len(epochs):
        fail(f"round {k}: metrics hold epochs {epochs} and {len(rows)} CSV rows")
    if theta(run) != whole:
        fail(f"round {k}: θ differs from the uninterrupted run")
    return {"rounds": 1, "processes": len(rivals), "refused": len(refused), "late": late}


def concurrent(args, data: Path, work: Path, fail) -> dict:
    ref = work / "whole"
    r = steepest("train", "--dataset", data, *TRAIN, "--out", ref)
    assert r.returncode == 0, r.stderr
    whole = theta(ref)
    total: dict = {}
    for k in range(args.rounds):
        for key, v in one_round(k, data, work, whole, fail).items():
            total[key] = total.get(key, 0) + v
    return total


# ---------------------------------------------------------------- full disk

def mount_tmpfs(d: Path, mb=8) -> bool:
    d.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or not shutil.which("mount"):
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={mb}m", "tmpfs", str(d)],
                          capture_output=True).returncode == 0


def fill(disk: Path, free: int) -> None:
    """Leave ``free`` bytes on the file system of ``disk``."""
    filler = disk / ".filler"
    filler.unlink(missing_ok=True)
    st = os.statvfs(disk)
    size = max(0, st.f_bavail * st.f_frsize - free)
    with open(filler, "wb") as f:
        chunk = bytes(2**20)
        while size > 0:
            try:
                f.write(chunk[: min(size, len(chunk))])
                f.flush()
            except OSError:
                break
            size -= len(chunk)


def whole_file(p: Path) -> bool:
    data = p.read_bytes()
    if p.suffix == ".png":
        from PIL import Image
        import io

        try:
            Image.open(io.BytesIO(data)).load()
            return True
        except Exception:  # noqa: BLE001 - any failure to decode is a damaged file
            return False
    if p.suffix in (".json",):
        try:
            json.loads(data)
            return True
        except ValueError:
            return False
    if p.suffix == ".html":
        return data.endswith(b"</html>\n")
    if p.suffix == ".svg":
        return data.rstrip().endswith(b"</svg>")
    if p.suffix == ".onnx":
        import onnx

        try:
            onnx.checker.check_model(onnx.load_model_from_string(data))
            return True
        except Exception:  # noqa: BLE001 - any failure to parse or check is a damaged file
            return False
    if p.suffix == ".safetensors":
        from steepest.io import read_safetensors

        try:
            read_safetensors(p)
            return True
        except Exception:  # noqa: BLE001
            return False
    return len(data) > 0 and data.endswith(b"\n") if p.suffix in (".csv", ".toml", ".jsonl") else True


def commands(data: Path, model: Path, out: Path) -> dict:
    return {
        "train": ["train", "--dataset", data, "--hidden", "8", "--epochs", "1", "--out", out / "run", "--quiet"],
        "compare": ["compare", "--dataset", data, "--hidden", "8", "--epochs", "1", "--runs", "gd", "sgd:batch=32",
                    "--noise-batches", "4", "--noise-draws", "2", "--n-samples", "100", "--out", out / "cmp", "--quiet"],
        "landscape": ["landscape", model, "--dataset", data, "--parts", "line", "probe", "--n-samples", "100",
                      "--out", out / "land", "--quiet"],
        "explain": ["explain", model, "--dataset", data, "--batch", "16", "--units", "4", "--out", out / "expl",
                    "--quiet"],
        "report": ["report", model, "--out", out / "report.html"],
        "export": ["export", model, "-o", out / "model.onnx"],
        "lab save": ["lab", "--dataset", data, "--hidden", "8", "--no-browser", "--port", "0", "--runs-dir", out],
    }


def lab_save(argv, pre) -> SimpleNamespace:
    """Start the real ``steepest lab`` (``argv``), train a moment, ``POST /api/save``, stop it with Ctrl-C.

    Returns what a command would: ``returncode`` 0 when the save answered 200, 2 and the error as one
    ``steepest: error:`` line when it answered 400; anything else (a 500, no answer, a traceback
    from the server, even at its exit, when it saves the run once more) is exit 1 with the details.
    """
    import urllib.error
    import urllib.request

    proc = popen(*argv, preexec_fn=pre)
    try:
        line = proc.stdout.readline()
        if not line.startswith("lab: http://"):
            proc.kill()
            return SimpleNamespace(returncode=1, stderr=f"no URL line: {line!r} {proc.communicate()[1]}")
        base, token = line.split(" ", 1)[1].strip().split("/?token=")

        def post(path, body):
            req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json", "X-Lab-Token": token})
            try:
                with urllib.request.urlopen(req, timeout=60) as r:
                    return r.status, json.loads(r.read())
            except urllib.error.HTTPError as e:
                return e.code, json.loads(e.read() or b"{}")

        post("/api/start", {})
        time.sleep(0.5)
        post("/api/pause", {})
        status, answer = post("/api/save", {"name": "saved"})
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            _, err = proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    if "Traceback" in err or proc.returncode != 0:
        return SimpleNamespace(returncode=1, stderr=f"the lab ended with {proc.returncode}: {err[-500:]}")
    if status == 200:
        return SimpleNamespace(returncode=0, stderr="")
    if status == 400 and isinstance(answer.get("error"), str):
        return SimpleNamespace(returncode=2, stderr=f"steepest: error: {answer['error']}\n")
    return SimpleNamespace(returncode=1, stderr=f"/api/save answered {status}: {answer}")


def full_disk(args, data: Path, work: Path, fail, only=None, free_list=FREE) -> dict:
    model = work / "model"
    r = steepest("train", "--dataset", data, "--hidden", "8", "--epochs", "1", "--out", model, "--quiet")
    assert r.returncode == 0, r.stderr
    disk = work / "disk"
    tmpfs = mount_tmpfs(disk)
    how = "tmpfs of 8 MiB, filled" if tmpfs else "RLIMIT_FSIZE in the child (no tmpfs could be mounted)"
    tally = {"how": how, "runs": 0, "refused": 0, "completed": 0}
    try:
        for name, argv in commands(data, model, disk).items():
            if only and name not in only:
                continue
            for free in free_list:
                for p in disk.iterdir():
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
                old = None
                if name == "report":  # an older report that must survive
                    (disk / "report.html").write_text("<!DOCTYPE html><html>old</html>\n")
                    old = hashlib.sha256((disk / "report.html").read_bytes()).hexdigest()
                if tmpfs:
                    fill(disk, free)
                    pre = None
                else:
                    def pre(free=free):
                        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                        resource.setrlimit(resource.RLIMIT_FSIZE, (free, free))
                r = lab_save(argv, pre) if name == "lab save" else steepest(*argv, preexec_fn=pre)
                (disk / ".filler").unlink(missing_ok=True)
                tally["runs"] += 1
                label = f"{name} with {free} bytes free"
                lines = r.stderr.strip().splitlines()
                if r.returncode == 0:
                    tally["completed"] += 1
                elif r.returncode == 2 and len(lines) == 1 and lines[0].startswith("steepest: error:"):
                    tally["refused"] += 1
                    if str(disk) not in lines[0] and "No space" not in lines[0] and "too large" not in lines[0]:
                        fail(f"{label}: the message names no file: {lines[0]}")
                else:
                    fail(f"{label}: exit {r.returncode}: {r.stderr.strip()[-500:]}")
                for p in disk.rglob("*"):
                    if p.is_file() and p.name.endswith(".tmp"):
                        fail(f"{label}: temporary file left: {p}")
                    elif p.is_file() and p.name != ".filler" and not whole_file(p):
                        fail(f"{label}: damaged file {p.relative_to(disk)} ({p.stat().st_size} bytes)")
                if name == "lab save" and r.returncode == 2 and any(p.is_dir() for p in disk.iterdir()):
                    fail(f"{label}: a refused save left a run directory behind: {sorted(p.name for p in disk.iterdir())}")
                if old and r.returncode != 0 and hashlib.sha256((disk / "report.html").read_bytes()).hexdigest() != old:
                    fail(f"{label}: the older report.html was changed by a failed write")
    finally:
        if tmpfs:
            subprocess.run(["umount", "-l", str(disk)])
    return tally


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10, help="concurrent-resume rounds (default 10)")
    ap.add_argument("--no-results", action="store_true", help="do not write RESULTS-contention.md")
    ap.add_argument("--skip-disk", action="store_true")
    args = ap.parse_args(argv)
    failures = []
    work = Path(tempfile.mkdtemp(prefix="steepest-contention-"))
    t0 = time.time()
    try:
        data = write_data(work / "syn.npz")
        conc = concurrent(args, data, work, failures.append)
        disk = {} if args.skip_disk else full_disk(args, data, work, failures.append)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = {"concurrent": conc, "full_disk": disk, "failures": failures, "seconds": round(time.time() - t0)}
    print(json.dumps(summary, indent=1))
    if not args.no_results:
        lines = ["# Two processes in one run directory; a full disk under every command", "",
                 f"Written by `reliability/contention.py --rounds {args.rounds}` ({summary['seconds']} s).", "",
                 f"- concurrent resume: {conc.get('rounds', 0)} rounds, {conc.get('processes', 0)} rival processes, "
                 f"{conc.get('refused', 0)} refused with one line, one winner each; metrics and θ checked",
                 f"- full disk ({disk.get('how', 'skipped')}): {disk.get('runs', 0)} runs of train, compare, landscape, "
                 f"explain, report, export, the lab's save; {disk.get('completed', 0)} completed, {disk.get('refused', 0)} refused with one line",
                 f"- failures: {len(failures)}", ""] + [f"  - {f}" for f in failures]
        (HERE / "RESULTS-contention.md").write_text("\n".join(lines) + "\n")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
