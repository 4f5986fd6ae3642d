"""steepest's scikit-learn estimator beside scikit-learn's own MLPClassifier: fit time and test accuracy.

    python benchmarks/sklearn_side_by_side.py                       # MNIST (if found), digits, moons
    python benchmarks/sklearn_side_by_side.py --mnist-epochs 1 --threads 1 --out /tmp/side.md

Both estimators get the same arrays (float32, inputs scaled to about [0, 1]), the same hidden
sizes, epochs, batch size, learning rate and the same update rule — SGD with heavy-ball momentum
0.9, no Nesterov, no L2, constant rate — and run one after the other in this process with the
same BLAS thread limit. What differs is each library's own: its initialisation (steepest: He for
ReLU; scikit-learn: Glorot uniform), its shuffling, and scikit-learn's tolerance-based stop, which
is switched off (``n_iter_no_change`` above the epoch count) so both run every epoch.

MNIST is read from ``$STEEPEST_DATA`` (or ``--data-dir``) and skipped, saying so, when absent;
digits is steepest's split of scikit-learn's 8×8 digits (1,437 / 360); moons is
``make_moons(2000, noise=0.25)`` split 1,500 / 500.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

#: name → (hidden sizes, epochs, batch size, learning rate)
SETUPS = {"MNIST": ((128, 64), 3, 128, 0.05), "digits": ((128, 64), 30, 32, 0.05),
          "moons": ((16, 16), 100, 32, 0.05)}


def datasets(data_dir, mnist_epochs):
    """``[(name, X, y, X_test, y_test, setup)]``; X float32 scaled to about [0, 1]."""
    from sklearn.datasets import make_moons

    from steepest.data import load_dataset
    from steepest.errors import DataNotFoundError

    out = []
    try:
        ds = load_dataset("mnist", data_dir=data_dir, download=False)
        hidden, _, batch, lr = SETUPS["MNIST"]
        out.append(("MNIST", ds, (hidden, mnist_epochs, batch, lr)))
    except DataNotFoundError as e:
        print(f"MNIST skipped: {e}", file=sys.stderr)
    out.append(("digits", load_dataset("digits"), SETUPS["digits"]))
    rows = []
    for name, ds, setup in out:
        scale = np.float32(ds.input_scale)
        rows.append((name, ds.X_train.reshape(len(ds.X_train), -1) * scale, ds.y_train,
                     ds.X_test.reshape(len(ds.X_test), -1) * scale, ds.y_test, setup))
    X, y = make_moons(2000, noise=0.25, random_state=0)
    X = X.astype(np.float32)
    rows.append(("moons", X[:1500], y[:1500], X[1500:], y[1500:], SETUPS["moons"]))
    return rows


def estimators(setup, seed=0):
    """``{library: estimator}`` with the one configuration both can express."""
    from sklearn.neural_network import MLPClassifier as SkMLP

    from steepest.sklearn import MLPClassifier

    hidden, epochs, batch, lr = setup
    return {
        "steepest": MLPClassifier(hidden=hidden, activation="relu", optimizer="momentum", momentum=0.9, lr=lr,
                                  batch_size=batch, epochs=epochs, seed=seed),
        "scikit-learn": SkMLP(hidden_layer_sizes=hidden, activation="relu", solver="sgd", momentum=0.9,
                              nesterovs_momentum=False, learning_rate="constant", learning_rate_init=lr,
                              alpha=0.0, batch_size=batch, max_iter=epochs, n_iter_no_change=epochs + 1,
                              shuffle=True, random_state=seed),
    }


def measure(est, X, y, X_test, y_test, repeats):
    """Median fit seconds over ``repeats`` fits, and the test accuracy of the last one."""
    times = []
    for _ in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn's ConvergenceWarning at max_iter
            t = time.perf_counter()
            est.fit(X, y)
            times.append(time.perf_counter() - t)
    return float(np.median(times)), float(np.mean(est.predict(X_test) == y_test))


def machine(threads) -> str:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    from threadpoolctl import threadpool_info

    import sklearn

    blas = "; ".join(f"{p.get('internal_api')} {p.get('version')} ({p.get('architecture')})"
                     for p in threadpool_info() if p.get("user_api") == "blas")
    load = os.getloadavg()[0]
    return (f"{cpu}, {threads} BLAS thread{'s' * (threads != 1)}, {blas}; Python {platform.python_version()}, "
            f"NumPy {np.__version__}, scikit-learn {sklearn.__version__}; load average {load:.1f} at the end "
            f"on {os.cpu_count()} cores")


def table(rows) -> str:
    lines = ["| data | train / test | hidden | epochs | batch | steepest fit | scikit-learn fit | "
             "steepest acc | scikit-learn acc |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['n_train']:,} / {r['n_test']:,} | {'-'.join(map(str, r['hidden']))} | "
                     f"{r['epochs']} | {r['batch']} | {r['steepest'][0]:.2f} s | {r['scikit-learn'][0]:.2f} s | "
                     f"{100 * r['steepest'][1]:.2f}% | {100 * r['scikit-learn'][1]:.2f}% |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--mnist-epochs", type=int, default=SETUPS["MNIST"][1], help="epochs on MNIST (default 3)")
    p.add_argument("--repeats", type=int, default=1, help="fits per estimator; the median time is shown (default 1)")
    p.add_argument("--threads", type=int, default=len(os.sched_getaffinity(0)), help="BLAS threads for both")
    p.add_argument("--data-dir", default=os.environ.get("STEEPEST_DATA"), help="directory with mnist/")
    p.add_argument("--out", help="also write the markdown table and the machine line to this file")
    args = p.parse_args(argv)
    from threadpoolctl import threadpool_limits

    rows = []
    with threadpool_limits(limits=args.threads, user_api="blas"):
        for name, X, y, Xt, yt, setup in datasets(args.data_dir, args.mnist_epochs):
            row = {"name": name, "n_train": len(y), "n_test": len(yt), "hidden": setup[0], "epochs": setup[1],
                   "batch": setup[2]}
            for lib, est in estimators(setup).items():
                row[lib] = measure(est, X, y, Xt, yt, args.repeats)
                print(f"{name:7s} {lib:13s} fit {row[lib][0]:7.2f} s  test accuracy {100 * row[lib][1]:.2f}%",
                      file=sys.stderr, flush=True)
            rows.append(row)
        text = table(rows) + f"\n\nMeasured on {machine(args.threads)}.\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
