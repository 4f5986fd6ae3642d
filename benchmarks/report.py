"""The markdown report of benchmarks/run.py: headline ratios against the speed targets, then one table
per workload. Pure formatting: takes the results dict that :func:`run.main` builds."""

from __future__ import annotations

import os
import shlex
import time

# The speed targets (a fused step and a measured thread policy), on the 2-core development machines.
TARGETS = {
    "a_torch": 0.5, "a_floor": 1.25, "a_flops": 1.5, "b_floor": 1.1, "c_seconds": 4.0, "c_torch": 0.5,
    "d_rss": 0.5, "d_import": 0.15, "e_quiet": 1.0, "e_busy": 1.3,
}


def _blas_kernel(info) -> str:
    """NumPy's BLAS in a few words: ``scipy_openblas 0.3.31 Haswell kernel``."""
    for b in info.get("blas", []):
        if b.get("user_api") == "blas":
            return f"{b.get('prefix') or b.get('internal_api')} {b.get('version')} {b.get('architecture')} kernel"
    return "BLAS unknown"


def _fmt_s(s):
    if s is None:
        return "—"
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.3f} s"


def _spread(r):
    return f"{_fmt_s(r['min'])} – {_fmt_s(r['max'])}"


def _ratio(a, b):
    return None if a is None or b is None or b == 0 else a / b


def _fmt_ratio(x):
    return "n/a" if x is None else f"{x:.2f}×"


def timing_table(r, floor_key="GEMM floor"):
    """Rows: floor and each library (median, spread, IQR, ×floor, cold), then the ratio rows."""
    floor = r[floor_key]["median"]
    lines = ["| | median | min – max | IQR | × GEMM floor | cold (first run) | steepest's own `seconds` |",
             "|---|---|---|---|---|---|---|"]
    for name, v in r.items():
        if not isinstance(v, dict) or "median" not in v:
            continue
        hs = v.get("history_seconds")
        lines.append(f"| {name} | {_fmt_s(v['median'])} | {_spread(v)} | {_fmt_s(v['q1'])} – {_fmt_s(v['q3'])} "
                     f"| {_fmt_ratio(v['median'] / floor)} | {_fmt_s(v.get('cold'))} "
                     f"| {_fmt_s(hs['median']) if hs else ''} |")
    s, s_min = r["steepest"]["median"], r["steepest"]["min"]
    lines.append("")
    lines.append("| ratio | of medians | of minima (least disturbed runs) |")
    lines.append("|---|---|---|")
    for name in ("PyTorch", "scikit-learn"):
        other = r.get(name, {})
        lines.append(f"| steepest / {name} | {_fmt_ratio(_ratio(s, other.get('median')))} "
                     f"| {_fmt_ratio(_ratio(s_min, other.get('min')))} |")
    lines.append(f"| steepest / GEMM floor | {_fmt_ratio(s / floor)} | {_fmt_ratio(s_min / r[floor_key]['min'])} |")
    return "\n".join(lines)


def headline(results):
    """[(what, measured, unit "×" or "s", target or None)] for the issue's targets."""
    rows = []
    a = results.get("a", {})
    if 128 in a:
        r = a[128]
        s = r["steepest"]["median"]
        rows.append(("(a) epoch, batch 128: steepest / PyTorch",
                     _ratio(s, r.get("PyTorch", {}).get("median")), "×", TARGETS["a_torch"]))
        rows.append(("(a) epoch, batch 128: steepest / scikit-learn",
                     _ratio(s, r.get("scikit-learn", {}).get("median")), "×", None))
        rows.append(("(a) epoch, batch 128: steepest / GEMM floor", s / r["GEMM floor"]["median"], "×",
                     TARGETS["a_floor"]))
        peak = max((x["gflops"] for x in results.get("sgemm", [])), default=None)
        if peak:  # all of the epoch's FLOPs at the machine's best SGEMM rate (its largest products)
            rows.append(("(a) epoch, batch 128: steepest / FLOP floor", s / (r["GEMM floor"]["gflops"] / peak),
                         "×", TARGETS["a_flops"]))
        rows.append(("(a) epoch, batch 128: steepest", s, "s", None))
        ref = r.get("steepest, NumPy path", {}).get("median")
        if ref:
            rows.append(("(a) epoch, batch 128: steepest's NumPy path / GEMM floor", ref / r["GEMM floor"]["median"],
                         "×", None))
    if "b" in results:
        r = results["b"]
        s = r["steepest"]["median"]
        rows.append(("(b) full-batch step: steepest / GEMM floor", s / r["GEMM floor"]["median"], "×",
                     TARGETS["b_floor"]))
        rows.append(("(b) full-batch step: steepest / PyTorch",
                     _ratio(s, r.get("PyTorch", {}).get("median")), "×", None))
        ref = r.get("steepest, NumPy path", {}).get("median")
        if ref:
            rows.append(("(b) full-batch step: steepest's NumPy path / GEMM floor", ref / r["GEMM floor"]["median"],
                         "×", None))
    if "c" in results:
        c = results["c"]["libs"]
        s = c["steepest"]["seconds"]
        p = c.get("PyTorch", {}).get("seconds")
        rows.append(("(c) training seconds to 98% test accuracy, steepest", s and s["median"], "s",
                     TARGETS["c_seconds"]))
        rows.append(("(c) training seconds to 98% test accuracy, PyTorch", p and p["median"], "s", None))
        rows.append(("(c) seconds to 98%: steepest / PyTorch", _ratio(s and s["median"], p and p["median"]), "×",
                     TARGETS["c_torch"]))
    if "d" in results:
        d = results["d"]
        if d["rss"]:
            rows.append(("(d) peak RSS: steepest / PyTorch",
                         _ratio(d["rss"]["steepest"]["peak_kb"], d["rss"].get("PyTorch", {}).get("peak_kb")),
                         "×", TARGETS["d_rss"]))
        rows.append(("(d) `import steepest`", d["import"]["steepest"]["seconds"], "s", TARGETS["d_import"]))
    if "e" in results:
        for load, r in results["e"]["loads"].items():
            fixed = {k: v["median"] for k, v in r.items() if k != "measured"}
            best = min(fixed, key=fixed.get)
            top = f"{results['e']['counts'][-1]} thread{'s' * (results['e']['counts'][-1] > 1)}"
            if load == 0:
                rows.append((f"(e) as the machine is: measured threads / {top} (the old default)",
                             r["measured"]["median"] / fixed[top], "×", TARGETS["e_quiet"]))
            else:
                rows.append((f"(e) {load} competing process{'es' * (load > 1)}: measured threads / best fixed "
                             f"({best})", r["measured"]["median"] / fixed[best], "×", TARGETS["e_busy"]))
    return rows


def render(results, info, args, elapsed):
    L = []
    cmd = "python benchmarks/run.py" + ("" if not args.argv else " " + shlex.join(args.argv))
    L += ["# steepest benchmark results", "",
          "Generated by `benchmarks/run.py` — do not edit by hand; rerun it (`make bench`).", "",
          f"Command: `{cmd}`  ", f"Date: {time.strftime('%Y-%m-%d %H:%M %Z')}; run took {elapsed:.0f} s; "
          f"load average at start {info['loadavg_start'][0]:.2f}, at end {os.getloadavg()[0]:.2f} "
          f"(other work on the machine shows up as spread).  ",
          "CPUs used by other processes during each workload (from /proc/stat): " + (", ".join(
              f"({k}) {v['others']:.2f}" + (f" + steal {v['steal']:.2f}" if v["steal"] > 0.005 else "")
              for k, v in results.get("contention", {}).items()) or "not measured"), ""]
    busy = max((v["others"] for k, v in results.get("contention", {}).items() if k != "e"), default=0.0)
    if busy > 0.25:
        L += [f"**Warning: other processes kept {busy:.1f} CPUs busy during this run.** With as many BLAS "
              "threads as cores, every multi-threaded matrix product waits for its slowest thread, so a "
              "busy machine inflates times (steepest's many small products most) and spreads them widely. "
              "Prefer a quiet machine, or compare at `--threads 1`.", ""]
    L += ["## Headline", "", f"Measured on {info['cpu']}, {info['affinity']} CPUs, {_blas_kernel(info)}, "
          f"{info['threads']} threads (details under Machine).", "",
          "| what | measured | target |", "|---|---|---|"]
    for what, val, unit, target in headline(results):
        tgt = "" if target is None else (f"≤ {target} s" if unit == "s" else f"≤ {target}×")
        if val is None:
            L.append(f"| {what} | n/a | {tgt} |")
            continue
        shown = f"{val:.2f} s" if unit == "s" else f"{val:.2f}×"
        met = "" if target is None else (" ✓" if val <= target else " ✗")
        L.append(f"| {what} | {shown}{met} | {tgt} |")
    L += ["", "## Machine", ""]
    L.append(f"- CPU: {info['cpu']} ({info.get('cpu_family', '')}), {info['cores']} logical CPUs, "
             f"{info['affinity']} usable; {info.get('mhz', '?')} MHz; flags: {info['flags']}"
             f"{'; virtual machine' if info.get('hypervisor') else ''}; RAM {info.get('mem_gb', 0):.0f} GiB")
    L.append(f"- Threads per library: {info['threads']} (threadpoolctl limits on every BLAS/OpenMP pool; "
             f"torch.set_num_threads)")
    L.append(f"- Python {info['python']}, NumPy {info['numpy']}, steepest {info.get('steepest', '?')}, "
             f"PyTorch {info.get('torch', 'not installed')}, scikit-learn {info.get('sklearn', 'not installed')}")
    if "torch" in info:
        L.append(f"- PyTorch CPU capability {info.get('torch_cpu_capability')}, MKL {info.get('torch_mkl')}, "
                 f"oneDNN {info.get('torch_mkldnn')}, {info.get('torch_threads')} threads")
    env = ", ".join(f"{k}={v}" for k, v in info["env"].items()) or "none set"
    L.append(f"- Environment: {env}" + (f" (unset for this run by --unset-openblas-env: was "
                                          f"{info['unset_by_flag']})" if info["unset_by_flag"] else ""))
    L.append("- BLAS / OpenMP pools (threadpoolctl):")
    for b in info["blas"]:
        L.append("  - " + ", ".join(f"{k}={v}" for k, v in b.items() if v is not None))
    L.append(f"- Data: {results['data_source']}")
    if "sgemm" in results:
        L += ["", "## SGEMM rate (np.matmul, float32, out=)", "", "| m × k × n | GFLOP/s (median) | min – max |",
              "|---|---|---|"]
        for r in results["sgemm"]:
            m, k, n = r["shape"]
            L.append(f"| {m} × {k} × {n} | {r['gflops']:.0f} | {r['min']:.0f} – {r['max']:.0f} |")
    if "a" in results:
        L += ["", "## (a) One epoch, 784-256-128-10 ReLU, SGD momentum 0.9, lr 0.05", "",
              "Wall time of one epoch (shuffling included, no monitoring). `cold` is each library's first, untimed "
              "epoch in this process. steepest's own `seconds` is its history's step time (train()'s setup and "
              "the per-epoch permutation excluded)."]
        for B, r in results["a"].items():
            fl = r["GEMM floor"]
            L += ["", f"### batch {B}", "",
                  f"GEMM floor: {fl['gflops']:.1f} GFLOP per epoch → {fl['gflops'] / fl['median']:.0f} GFLOP/s "
                  f"achieved by the bare products.", "", timing_table(r)]
    if "b" in results:
        r = results["b"]
        fl = r["GEMM floor"]
        L += ["", "## (b) One full-batch gradient-descent step (forward + backward + update, all rows)", "",
              f"GEMM floor: {fl['gflops']:.1f} GFLOP → {fl['gflops'] / fl['median']:.0f} GFLOP/s. The `cold` "
              "step includes first-touch page faults of the work buffers for all rows.", "",
              timing_table(r)]
    if "c" in results:
        c = results["c"]
        L += ["", f"## (c) Training time to {c['target']:.1%} MNIST test accuracy", "",
              f"Recipe (both libraries): {c['recipe']}. Same θ₀ (steepest's init copied into PyTorch) and the "
              "same batch order; test accuracy is measured after each epoch outside the clock; "
              f"{c['repeats']} runs each, alternating.", "",
              "| | seconds to 98% (median) | min – max | epochs to 98% | runs reaching 98% | whole recipe "
              "| final test acc |",
              "|---|---|---|---|---|---|---|"]
        for lib, v in c["libs"].items():
            s = v["seconds"]
            L.append(f"| {lib} | {_fmt_s(s and s['median'])} | {_spread(s) if s else '—'} | "
                     f"{', '.join(str(e) for e in v['epochs'])} | {v['hits']}/{v['runs']} | "
                     f"{_fmt_s(v['total']['median'])} | {v['final_acc']:.2%} |")
        st, pt = c["libs"]["steepest"]["seconds"], c["libs"].get("PyTorch", {}).get("seconds")
        whole = _ratio(c["libs"]["steepest"]["total"]["median"],
                       c["libs"].get("PyTorch", {}).get("total", {}).get("median"))
        to98 = _ratio(st and st["median"], pt and pt["median"])
        L += ["", f"steepest / PyTorch (seconds to 98%): {_fmt_ratio(to98)}; whole recipe: {_fmt_ratio(whole)}"]
        a128 = results.get("a", {}).get(c["recipe_batch"])
        epochs = c["libs"]["steepest"]["epochs"][0]
        if a128 and epochs and c["recipe_hidden"] == (256, 128):
            fl = a128["GEMM floor"]["median"] * epochs
            L.append(f"For scale: the GEMM floor of {epochs} such epochs (from (a), batch {c['recipe_batch']}) "
                     f"is {_fmt_s(fl)}; steepest's seconds to 98% are "
                     f"{_fmt_ratio(_ratio(st and st['median'], fl))} of it.")
        L.append("")
        L.append("Test accuracy after each epoch, first run: " + "; ".join(
            f"{lib} {[round(a * 100, 2) for a in v['acc'][0]]}" for lib, v in c["libs"].items()))
    if "d" in results:
        d = results["d"]
        L += ["", "## (d) Memory and import time", ""]
        if d["rss"]:
            L += ["Peak RSS (VmHWM) of a fresh process that imports the library, loads the training data "
                  "(uint8, via steepest.data; PyTorch and scikit-learn then make their float32 copy), builds the "
                  "model and trains workload (a) at batch 128 for one epoch; `peak during training` is the peak of "
                  "that epoch alone (VmHWM reset after loading). (`ru_maxrss` is not used: Linux carries it "
                  "over `exec` from the forked parent, so every child would report this benchmark process's "
                  "size.)", "",
                  "| | peak RSS (whole process) | peak during training | after import | after data + model | epoch |",
                  "|---|---|---|---|---|---|"]
            for lib, v in d["rss"].items():
                tp = v.get("train_peak_kb")
                tp = "—" if tp is None else f"{tp / 1024:.0f} MiB"
                L.append(f"| {lib} | {v['peak_kb'] / 1024:.0f} MiB | {tp} | "
                         f"{v['after_import_kb'] / 1024:.0f} MiB | {v['after_data_kb'] / 1024:.0f} MiB | "
                         f"{_fmt_s(v['seconds'])} |")
            ps, pt = d["rss"]["steepest"]["peak_kb"], d["rss"].get("PyTorch", {}).get("peak_kb")
            L += ["", f"steepest / PyTorch peak RSS: {_fmt_ratio(_ratio(ps, pt))}", ""]
        L += ["Import time: `python -c \"import M\"` minus `python -c \"pass\"`, medians over fresh interpreters.", "",
              "| module | import time (median) | min – max of differences |", "|---|---|---|"]
        for mod, v in d["import"].items():
            L.append(f"| {mod} | {v['seconds'] * 1e3:.0f} ms | {v['min'] * 1e3:.0f} – {v['max'] * 1e3:.0f} ms |")
        if "compile" in d:
            c = d["compile"]
            L += ["", "The numba kernels are compiled on first use and cached on disk: a fresh process's import, "
                  f"set-up and first two training steps took {c['cold']:.2f} s with an empty cache and "
                  f"{c['warm']:.2f} s with the cache (medians): **{c['compile']:.2f} s of compilation**, once "
                  "per machine (and again after an upgrade of steepest or numba)."]
    if "e" in results:
        L += _threads_section(results["e"])
    return "\n".join(L) + "\n"


def _threads_section(e) -> list[str]:
    L = ["", f"## (e) The thread count: one epoch, batch {e['batch']}, steepest at each count", "",
         "`measured` is the count `steepest train` chooses when `--threads` is not given (it times the run's "
         "own steps at each of the fixed counts below, one step at a time, and keeps the fastest); the other "
         "rows are fixed counts. All alternate in one process; each repeat is one epoch. Under load, K other "
         "processes each ran `while True: pass` throughout."]
    for load, r in e["loads"].items():
        L += ["", f"### {load} competing process{'es' * (load != 1)}", "",
              "| | median | min – max | IQR | × measured | cold (first run) |", "|---|---|---|---|---|---|"]
        for name, v in r.items():
            L.append(f"| {name} | {_fmt_s(v['median'])} | {_spread(v)} | {_fmt_s(v['q1'])} – {_fmt_s(v['q3'])} | "
                     f"{_fmt_ratio(v['median'] / r['measured']['median'])} | {_fmt_s(v.get('cold'))} |")
        pol = r["measured"].get("policy") or {}
        seen = "; ".join(f"at step {c['step']}: {c['threads']} (ms per step "
                         + ", ".join(f"{k}: {v:.2f}" for k, v in c["ms_per_step"].items()) + ")"
                         for c in pol.get("choices", [])[:4])
        L += ["", f"Measured count: {pol.get('measurements', 0)} measurements over the epochs; choices "
              f"{seen or 'none (one candidate)'}{' …' if len(pol.get('choices', [])) > 4 else ''}."]
    return L
