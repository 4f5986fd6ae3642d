"""RESULTS.json and RESULTS.md: one section per engine, the latest run of each kept.

RESULTS.json holds {"runs": {engine: run}}; a run is what fuzz/run.py measured (command, seed,
versions, and per target the outcome counts, crash records, typed-error sites, warnings, time).
"""

from __future__ import annotations

import json
from pathlib import Path

BAD = ("crash", "invalid", "hang", "memory", "executed", "died")
OUTCOMES = ("load", "typed") + BAD

INTRO = ("Allowed outcomes: a correct load (checked against the Dataset contract) or one of "
         "steepest's typed errors (a SteepestError). Anything else is a crash: another exception, "
         "an invalid load, a hang, a MemoryError under the address-space limit, a dead worker, or "
         "an executed pickle. Rows marked *reference* run Python's own `tomllib` on the TOML "
         "inputs (allowed there: `TOMLDecodeError`); what it raises besides is what steepest's "
         "reader must catch, and it is not counted as a crash of steepest.")


def _totals(run: dict) -> dict:
    totals = dict.fromkeys(OUTCOMES, 0)
    for name, s in run["targets"].items():
        if name not in run["reference_targets"]:
            for k, v in s["outcomes"].items():
                totals[k] += v
    totals["inputs"] = sum(s["inputs"] for n, s in run["targets"].items() if n not in run["reference_targets"])
    totals["crashes"] = sum(totals[k] for k in BAD)
    return totals


def write(out: Path, run: dict):
    out.mkdir(parents=True, exist_ok=True)
    path = out / "RESULTS.json"
    try:
        runs = json.loads(path.read_text())["runs"]
    except (OSError, ValueError, KeyError):
        runs = {}
    run["totals"] = _totals(run)
    runs[run["engine"]] = run
    path.write_text(json.dumps({"runs": runs}, indent=1) + "\n")
    (out / "RESULTS.md").write_text(render(runs))


def render(runs: dict) -> str:
    inputs = sum(r["totals"]["inputs"] for r in runs.values())
    crashes = sum(r["totals"]["crashes"] for r in runs.values())
    lines = [f"# Fuzz results: {inputs:,} inputs to steepest, {crashes} crashes", "",
             "Written by `fuzz/run.py` (see fuzz/README.md); the latest run of each engine.", "", INTRO]
    for engine, run in runs.items():
        lines += ["", f"## Engine: {engine}", ""] + _run(run)
    return "\n".join(lines) + "\n"


def _run(run: dict) -> list[str]:
    t, ref = run["totals"], set(run["reference_targets"])
    targets = run["targets"]
    lines = [f"- command: `{run['command']}` (under `nice -n 19`)",
             f"- seed {run['seed']}, {run['jobs']} worker(s) at once, timeout {run['timeout_s']} s per input, "
             f"address-space limit {run['mem_limit_mb']} MiB per worker",
             f"- finished {run['finished']} after {run['wall_seconds']:.0f} s of wall time; "
             + ", ".join(f"{k} {v}" for k, v in run["versions"].items()), "",
             "| target | inputs | correct loads | typed errors | crashes | hangs | memory | invalid loads |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, s in targets.items():
        o = s["outcomes"]
        label = f"{name} (*reference*)" if name in ref else name
        lines.append(f"| {label} | {s['inputs']:,} | {o['load']:,} | {o['typed']:,} | "
                     f"{sum(o[k] for k in BAD)} | {o['hang']} | {o['memory']} | {o['invalid']} |")
    lines.append(f"| **steepest, all** | **{t['inputs']:,}** | {t['load']:,} | {t['typed']:,} | "
                 f"**{t['crashes']}** | {t['hang']} | {t['memory']} | {t['invalid']} |")
    for name, why in run["skipped_targets"].items():
        lines.append(f"\nTarget `{name}` skipped: {why}.")
    lines += ["", "### Crashes", ""]
    found = False
    for name, s in targets.items():
        for sig, c in s["crashes"].items():
            found = True
            replay = (f"; replay: `fuzz/run.py --target {name} --seed {run['seed']} --replay {c['first_index']}`"
                      if run["engine"] == "mutate" and c["first_index"] is not None else "")
            lines.append(f"- **{name}**{' (*reference*)' if name in ref else ''} `{sig}` ×{c['count']}: "
                         f"first at input {c['first_index']} ({c['how']}); {c['type']}: "
                         f"{(c['message'] or '')[:160]!r}; input saved as `{c['input']}`{replay}")
    if not found:
        lines.append("None.")
    if any("coverage" in s for s in targets.values()):
        lines += ["", "### Coverage (libFuzzer's last status line)", ""]
        for name, s in targets.items():
            lines.append(f"- {name}: {s.get('coverage', 'n/a')}")
    lines += ["", "### Detail", "", "Outcomes per loader variant:", ""]
    for name, s in targets.items():
        parts = [f"`{how}` {c['load']:,} loads / {c['typed']:,} typed / {sum(c[k] for k in BAD)} bad"
                 for how, c in sorted(s["by_how"].items())]
        lines.append(f"- {name}: " + "; ".join(parts))
    lines += ["", "Typed errors by class:", ""]
    for name, s in targets.items():
        lines.append(f"- {name}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(s["typed_classes"].items())))
    lines += ["", "Where the typed errors were raised (the checks the inputs reached), most frequent first:", ""]
    for name, s in targets.items():
        top = sorted(s["typed_sites"].items(), key=lambda kv: -kv[1])
        lines.append(f"- {name} ({len(top)} sites): " + ", ".join(f"`{k}` {v:,}" for k, v in top[:8]))
    lines += ["", "Typed errors whose message names neither the file (nor, for configs, the option):", ""]
    for name, s in targets.items():
        ex = "; ".join(repr(e["message"][:120]) for e in s["unclear_examples"][:2])
        lines.append(f"- {name}: {s['unclear']:,}" + (f" (e.g. {ex})" if ex else ""))
    lines += ["", "Warnings raised while loading (not failures; file:line that raised them):", ""]
    for name, s in targets.items():
        top = sorted(s["warnings"].items(), key=lambda kv: -kv[1])[:5]
        lines.append(f"- {name}: " + (", ".join(f"{k} ×{v:,}" for k, v in top) or "none"))
    lines += ["", "Time per input:", ""]
    for name, s in targets.items():
        mean = 1000 * s["seconds"] / max(s["inputs"], 1)
        slow = ", ".join(f"{sec:.2f} s (#{i}, {h})" for sec, i, h in s["slowest"][:3])
        lines.append(f"- {name}: mean {mean:.1f} ms; slowest {slow}")
    return lines
