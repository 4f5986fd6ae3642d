"""Plots of the gradient's anatomy: input-weight maps, histograms, largest moves, weights, layer norms."""

from __future__ import annotations

import math

import numpy as np

from steepest.viz.common import new_figure, save_figure


def _grid(n):
    cols = min(n, 8)
    return math.ceil(n / cols), cols


def _as_images(M, image_shape):
    """Columns of ``M (n_in, k)`` as ``k`` images of ``image_shape`` (or a 1-row strip without one)."""
    shape = tuple(image_shape) if image_shape and int(np.prod(image_shape)) == M.shape[0] else (1, M.shape[0])
    return [M[:, j].reshape(shape) for j in range(M.shape[1])]


def _image_grid(images, out_dir, stem, title, cmap="RdBu_r", shared=True, cbar_label=""):
    rows, cols = _grid(len(images))
    fig = new_figure(1.3 * cols + 1.2, 1.3 * rows + 0.9)
    vmax = max(float(np.max(np.abs(im))) for im in images) or 1.0
    im_ = None
    for j, im in enumerate(images):
        ax = fig.add_subplot(rows, cols, j + 1)
        v = vmax if shared else (float(np.max(np.abs(im))) or 1.0)
        im_ = ax.imshow(im, cmap=cmap, vmin=-v, vmax=v, interpolation="nearest",
                        aspect="auto" if im.shape[0] == 1 else "equal")
        ax.set_title(f"unit {j + 1}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    if shared and im_ is not None:
        fig.colorbar(im_, ax=fig.axes, shrink=0.8, label=cbar_label)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, out_dir, stem)


def plot_input_maps(anatomy, image_shape, out_dir, n_units=16):
    """−∂L/∂W₁ of the first ``n_units`` hidden units, one image each (red: the step raises the weight)."""
    G = -anatomy.weight_grad(0)[:, :n_units]
    return _image_grid(_as_images(G, image_shape), out_dir, "input_gradient_maps",
                       f"−∂L/∂W for the input weights of hidden units 1–{G.shape[1]} "
                       f"(batch of {anatomy.n_rows}; red: next step raises the weight, blue: lowers it)",
                       cbar_label="−∂L/∂w (one scale for all units)")


def plot_first_layer_weights(net, theta, image_shape, out_dir, n_units=16):
    """First-layer weights W₁[:, j] as images, each unit on its own symmetric colour scale."""
    W = net.unpack(theta)[0][0][:, :n_units].astype(np.float64)
    return _image_grid(_as_images(W, image_shape), out_dir, "first_layer_weights",
                       f"First-layer weights of hidden units 1–{W.shape[1]} (each on its own scale; red > 0 > blue)",
                       shared=False)


def plot_grad_histograms(anatomy, out_dir, bins=60):
    """Per layer: histogram of the components of −∂L/∂W and −∂L/∂b (log counts)."""
    names = anatomy.net.layer_names()
    fig = new_figure(3.2 * len(names) + 0.5, 3.4)
    for l, name in enumerate(names):
        ax = fig.add_subplot(1, len(names), l + 1)
        gw, gb = -anatomy.weight_grad(l).ravel(), -anatomy.bias_grad(l)
        lim = max(float(np.max(np.abs(gw))), float(np.max(np.abs(gb))), 1e-12)
        edges = np.linspace(-lim, lim, bins + 1)
        ax.hist(gw, bins=edges, color="#1f77b4", alpha=0.8, label=f"W ({gw.size})")
        ax.hist(gb, bins=edges, color="#ff7f0e", alpha=0.8, label=f"b ({gb.size})")
        ax.set_yscale("log")
        ax.set_title(f"{name}: ‖∇‖ = {anatomy.layer_norms[l]:.3g}", fontsize=9)
        ax.set_xlabel("−∂L/∂θᵢ", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(fontsize=7)
    fig.suptitle(f"Gradient components per layer (batch of {anatomy.n_rows}, loss {anatomy.loss:.4f})", fontsize=10)
    return save_figure(fig, out_dir, "gradient_histograms")


def plot_top_moves(anatomy, out_dir):
    """The k weights the next step moves most, with predicted and measured change of the loss."""
    top = anatomy.top[::-1]
    names = [f"{t['layer']} {t['kind']}[{t['row']}{'' if t['col'] is None else ', ' + str(t['col'])}]" for t in top]
    steps = [t["step"] for t in top]
    fig = new_figure(7, 0.32 * len(top) + 1.8)
    ax = fig.add_subplot()
    ax.barh(range(len(top)), steps, color=["#d62728" if s > 0 else "#1f77b4" for s in steps])
    ax.set_yticks(range(len(top)), names, fontsize=8)
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel(f"step −η·∂L/∂θᵢ  (η = {anatomy.lr:g})")
    ax.set_title(f"The {len(top)} largest moves of the next step\nloss change: first order −η‖∇L‖² = "
                 f"{anatomy.predicted_change:.4g}, measured {anatomy.measured_change:.4g}", fontsize=9)
    ax.grid(True, axis="x", alpha=0.3)
    return save_figure(fig, out_dir, "top_moves")


def plot_first_order(sweep, out_dir, lr=None):
    """|predicted| and |measured| loss change of one GD step against η (log-log)."""
    fig = new_figure()
    ax = fig.add_subplot()
    ax.plot(sweep["lr"], -sweep["predicted"], marker=".", label="first order: η‖∇L‖² (decrease)")
    meas = -sweep["measured"]
    ax.plot(sweep["lr"][meas > 0], meas[meas > 0], marker="o", ms=4,
            label="measured decrease L(θ) − L(θ − η∇L)")
    if (meas <= 0).any():
        ax.plot(sweep["lr"][meas <= 0], np.abs(meas[meas <= 0]) + 1e-300, "x", color="r",
                label="measured: loss went up")
    if lr:
        ax.axvline(lr, color="k", ls=":", lw=1, label=f"η = {lr:g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("learning rate η")
    ax.set_ylabel("|change of the loss|")
    ax.set_title("One step of gradient descent: first-order prediction against the truth", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, "first_order")


def plot_layer_grad_norms(epochs, layer_names, out_dir):
    """‖∇L‖ of each layer over a run, from ``History.epochs[*]["layer_grad_norms"]``; [] if none recorded."""
    rows = [(e.get("epoch", i + 1), e["layer_grad_norms"]) for i, e in enumerate(epochs) if e.get("layer_grad_norms")]
    if not rows:
        return []
    fig = new_figure()
    ax = fig.add_subplot()
    x = [r[0] for r in rows]
    norms = np.array([r[1] for r in rows], dtype=float)
    for l in range(norms.shape[1]):
        ax.plot(x, norms[:, l], marker="o", ms=3, label=layer_names[l] if l < len(layer_names) else f"layer{l + 1}")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("‖∂L/∂θ_layer‖ (full training set)")
    ax.set_title("Per-layer gradient norms over the run", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, "layer_grad_norms")
