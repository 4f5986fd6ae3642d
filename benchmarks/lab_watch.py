"""Does watching slow learning? Steps per second on MNIST (784-128-64-10, batch 128) three ways:

1. ``steepest.train`` alone, no lab;
2. ``steepest lab`` with one page open in chromium;
3. the same lab with five pages open — then the pages are closed and training must go on.

Usage: STEEPEST_DATA=/path/to/data python benchmarks/lab_watch.py [--seconds 5] [--rounds 3]
Prints one line per measurement; needs the lab extra, playwright and /usr/bin/chromium.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

import steepest  # noqa: E402
from labserver import Lab  # noqa: E402
from steepest.data import load_dataset  # noqa: E402

CFG = {"hidden": [128, 64], "activation": "relu", "init": "he", "optimizer": "momentum", "lr": 0.05,
       "momentum": 0.9, "batch_size": 128}


def setup_alone():
    ds = load_dataset("mnist", download=False)
    net = steepest.MLP([784, 128, 64, 10], activation="relu", input_scale=ds.input_scale)
    theta = net.init(seed=0, scheme="he")
    steepest.train(net, theta, ds.X_train, ds.y_train, optimizer="momentum", lr=0.05, batch_size=128,
                   max_steps=50, monitor=False)  # warm up
    return ds, net, theta


def alone(ds, net, theta, seconds):
    t = time.perf_counter()
    r = steepest.train(net, theta, ds.X_train, ds.y_train, optimizer="momentum", lr=0.05, batch_size=128,
                       time_budget=seconds, monitor=False)
    return r.state.step / (time.perf_counter() - t)


def rate(lab, seconds, share=None):
    """Steps per second of the lab's first racer over ``seconds``; appends to ``share`` the fraction of
    that wall time the training thread spent in the lab's listener (the lab's own cost)."""
    a = lab.request("/api/status")[1]
    t0 = time.perf_counter()
    time.sleep(seconds)
    b = lab.request("/api/status")[1]
    t1 = time.perf_counter()
    if share is not None:
        share.append((b["listener_seconds"] - a["listener_seconds"]) / (b["uptime"] - a["uptime"]))
    return (b["step"] - a["step"]) / (t1 - t0)


def open_pages(browser, lab, n):
    pages = []
    for _ in range(n):
        pages.append(browser.new_page(viewport={"width": 1400, "height": 1000}))
        pages[-1].goto(lab.url)
    time.sleep(2)
    return pages


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--rounds", type=int, default=3, help="alternate alone / with one page this many times; "
                    "the best of each is reported (other load on the machine only ever slows a round down)")
    a = ap.parse_args()
    from playwright.sync_api import sync_playwright

    ds, net, theta = setup_alone()
    lab = Lab("--dataset", "mnist", cwd="/tmp")
    lab.post("/api/configure", CFG)
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        pages = open_pages(b, lab, 1)
        base, one, share = [], [], []
        for _ in range(a.rounds):
            lab.post("/api/pause")
            base.append(alone(ds, net, theta, a.seconds))
            lab.post("/api/start")
            time.sleep(1)
            one.append(rate(lab, a.seconds, share))
        print(f"train() alone:        best {max(base):7.1f} steps/s  (rounds: {', '.join(f'{v:.0f}' for v in base)})")
        print(f"lab, one page open:   best {max(one):7.1f} steps/s  (rounds: {', '.join(f'{v:.0f}' for v in one)})"
              f"  → {max(one) / max(base):.2f}× train() alone")
        print(f"  share of the training thread's wall time spent in LabListener: "
              f"{', '.join(f'{100 * v:.1f}%' for v in share)}")
        pages[0].close()
        time.sleep(1)
        print(f"lab, no page open:         {rate(lab, a.seconds):7.1f} steps/s")
        pages = open_pages(b, lab, 5)
        before = [int(p.get_by_test_id("step").inner_text()) for p in pages]
        five = rate(lab, a.seconds)
        after = [int(p.get_by_test_id("step").inner_text()) for p in pages]
        print(f"lab, five pages open:      {five:7.1f} steps/s; every page advanced: "
              f"{all(y > x for x, y in zip(before, after))}")
        for p in pages:
            p.close()
        b.close()
    time.sleep(1)
    st = lab.request("/api/status")[1]
    print(f"pages closed:              {rate(lab, 3):7.1f} steps/s; running: {st['running']}, pages: {st['clients']}")
    lab.stop()


if __name__ == "__main__":
    main()
