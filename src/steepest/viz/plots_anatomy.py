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


def _mark_dead(ax):
    """Grey out a panel whose unit is dead (a ReLU silent on the whole batch)."""
    for side in ax.spines.values():
        side.set_edgecolor("#888")
        side.set_linewidth(2)
        side.set_linestyle("--")


def _column_titles(net, n):
    """Panel titles of the first ``n`` columns of W₁: ``unit j``, or ``unit j·p`` (piece p) for maxout; None
    (the default ``unit j``) for an element-wise first layer."""
    k = net.layers[0].pieces
    return None if k == 1 else [f"unit {c // k}·{c % k}" for c in range(n)]


def _pieces_note(net) -> str:
    k = net.layers[0].pieces
    return "" if k == 1 else f" — maxout: {k} pieces per unit, panel j·p is piece p of unit j"


def _image_grid(images, out_dir, stem, title, cmap="RdBu_r", shared=True, cbar_label="", dead=None,
                cols=None, titles=None, row_labels=None):
    """Images in a grid, units numbered from 0; ``dead[j]`` marks panel j as a dead unit."""
    rows, cols = _grid(len(images)) if cols is None else (math.ceil(len(images) / cols), cols)
    fig = new_figure(1.3 * cols + 1.2, 1.3 * rows + 1.1)
    vmax = max(float(np.max(np.abs(im))) for im in images) or 1.0
    im_ = None
    for j, im in enumerate(images):
        ax = fig.add_subplot(rows, cols, j + 1)
        v = vmax if shared else (float(np.max(np.abs(im))) or 1.0)
        im_ = ax.imshow(im, cmap=cmap, vmin=-v, vmax=v, interpolation="nearest",
                        aspect="auto" if im.shape[0] == 1 else "equal")
        is_dead = dead is not None and bool(dead[j])
        ax.set_title((titles[j] if titles else f"unit {j}") + (" · dead" if is_dead else ""), fontsize=7,
                     color="#888" if is_dead else "k")
        if is_dead:
            _mark_dead(ax)
        if row_labels and j % cols == 0:
            ax.set_ylabel(row_labels[j // cols], fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    if shared and im_ is not None:
        fig.colorbar(im_, ax=fig.axes, shrink=0.8, label=cbar_label)
    fig.suptitle(title, fontsize=9)
    return save_figure(fig, out_dir, stem)


def _dominance(anatomy) -> str:
    if anatomy.loss_share is None:
        return ""
    k, share = anatomy.loss_share
    return (f"\nthe {k} highest-loss rows of {anatomy.n_rows} carry {share:.0%} of the batch's loss, "
            "and so most of this gradient: a map can look like one digit")


def plot_input_maps(anatomy, image_shape, out_dir, n_units=16):
    """−∂L/∂W₁ of the first ``n_units`` hidden units, one image each — each piece of a maxout unit (red: the
    step raises the weight)."""
    G = -anatomy.weight_grad(0)[:, :n_units * anatomy.net.layers[0].pieces]
    dead = None if anatomy.dead is None else anatomy.dead[:n_units]
    n_dead = "" if dead is None else f"; dashed grey: dead unit (ReLU silent on the whole batch, gradient 0)"
    which = "columns" if anatomy.net.layers[0].pieces > 1 else "hidden units"
    return _image_grid(_as_images(G, image_shape), out_dir, "input_gradient_maps",
                       f"−∂L/∂W for the input weights of {which} 0–{G.shape[1] - 1} "
                       f"(batch of {anatomy.n_rows}; red: next step raises the weight, blue: lowers it{n_dead})"
                       + _pieces_note(anatomy.net) + _dominance(anatomy),
                       cbar_label="−∂L/∂w (one scale for all units)", dead=dead,
                       titles=_column_titles(anatomy.net, G.shape[1]))


def plot_input_maps_over_training(snapshots, image_shape, out_dir, n_units=8):
    """−∂L/∂W₁ of the first ``n_units`` hidden units at several θ, one row each, one colour scale per row.

    ``snapshots``: a list of ``(label, Anatomy)``, e.g. θ₀, after epoch 1, …, the trained θ.
    """
    images, titles, dead, labels = [], [], [], []
    for label, an in snapshots:
        G = -an.weight_grad(0)[:, :n_units * an.net.layers[0].pieces]  # fewer when the layer is narrower
        v = float(np.max(np.abs(G))) or 1.0
        images += [im / v for im in _as_images(G, image_shape)]  # each row on its own scale: early θ is larger
        titles += _column_titles(an.net, G.shape[1]) or [f"unit {j}" for j in range(G.shape[1])]
        dead += list(an.dead[:n_units]) if an.dead is not None else [False] * G.shape[1]
        labels.append(f"{label}\nloss {an.loss:.3g}")
    return _image_grid(images, out_dir, "input_gradient_maps_over_training",
                       "−∂L/∂W₁ of the same units and the same batch as training goes on (rows: θ₀ → trained θ; "
                       "each row on its own scale; dashed grey: dead unit)" + _pieces_note(snapshots[0][1].net),
                       dead=dead, cols=len(titles) // len(snapshots),  # one row a snapshot
                       titles=titles, row_labels=labels, cbar_label="−∂L/∂w ÷ the row's largest")


def plot_first_layer_weights(net, theta, image_shape, out_dir, n_units=16):
    """First-layer weights W₁[:, j] as images, each unit (each piece of a maxout unit) on its own symmetric
    colour scale."""
    W = net.unpack(theta)[0][0][:, :n_units * net.layers[0].pieces].astype(np.float64)
    which = f"columns 0–{W.shape[1] - 1}" if net.layers[0].pieces > 1 else f"hidden units 0–{W.shape[1] - 1}"
    return _image_grid(_as_images(W, image_shape), out_dir, "first_layer_weights",
                       f"First-layer weights of {which} (each on its own scale; red > 0 > blue)" + _pieces_note(net),
                       shared=False, titles=_column_titles(net, W.shape[1]))


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
    """The k weights the next step moves most, named in words, with predicted and measured change of the loss."""
    top = anatomy.top[::-1]
    names = [t.get("name") or f"{t['layer']} {t['kind']}[{t['row']}{'' if t['col'] is None else ', ' + str(t['col'])}]"
             for t in top]
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
