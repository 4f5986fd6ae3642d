"""Run the named recipes for N seeds and write benchmarks/ACCURACY.md: the published anchors beside
steepest's measured test accuracy (mean ± spread over seeds), epochs, wall time and the machine.

    python benchmarks/accuracy.py                                   # every recipe, 3 seeds (hours)
    python benchmarks/accuracy.py --recipes mnist-record --seeds 1 --epochs 4 --no-torch   # shortened
    make accuracy SEEDS=3

Each seed is one real ``steepest train --recipe NAME --seed S`` in a subprocess. A recipe holds out a
validation split of the training data, or was chosen on one (its ``[recipe] chosen_with``: ``--selection``
tables those runs) and trains its final model on all the training data. The test split is only measured,
never chosen on. With
PyTorch installed, the same recipe is also trained in PyTorch from the same θ₀, the same batch order and
the same learning-rate schedule for the first seed (``--no-torch`` skips it): its own dropout masks, its
own kernels. A run shortened with ``--epochs`` is marked so in the table and in ``measured.toml``.
The results also go to ``src/steepest/recipes/measured.toml``, which ``steepest recipes`` shows.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MEASURED = ROOT / "src" / "steepest" / "recipes" / "measured.toml"

ANCHORS = [
    ("LeCun's MNIST table, 500+300 HU, softmax CE, weight decay", "98.47%", "yann.lecun.com/exdb/mnist"),
    ("Keras `mnist_mlp` example, 512-512, dropout 0.2, RMSprop, 20 epochs", "98.40%", "keras examples"),
    ("Srivastava et al. 2014 (JMLR, Table 2), dropout + max-norm, ReLU, 2×4096", "98.99%",
     "\"Dropout: a simple way…\""),
    ("Goodfellow et al. 2013 (ICML), maxout + dropout + max-norm, 2 layers (240 units × 5 pieces in their "
     "pylearn2 configuration)", "99.06%", "\"Maxout networks\", permutation-invariant MNIST"),
    ("Fashion-MNIST benchmark table, best MLP row (256-128-100)", "88.33%", "zalandoresearch/fashion-mnist README"),
]


def machine() -> str:
    """CPU model, core count, BLAS kernel and the load average: what the times were measured on."""
    model = platform.processor() or "?"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    blas = "?"
    try:
        import numpy  # noqa: F401  (loads the BLAS threadpoolctl reports)
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')}"
                         for i in threadpool_info() if i.get("user_api") == "blas")
    except ImportError:
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{model}, {os.cpu_count()} cores, BLAS {blas}; load average {load} at the end"


def run_steepest(name, seed, epochs, data_dir, runs_dir) -> dict:
    """One ``steepest train --recipe`` run; its final JSON line plus the wall time."""
    out = Path(runs_dir) / f"{name}-seed{seed}"
    cmd = [sys.executable, "-m", "steepest", "train", "--recipe", name, "--seed", str(seed), "--json",
           "--out", str(out), "--force", "--no-download"]
    cmd += ["--epochs", str(epochs)] if epochs else []
    cmd += ["--data-dir", str(data_dir)] if data_dir else []
    t0 = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    end = [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")][-1]
    return {"seed": seed, "test_acc": end["test_acc"], "val_acc": end.get("val_acc"), "epochs": end["epochs"],
            "wall": wall, "run_dir": str(out), "date": time.strftime("%Y-%m-%d")}


#: options that say where data and output go or how often checkpoints are written, never the arithmetic
#: (threads and kernels change only the rounding)
_RUN_ONLY = {"seed", "epochs", "out", "data_dir", "download", "fallback", "threads", "kernels", "checkpoint_every",
             "checkpoint_seconds"}


def _run_config(run_dir) -> dict:
    """A run directory's config.toml (or a ``--config`` file's options), a flag turned off (--no-standardize)
    read as a flag not set."""
    import tomllib

    from steepest.commands._trainconfig import BY_NAME

    path = Path(run_dir)
    cfg = tomllib.loads((path if path.is_file() else path / "config.toml").read_text(encoding="utf-8"))
    return {k: v for k, v in cfg.items() if not (v is False and k in BY_NAME and BY_NAME[k].kind == "flag")}


def _against(name, run_dir, data_dir=None, base=None, chosen=False):
    """A run directory's config.toml and the options where it differs from recipe ``name`` (``chosen``: as
    its validation run had it, the recipe's ``chosen_with``) — or from the run ``base``, when given — (seed,
    epochs and the other run-only options aside), shares of the run compared in this run's steps."""
    from steepest.commands._trainconfig import OPTIONS

    cfg = _run_config(run_dir)
    want = _recipe_config(name, cfg.get("seed", 0), cfg.get("epochs"), chosen) if base is None else \
        {o.name: o.default for o in OPTIONS} | _run_config(base) | {"seed": cfg.get("seed", 0), "epochs": cfg.get("epochs")}
    cfg, want = _in_steps(cfg, data_dir=data_dir), _in_steps(want, run=cfg, data_dir=data_dir)
    return cfg, {k: cfg.get(k) for k in sorted(set(cfg) | set(want)) if k not in _RUN_ONLY and cfg.get(k) != want.get(k)}


def from_run(name, run_dir, data_dir=None) -> dict:
    """A finished ``steepest train`` run directory as one seed of recipe ``name``: its config.toml must
    hold the recipe's options (seed and epochs aside). Wall time: config.toml written → model written."""
    run_dir = Path(run_dir)
    cfg, differ = _against(name, run_dir, data_dir)
    if differ:
        raise SystemExit(f"{run_dir} is not a run of recipe {name}: {', '.join(differ)} differ")
    last = json.loads((run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines()[-1])
    finished = (run_dir / "model.safetensors").stat().st_mtime
    wall = finished - (run_dir / "config.toml").stat().st_mtime
    return {"seed": cfg.get("seed", 0), "test_acc": last["test_acc"], "val_acc": last.get("val_acc"),
            "epochs": last["epoch"], "wall": wall, "run_dir": str(run_dir),
            "date": time.strftime("%Y-%m-%d", time.localtime(finished))}


def candidate(name, run_dir, data_dir=None, base=None) -> dict:
    """A run tried while choosing recipe ``name`` on the validation split: the options where it differs
    from the recipe as it was chosen (with its ``chosen_with``: the validation run's split and epochs) — or
    from the run ``base`` the candidates were tried against, when the recipe has since changed — (its
    evaluation cadence aside), whether it is the recipe as shipped, how far it got, and its
    last validation (and training) accuracy. Its test accuracy is not read: the test split chooses nothing."""
    run_dir = Path(run_dir)

    def differences(against):
        cfg, differ = _against(name, run_dir, data_dir, against, chosen=True)
        differ.pop("eval_every", None)
        epochs = (_recipe_config(name, 0, None, True) if against is None else _run_config(against)).get("epochs")
        if cfg.get("epochs") != epochs:  # a run-only option, but here a lever
            differ["epochs"] = cfg.get("epochs")
        return cfg, differ

    cfg, differ = differences(base)
    if not cfg.get("val_split"):
        raise SystemExit(f"{run_dir} held out no validation split: it cannot have chosen anything (a --selection "
                         "run must have val_split)")
    shipped = not (differences(None)[1] if base is not None else differ)
    rows = [json.loads(l) for l in (run_dir / "metrics.jsonl").read_text(encoding="utf-8").splitlines() if l.strip()]
    last = rows[-1] if rows else {}
    return {"run_dir": str(run_dir), "differ": differ, "shipped": shipped, "epochs": cfg.get("epochs"),
            "val_split": cfg["val_split"], "seed": cfg.get("seed"),
            "reached": last.get("epoch", 0),
            "finished": (run_dir / "model.safetensors").is_file(), "val_acc": last.get("val_acc"),
            "train_acc": last.get("train_acc")}


def _in_steps(cfg, run=None, data_dir=None) -> dict:
    """``cfg`` with options given as a share of the run ("1%") turned into steps, as the run ``run`` (default
    ``cfg`` itself: its data, batch size and epochs) resolves them: a run configured with warmup_steps = 844
    and one with "1%" of 84,400 steps follow the same schedule."""
    from steepest.batches import steps_per_epoch
    from steepest.commands._session import split
    from steepest.commands._trainconfig import OPTIONS, steps
    from steepest.data import load_dataset

    shares = [o.name for o in OPTIONS if o.kind.endswith("steps") and isinstance(cfg.get(o.name), str)]
    if not shares:
        return cfg
    full = {o.name: o.default for o in OPTIONS} | (run or cfg)
    ds = load_dataset(full["dataset"], data_dir=data_dir or full.get("data_dir"), download=False)
    n = len(split(ds, full).y)
    spe = steps_per_epoch(n, full["batch_size"])
    return cfg | {k: steps(full | {k: cfg[k]}, k, spe) for k in shares}


def _recipe_config(name, seed, epochs, chosen=False):
    """Recipe ``name``'s options for ``seed`` (and ``epochs``, when given); ``chosen``: as the validation run
    that chose it had them (its ``[recipe] chosen_with``, for a recipe whose final model trains on all the
    training data)."""
    from steepest.commands._trainconfig import BY_NAME, OPTIONS, check, chosen_with, convert, read_recipe

    cfg = {o.name: o.default for o in OPTIONS}
    cfg.update({k: convert(BY_NAME[k], v) for k, v in read_recipe(name).items()})
    cfg.update(chosen_with(name) if chosen else {})
    cfg["seed"] = seed
    if epochs:
        cfg["epochs"] = epochs
    check(cfg)
    return cfg


def _acts(cfg) -> list:
    a = cfg["activation"]
    return [a] if isinstance(a, str) else list(a)


def check_torch_models(name) -> None:
    """Refuse, before any training, a recipe whose options the PyTorch row does not reproduce."""
    cfg = _recipe_config(name, 0, None)
    unmodelled = {k: cfg[k] for k in ("l2", "weight_decay", "patience", "eps", "max_steps", "time_budget")
                  if cfg.get(k)}
    if cfg["dtype"] != "float32" or cfg["batch_size"] == "full" or cfg.get("momentum") == 0:
        unmodelled |= {k: cfg[k] for k in ("dtype", "batch_size", "momentum")}
    if cfg["optimizer"] != "momentum" or unmodelled or len(set(_acts(cfg))) > 1:
        raise SystemExit(f"the PyTorch row models float32 momentum SGD on mini-batches with one activation; "
                         f"recipe {name} has optimizer {cfg['optimizer']}, activation {cfg['activation']}"
                         + (f", {unmodelled}" if unmodelled else "") + "; give --no-torch or --torch-for")


def run_torch(name, seed, epochs, data_dir) -> dict:
    """The recipe in PyTorch: same θ₀, batches and schedule as steepest's; PyTorch's own dropout masks."""
    import numpy as np
    import torch

    from steepest.batches import Batches, steps_per_epoch
    from steepest.commands._session import split
    from steepest.commands._trainconfig import make_schedule
    from steepest.activations import LEAKY_SLOPE
    from steepest.data import load_dataset
    from steepest.network import MLP, standardisation

    cfg = _recipe_config(name, seed, epochs)
    check_torch_models(name)
    k = cfg.get("pieces") or 2
    act = {"relu": torch.relu, "leaky_relu": lambda z: torch.nn.functional.leaky_relu(z, LEAKY_SLOPE),
           "tanh": torch.tanh, "sigmoid": torch.sigmoid,
           "maxout": lambda z: z.view(z.shape[0], z.shape[1] // k, k).amax(2)}[_acts(cfg)[0]]  # each unit's k pieces
    ds = load_dataset(cfg["dataset"], data_dir=data_dir, download=False)
    data = split(ds, cfg)
    net = MLP([ds.n_features, *cfg["hidden"], ds.n_classes], activation=cfg["activation"], pieces=cfg.get("pieces"))
    theta0 = net.init(seed, scheme=cfg["init"], bias=cfg["bias"])
    mean, std = standardisation(data.X, ds.input_scale) if cfg.get("standardize") else (0.0, 1.0)

    def prep(X):
        return torch.from_numpy(((X * ds.input_scale - mean) / std).astype(np.float32))

    layers = [torch.nn.Linear(l.n_in, l.n_out) for l in net.layers]
    with torch.no_grad():
        for lin, (W, b) in zip(layers, net.unpack(theta0)):
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b.copy()))
    params = [p for lin in layers for p in lin.parameters()]
    opt = torch.optim.SGD(params, lr=cfg["lr"], momentum=cfg["momentum"] or 0.9)
    schedule = make_schedule(cfg, steps_per_epoch(len(data.y), cfg["batch_size"]))
    rates = cfg.get("dropout") or [0.0] * len(layers)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=cfg.get("label_smoothing") or 0.0)
    torch.manual_seed(seed)
    X, y = prep(data.X), torch.from_numpy(data.y.astype(np.int64))

    def forward(a, train):
        for l, lin in enumerate(layers):
            a = torch.nn.functional.dropout(a, rates[l], training=train) if train and rates[l] else a
            a = lin(a)
            a = act(a) if l < len(layers) - 1 else a
        return a

    batches, step, t0 = Batches(data.X, data.y, cfg["batch_size"], seed), 0, time.perf_counter()
    for epoch in range(cfg["epochs"]):
        order = torch.from_numpy(batches.order(epoch).astype(np.int64))
        for i in range(batches.per_epoch):
            rows = order[i * batches.size:(i + 1) * batches.size]
            for g in opt.param_groups:
                g["lr"] = float(schedule(step))
            opt.zero_grad()
            loss_fn(forward(X[rows], True), y[rows]).backward()
            if cfg.get("clip_norm"):  # the whole step's gradient, before momentum, as steepest's clip_by_global_norm
                torch.nn.utils.clip_grad_norm_(params, cfg["clip_norm"])
            opt.step()
            step += 1
            if cfg.get("max_norm"):
                with torch.no_grad():  # each hidden unit's incoming weights: a row of torch's weight
                    for lin in layers[:-1]:
                        lin.weight.copy_(torch.renorm(lin.weight, 2, 0, cfg["max_norm"]))
    wall = time.perf_counter() - t0
    with torch.no_grad():
        pred = forward(prep(ds.X_test), False).argmax(1).numpy()
    return {"seed": seed, "test_acc": float((pred == ds.y_test).mean()), "epochs": cfg["epochs"], "wall": wall}


def cached_torch(cache, name, seed, epochs, data_dir) -> dict:
    """:func:`run_torch`, kept in (and read back from) ``cache`` when given: one JSON file per recipe version,
    seed and epochs."""
    from steepest import recipes

    if cache is None:
        return run_torch(name, seed, epochs, data_dir)
    path = Path(cache) / f"{name}-{recipes.fingerprint(name)}-seed{seed}-epochs{epochs}.json"
    if path.is_file():
        return json.loads(path.read_text(encoding="utf-8"))
    row = run_torch(name, seed, epochs, data_dir)
    path.write_text(json.dumps(row), encoding="utf-8")
    return row


def summary(runs) -> dict:
    accs = [r["test_acc"] for r in runs]
    return {"seeds": len(runs), "mean": statistics.fmean(accs),
            "spread": (max(accs) - min(accs)) / 2 if len(accs) > 1 else 0.0,
            "epochs": runs[0]["epochs"], "minutes": statistics.fmean(r["wall"] for r in runs) / 60,
            "date": max(r["date"] for r in runs)}  # when the last seed finished, not when this table was written


def _pct(s) -> str:
    return f"{100 * s['mean']:.2f}%" + (f" ± {100 * s['spread']:.2f}" if s["seeds"] > 1 else " (1 seed)")


def _final_model(name) -> str:
    """How recipe ``name``'s final model differs from the validation run that chose it (``chosen_with``), or
    "" for a recipe that keeps its validation split."""
    from steepest.commands._trainconfig import as_pairs, chosen_with

    chosen = chosen_with(name)
    final = _recipe_config(name, 0, None)
    return "" if not chosen else \
        f"(chosen with {as_pairs(chosen)}; its final model trains with {as_pairs({k: final[k] for k in chosen})})"


def selection_markdown(name, cands, base=None) -> list[str]:
    def opts(c):
        d = c["differ"] if len(held) == 1 else {"val_split": c["val_split"]} | c["differ"]
        said = ", ".join(f"{k} = {'off' if v is None else v}" for k, v in d.items())
        if not c.get("shipped", not d):
            return said or "the recipe they were tried against"
        return f"**the recipe as shipped**{as_chosen}{': ' + said if said else ''}"

    final = _final_model(name)
    as_chosen = final and " " + final
    held = {c["val_split"] for c in cands}
    split = f"{100 * (1 - min(held)):g}% of the training data and measured on the held-out {100 * min(held):g}%" \
        if len(held) == 1 else "the training data less its own validation split (its val_split) and measured on that"
    against = "the recipe" + (" as chosen" if as_chosen else "") if base is None else \
        f"`{Path(base).name}`, the recipe they were tried against (the recipe has changed since)"
    seeds = sorted({c.get("seed") for c in cands}, key=str)
    one_seed = len(seeds) == 1
    L = ["", f"## How `{name}` was chosen", "",
         (f"Seed {seeds[0]}, each" if one_seed else "Each") + f" candidate trained on {split} validation split"
         + ("" if one_seed else " (the seed draws θ₀, the batches, the masks and the split)")
         + "; the test split played no part in the choice. Options are those where the candidate differs "
         f"from {against}.", "",
         "| candidate |" + ("" if one_seed else " seed |") + " epochs run | validation acc | training acc | run |",
         "|---|---|---|---|" + ("" if one_seed else "---|") + "---|"]
    for c in cands:
        ran = f"{c['reached']} of {c['epochs']}" + ("" if c["finished"] else " (stopped)")
        val = f"{100 * c['val_acc']:.2f}%" if c.get("val_acc") is not None else "–"
        tr = f"{100 * c['train_acc']:.2f}%" if c.get("train_acc") is not None else "–"
        seed = "" if one_seed else f" {c.get('seed')} |"
        L.append(f"| {opts(c)} |{seed} {ran} | {val} | {tr} | `{Path(c['run_dir']).name}` |")
    return L


def _held_out(results) -> str:
    """Which recipes' final models keep their validation split (reported in the runs table) and which train on
    all the training data as chosen (their ``chosen_with``)."""
    keep, said = {}, []
    for name in results:
        split = _recipe_config(name, 0, None)["val_split"]
        if split:
            keep.setdefault(split, []).append(f"`{name}`")
        else:
            said.append(f"`{name}` was chosen on a validation split and trains its final model on all the training "
                        f"data {_final_model(name)}")
    said[:0] = [f"{' and '.join(names)} hold{'s' * (len(names) == 1)} out {split:.0%} of the training data as a "
                "validation split (reported below)" for split, names in keep.items()]
    return "; ".join(said) + (". " if said else "")


def markdown(results, where, argv, selection=None, note=None, bases=None) -> str:
    from steepest import recipes

    shown = [a for i, a in enumerate(argv)
             if a != "--note" and not a.startswith("--note=") and (i == 0 or argv[i - 1] != "--note")]
    L = ["# Test accuracy of the recipes", "",
         f"Written by `python benchmarks/accuracy.py {' '.join(shown)}{' --note …' if note else ''}`; machine: {where}."
         + (f" {note}" if note else ""), "",
         "Two hidden fully-connected layers, no augmentation, a single model. Each steepest row is one "
         "`steepest train --recipe NAME --seed S` per seed; ± is half the range over seeds. The test split is only "
         "measured: " + _held_out(results) + "Time is wall time per seed, evaluation included, on this shared machine.", "",
         "| result | test accuracy | source |", "|---|---|---|"]
    L += [f"| {a} | {b} | {c} |" for a, b, c in ANCHORS]
    for name, res in results.items():
        r = recipes.load(name)["recipe"]
        s, short = res["summary"], res["shortened"]
        tag = " — **shortened**" if short else ""
        verdict = "meets" if s["mean"] >= r["target"] else "under"
        L.append(f"| steepest `{name}`: {r['title']}{tag}, {s['epochs']} epochs, {s['minutes']:.1f} min/seed "
                 f"| {_pct(s)} — {verdict} its target ≥ {100 * r['target']:.1f}% | benchmarks/accuracy.py |")
        if res.get("torch"):
            t = res["torch"]
            L.append(f"| PyTorch, same recipe, same θ₀ (seed {t['seed']}), {t['epochs']} epochs, "
                     f"{t['wall'] / 60:.1f} min of training | {100 * t['test_acc']:.2f}% | benchmarks/accuracy.py |")
    L += ["", "## Runs", "", "| recipe | target | seed | epochs | validation acc | test acc | minutes |",
          "|---|---|---|---|---|---|---|"]
    for name, res in results.items():
        target = recipes.load(name)["recipe"]["target"]
        for r in res["runs"]:
            val = f"{100 * r['val_acc']:.2f}%" if r.get("val_acc") is not None else "–"
            L.append(f"| {name} | ≥ {100 * target:.1f}% | {r['seed']} | {r['epochs']} | {val} | "
                     f"{100 * r['test_acc']:.2f}% | {r['wall'] / 60:.1f} |")
    for name, cands in (selection or {}).items():
        L += selection_markdown(name, cands, (bases or {}).get(name))
    return "\n".join(L) + "\n"


def write_measured(results, where) -> None:
    """Merge this run's summaries into src/steepest/recipes/measured.toml."""
    import tomli_w

    from steepest import recipes

    table = recipes.measured()
    for name, res in results.items():
        s = dict(res["summary"])
        s["machine"] = where.split(";")[0]
        s["options"] = recipes.fingerprint(name)  # which version of the recipe this measures
        if res["shortened"]:
            s["note"] = f"shortened to {s['epochs']} epochs, not the full recipe"
        table[name] = s
    MEASURED.write_text("# Written by benchmarks/accuracy.py; shown by `steepest recipes`.\n" + tomli_w.dumps(table),
                        encoding="utf-8")


def _positive(text):
    try:
        n = int(text)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"a whole number ≥ 1, got {text!r}")
    return n


def _pairs(p, flag, items, names, options=False) -> list:
    """``NAME=RUN_DIR`` items as (name, Path), each a known recipe and an existing run directory (or, with
    ``options``, a TOML file of options)."""
    out = []
    for item in items or []:
        name, eq, run_dir = item.partition("=")
        if not (eq and name and run_dir):
            p.error(f"{flag} takes NAME=RUN_DIR items, got {item!r}")
        if name not in names:
            p.error(f"{flag} {item}: no recipe {name!r} (recipes: {', '.join(names)})")
        if options and Path(run_dir).is_file():
            try:
                _run_config(run_dir)
            except (OSError, ValueError) as e:
                p.error(f"{flag} {item}: not a TOML file of options ({e})")
        elif not (Path(run_dir) / "config.toml").is_file() or not (Path(run_dir) / "metrics.jsonl").is_file():
            p.error(f"{flag} {item}: {run_dir} is not a steepest run directory (no config.toml or metrics.jsonl)")
        out.append((name, Path(run_dir)))
    return out


def main(argv=None) -> int:
    from steepest import recipes
    from steepest.errors import SteepestError

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", nargs="+", default=None, metavar="NAME", help="default: all")
    p.add_argument("--seeds", type=_positive, default=None, help="seeds 0 … N−1 of each recipe (default 3)")
    p.add_argument("--epochs", type=_positive, default=None, help="shorten every recipe to this many epochs (marked)")
    p.add_argument("--no-torch", action="store_true", help="skip the PyTorch row")
    p.add_argument("--torch-for", nargs="+", metavar="NAME", help="the PyTorch row for these recipes only")
    p.add_argument("--data-dir", default=None, help="where mnist/ and fashion-mnist/ are (default $STEEPEST_DATA)")
    p.add_argument("--runs-dir", default="runs/accuracy")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "ACCURACY.md"))
    p.add_argument("--from-runs", nargs="+", metavar="NAME=RUN_DIR", help="summarise finished run directories "
                   "of recipe NAME instead of training (their config must be the recipe's)")
    p.add_argument("--selection", nargs="+", metavar="NAME=RUN_DIR", help="runs tried while choosing recipe NAME "
                   "on the validation split (finished or stopped): tabled with their validation accuracy only")
    p.add_argument("--selection-base", nargs="+", metavar="NAME=CONFIG", help="compare recipe NAME's --selection "
                   "runs with these options — a --config TOML file, or a run directory's — (the recipe they were "
                   "tried against) instead of the recipe's own")
    p.add_argument("--torch-cache", default=None, metavar="DIR", help="keep each PyTorch row here (by recipe, seed, "
                   "epochs and the recipe's options) and reuse it instead of training it again")
    p.add_argument("--note", default=None, help="how the --from-runs runs were made (threads, other jobs): "
                   "printed under the machine")
    p.add_argument("--no-measured", action="store_true", help="do not update src/steepest/recipes/measured.toml")
    args = p.parse_args(argv)
    # Every argument is checked here, before the first of hours of training.
    known = recipes.names()
    for name in (args.recipes or []) + (args.torch_for or []):
        if name not in known:
            p.error(f"no recipe {name!r} (recipes: {', '.join(known)})")
    finished = _pairs(p, "--from-runs", args.from_runs, known)
    for name, run_dir in finished:
        if not (run_dir / "model.safetensors").is_file():
            p.error(f"--from-runs {name}={run_dir}: the run has not finished (no model.safetensors)")
    if finished and (args.recipes or args.epochs or args.seeds):
        p.error("--from-runs summarises finished runs: --recipes, --seeds and --epochs apply only when training")
    tried = _pairs(p, "--selection", args.selection, known)
    bases = dict(_pairs(p, "--selection-base", args.selection_base, known, options=True))
    if not set(bases) <= {name for name, _ in tried}:
        p.error("--selection-base: only for a recipe given --selection runs")
    if args.torch_cache and not (Path(args.torch_cache).is_dir() and os.access(args.torch_cache, os.W_OK)):
        p.error(f"--torch-cache {args.torch_cache}: not a writable directory")
    out = Path(args.out)
    if not out.parent.is_dir() or not os.access(out.parent, os.W_OK) or out.is_dir():
        p.error(f"--out {out}: cannot write a file there")
    try:
        import torch  # noqa: F401
        have_torch = True
    except ImportError:
        have_torch = False
    given = {}
    try:
        for name, run_dir in finished:
            given.setdefault(name, []).append(from_run(name, run_dir, args.data_dir))
        names = list(given) if given else (args.recipes or known)
        if args.torch_for and not set(args.torch_for) <= set(names):
            p.error(f"--torch-for {' '.join(args.torch_for)}: only recipes being measured ({', '.join(names)})")
        with_torch = [n for n in names if have_torch and not args.no_torch and n in (args.torch_for or names)]
        for name in with_torch:
            check_torch_models(name)
        selection = {}
        for name, run_dir in tried:
            selection.setdefault(name, []).append(candidate(name, run_dir, args.data_dir, bases.get(name)))
    except (SteepestError, OSError, ValueError) as e:
        p.error(str(e))
    except SystemExit as e:  # a run that is not of its recipe, a recipe the PyTorch row does not model
        if not isinstance(e.code, str):
            raise
        p.error(e.code)
    results = {}
    for name in names:
        runs = given.get(name, [])
        for seed in range(0 if given else args.seeds or 3):
            runs.append(run_steepest(name, seed, args.epochs, args.data_dir, args.runs_dir))
            print(f"{name} seed {seed}: test {100 * runs[-1]['test_acc']:.2f}% in {runs[-1]['wall'] / 60:.1f} min",
                  flush=True)
        full = recipes.load(name)["options"].get("epochs")
        results[name] = {"runs": runs, "summary": summary(runs),
                         "shortened": any(r["epochs"] != full for r in runs)}
        if name in with_torch:
            results[name]["torch"] = cached_torch(args.torch_cache, name, runs[0]["seed"], runs[0]["epochs"], args.data_dir)
            print(f"{name} PyTorch seed {runs[0]['seed']}: test {100 * results[name]['torch']['test_acc']:.2f}%", flush=True)
    where = machine()
    out.write_text(markdown(results, where, argv if argv is not None else sys.argv[1:], selection, args.note, bases),
                   encoding="utf-8")
    if not args.no_measured:
        write_measured(results, where)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
