"""Plots of a :class:`~steepest.viz.compare.Comparison` and of gradient noise.

Each function draws one figure, writes it as PNG and SVG into ``out_dir`` and returns the paths.
"""

from __future__ import annotations

import numpy as np

from steepest.viz.common import label_colors, new_figure, save_figure

_X = {"epochs": ("epoch", "epochs (passes over the training set)"),
      "samples": ("samples", "samples processed (rows fed to optimizer steps)"),
      "seconds": ("wall", "wall seconds of the run (gradients and per-epoch evaluation included)")}


def _budget_text(comp):
    (k, v), = comp.budget.items()
    return f"budget: {v:g} {k} per run" + (", learning rates tuned on a validation split"
                                            if any("tuned" in r.summary for r in comp.runs) else "")


def plot_loss(comp, out_dir, x="epochs"):
    """Training loss (log scale) against epochs, samples processed or seconds, one line per run."""
    key, xlabel = _X[x]
    if x == "seconds" and comp.machine:
        xlabel += f"\non {comp.machine}"
    colors = label_colors([r.spec.label for r in comp.runs])
    fig = new_figure()
    ax = fig.add_subplot()
    for r in comp.runs:
        ax.plot(r.trace[key], r.trace["loss"], marker="o" if len(r.trace[key]) < 12 else None,
                ms=4, label=r.spec.legend, color=colors[r.spec.label])
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("training loss L(θ)")
    ax.set_title(f"Training loss {comp.eval_note} — {_budget_text(comp)}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, f"loss_vs_{x}")


def plot_grad_norm(comp, out_dir):
    """‖∇L(θ)‖ on the evaluation sample against optimizer steps (log-log), with the ε line."""
    colors = label_colors([r.spec.label for r in comp.runs])
    fig = new_figure()
    ax = fig.add_subplot()
    for r in comp.runs:
        ax.plot(np.asarray(r.trace["step"]) + 1, r.trace["grad_norm"], marker=".", label=r.spec.legend,
                color=colors[r.spec.label])
    if comp.eps:
        ax.axhline(comp.eps, color="k", ls="--", lw=1, label=f"ε = {comp.eps:g} (stopping rule)")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("optimizer steps + 1")
    ax.set_ylabel("‖∇L(θ)‖ over the evaluation sample")
    ax.set_title(f"Gradient norm {comp.eval_note}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, "grad_norm_vs_steps")


def plot_test_accuracy(comp, out_dir):
    """Test accuracy after each epoch (and at the end) against samples processed."""
    colors = label_colors([r.spec.label for r in comp.runs])
    fig = new_figure()
    ax = fig.add_subplot()
    for r in comp.runs:
        pts = [(e["samples"], e["test_acc"]) for e in r.history.epochs if "test_acc" in e]
        if r.summary.get("test_acc") is not None and (not pts or pts[-1][0] != r.summary["samples"]):
            pts.append((r.summary["samples"], r.summary["test_acc"]))
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, marker="o", ms=4, label=f"{r.spec.legend}: {ys[-1]:.1%}", color=colors[r.spec.label])
    ax.set_xlabel(_X["samples"][1])
    ax.set_ylabel("test accuracy")
    ax.set_title(f"Test accuracy — {_budget_text(comp)}", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, "test_accuracy")


def plot_step_loss(comp, out_dir):
    """The loss of each step's own batch against samples processed, one line per run."""
    colors = label_colors([r.spec.label for r in comp.runs])
    fig = new_figure(7.2, 4.2)
    ax = fig.add_subplot()
    for r in comp.runs:
        loss = np.asarray(r.history.steps["loss"], dtype=float)
        if loss.size == 0:
            continue
        B = comp.n_train if r.spec.batch_size == "full" else int(r.spec.batch_size)
        xs = np.minimum(np.arange(1, loss.size + 1) * B, r.summary["samples"])
        ax.plot(xs, loss, lw=0.8 if loss.size > 50 else 1.5, marker="o" if loss.size < 30 else None, ms=4,
                alpha=0.85, label=r.spec.legend, color=colors[r.spec.label])
    ax.set_yscale("log")
    ax.set_xlabel(_X["samples"][1])
    ax.set_ylabel("loss of the step's batch")
    ax.set_title(f"Loss of each step's own batch (all {comp.n_train} rows for full batch) — "
                 f"{_budget_text(comp)}", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, "step_loss")


def plot_gradient_noise(noises: dict, out_dir, note=""):
    """Cosine(g_B, g) and E‖g_B − g‖² against batch size B, one line per θ (label → GradientNoise)."""
    fig = new_figure(10, 4)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    colors = label_colors(list(noises))
    for label, gn in noises.items():
        c = colors[label]
        ax1.errorbar(gn.batch_sizes, gn.cos_mean, yerr=gn.cos_std, marker="o", ms=4, capsize=3, color=c,
                     label=label)
        keep = gn.batch_sizes < gn.n  # at B = n the noise is exactly zero: off a log scale
        ax2.plot(gn.batch_sizes[keep], gn.variance[keep], marker="o", ms=4, color=c, label=label)
        B = gn.batch_sizes[keep].astype(float)
        if B.size:
            # sampling without replacement: var ∝ (1/B − 1/n); anchored at the smallest B
            ref = (1 / B - 1 / gn.n) * gn.variance[keep][0] / (1 / B[0] - 1 / gn.n)
            ax2.plot(B, ref, ls=":", color=c, lw=1)
    ax1.set_xscale("log")
    ax1.set_ylim(top=1.05)
    ax1.set_xlabel("batch size B")
    ax1.set_ylabel("cos(g_B, ∇L)")
    ax1.set_title("How well a mini-batch gradient points downhill", fontsize=10)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    ax2.set_xlabel("batch size B")
    ax2.set_ylabel("E‖g_B − ∇L‖²")
    ax2.set_title("Gradient noise (dotted: ∝ 1/B − 1/n; zero at B = n)", fontsize=10)
    for ax in (ax1, ax2):
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    if note:
        fig.suptitle(f"Mini-batch gradients at fixed θ, {note}", fontsize=10)
    return save_figure(fig, out_dir, "gradient_noise")


def plot_comparison(comp, out_dir, noise=None, note="") -> list:
    """Every comparison plot; returns all paths written."""
    paths = []
    for x in ("epochs", "samples", "seconds"):
        paths += plot_loss(comp, out_dir, x)
    paths += plot_grad_norm(comp, out_dir)
    if any(r.summary.get("test_acc") is not None for r in comp.runs):
        paths += plot_test_accuracy(comp, out_dir)
    paths += plot_step_loss(comp, out_dir)
    if noise:
        paths += plot_gradient_noise(noise, out_dir, note)
    return paths
