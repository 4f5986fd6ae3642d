"""Plots of the loss landscape: the line θ₀ → θ*, a random plane, trajectories, the step probe, minima."""

from __future__ import annotations

import numpy as np

from steepest.viz.common import label_colors, new_figure, save_figure


def _tick(fmt="{:.2f}"):
    """A tick formatter that writes ``fmt`` and never "−0.00" (a rounded tiny negative is 0)."""
    from matplotlib.ticker import FuncFormatter

    def f(v, _pos=None):
        text = fmt.format(0.0 if abs(v) < 1e-9 else v)  # a tick at 0 often arrives as ±1e-17
        return text[1:] if text.startswith("-") and float(text) == 0 else text

    return FuncFormatter(f)


def _log_loss(loss, n=30):
    """log₁₀ of the loss (so the valley floor is as detailed as the walls) and contour levels for it.

    Diverged points (non-finite or 1000× the minimum) are clipped to the top level.
    """
    finite = loss[np.isfinite(loss)]
    lo = np.log10(max(finite.min(), 1e-12)) if finite.size else 0.0
    hi = min(np.log10(max(finite.max(), 1e-12)), lo + 3.0) if finite.size else 1.0
    Z = np.clip(np.log10(np.clip(np.nan_to_num(loss, nan=np.inf), 1e-12, None)), lo, hi)
    return Z, np.linspace(lo, hi if hi > lo else lo + 1e-6, n)


def plot_line_1d(line, out_dir):
    """Train (and test) loss along θ(α) = (1 − α)θ₀ + αθ*, with θ₀ and θ* marked."""
    fig = new_figure()
    ax = fig.add_subplot()
    ax.plot(line.alphas, line.train_loss, label="train", color="#1f77b4")
    if line.test_loss is not None:
        ax.plot(line.alphas, line.test_loss, label="test", color="#d62728")
    line_axes(ax, "α   (θ = (1 − α)·θ₀ + α·θ*)", f"Loss along the straight line from θ₀ to θ* — {line.note}")
    return save_figure(fig, out_dir, "line_1d")


def line_axes(ax, xlabel, title, fontsize=10, legend_size=8):
    """The frame of a loss-along-the-line plot: θ₀ at α = 0 and θ* at α = 1 marked, log loss, grid, legend."""
    for a, name in ((0.0, "θ₀ (init)"), (1.0, "θ* (trained)")):
        ax.axvline(a, color="k", lw=0.8, ls=":")
        ax.text(a, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("loss")
    ax.set_title(title, fontsize=fontsize, pad=16)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=legend_size)


def plot_plane(plane, out_dir, stem="plane", title="Loss around θ* on a random filter-normalised plane"):
    """Contour plot (and a 3-D surface) of :class:`~steepest.viz.landscape.Plane`."""
    A, B = np.meshgrid(plane.alphas, plane.betas)
    Z, levels = _log_loss(plane.loss)
    fig = new_figure(6, 5)
    ax = fig.add_subplot()
    cs = ax.contourf(A, B, Z, levels=levels, cmap="viridis")
    ax.contour(A, B, Z, levels=levels[::2], colors="w", linewidths=0.4, alpha=0.6)
    fig.colorbar(cs, ax=ax, label="log₁₀ loss", format=_tick())
    ax.plot([0], [0], marker="*", color="r", ms=12, label="θ*")
    ax.set_xlabel("a (direction d₁)")
    ax.set_ylabel("b (direction d₂)")
    ax.set_title(f"{title}\n{plane.note}", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    paths = save_figure(fig, out_dir, f"{stem}_contour")
    fig = new_figure(6.4, 5)
    ax = fig.add_subplot(projection="3d")
    ax.plot_surface(A, B, Z, cmap="viridis", linewidth=0, antialiased=True)
    ax.set_xlabel("a")
    ax.set_ylabel("b")
    ax.set_zlabel("log₁₀ loss")
    ax.set_title(f"{title}\n{plane.note}", fontsize=10)
    return paths + save_figure(fig, out_dir, f"{stem}_surface")


def plot_trajectories(pca, plane, out_dir, legends=None):
    """Optimizer paths on the plane of their first two principal components, over the loss contours.

    ``legends`` (label → text, e.g. with lr and batch) names the paths. The plane is the one the
    paths spread most along; the contours are the loss *on that plane*, with every other direction
    held at θ*, so a path can cross contours it did not feel and the loss under a point off θ*
    is not the loss the optimizer saw there.
    """
    A, B = np.meshgrid(plane.alphas, plane.betas)
    Z, levels = _log_loss(plane.loss)
    fig = new_figure(6.6, 5.4)
    ax = fig.add_subplot()
    cs = ax.contourf(A, B, Z, levels=levels, cmap="viridis", alpha=0.85)
    ax.contour(A, B, Z, levels=levels[::2], colors="w", linewidths=0.4, alpha=0.5)
    fig.colorbar(cs, ax=ax, label="log₁₀ loss", format=_tick())
    colors = label_colors(list(pca.coords))
    for label, xy in pca.coords.items():
        ax.plot(xy[:, 0], xy[:, 1], marker=".", ms=3, lw=1.2, color=colors[label],
                label=(legends or {}).get(label, label))
        ax.plot(xy[-1, 0], xy[-1, 1], marker="o", ms=6, color=colors[label], mec="k")
    start = next(iter(pca.coords.values()))[0]
    ax.plot(start[0], start[1], marker="s", color="w", mec="k", ms=7, label="θ₀")
    ax.set_xlabel(f"PC1 ({pca.explained[0]:.0%} of the paths' spread)")
    ax.set_ylabel(f"PC2 ({pca.explained[1]:.0%})")
    ax.xaxis.set_major_formatter(_tick("{:.4g}"))
    ax.yaxis.set_major_formatter(_tick("{:.4g}"))
    ax.set_title(f"Optimizer paths projected on their first two principal components\n{plane.note}; "
                 "loss shown on this plane only", fontsize=9)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, "trajectories")


def plot_step_probe(probe, out_dir, stem="step_probe"):
    """L(θ − α∇L) against α (log scale), the first-order line, and the learning rate in use."""
    fig = new_figure()
    ax = fig.add_subplot()
    pos = probe.alphas > 0
    a, loss = probe.alphas[pos], probe.loss[pos]
    ax.plot(a, loss, marker=".", label="L(θ − α∇L)")
    ax.plot(a, probe.first_order[pos], ls="--", color="gray", label="first order: L(θ) − α‖∇L‖²")
    ax.axhline(probe.loss0, color="k", lw=0.8, ls=":", label=f"L(θ) = {probe.loss0:.4g} (no step)")
    ax.axvline(probe.lr, color="r", lw=1, label=f"lr in use = {probe.lr:g}")
    if probe.best_alpha is not None:  # never an α at the edge of the grid: the minimum may lie beyond it
        ax.axvline(probe.best_alpha, color="g", lw=1, ls=":", label=f"lowest loss probed at α = {probe.best_alpha:.3g}")
    finite = loss[np.isfinite(loss)]
    if finite.size:
        drop = max(probe.loss0 - finite.min(), 1e-3 * max(abs(probe.loss0), 1e-12))
        ax.set_ylim(probe.loss0 - 1.15 * drop, probe.loss0 + 1.5 * drop)  # the overshoot shows as a rise
    ax.set_xscale("log")
    ax.set_xlabel("α (step length along −∇L)")
    ax.set_ylabel("loss")
    ax.set_title(f"Loss along −∇L: {probe.verdict}\n{probe.note}", fontsize=9, wrap=True)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return save_figure(fig, out_dir, stem)


def plot_minima(runs: dict, out_dir, lr=None):
    """The toy paths over f(x) = x⁴ − 3x² + x from one start, and x against the step.

    The title says where each run ended, as measured: from some starts both runs end in the same
    minimum (see :func:`plot_basin_map` for all of them).
    """
    from steepest.viz.minima import double_well

    first = runs[next(iter(runs))]
    xs = np.linspace(-2.0, 2.2, 400)
    fig = new_figure(11, 4.2)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax1.plot(xs, double_well(xs), color="k", lw=1.2, label="f(x) = x⁴ − 3x² + x")
    colors = label_colors(list(runs))
    for label, r in runs.items():
        c = colors[label]
        ax1.plot(r.xs, r.fs, marker="o", ms=3, lw=0.6, alpha=0.7, color=c, label=f"{label} → {r.basin} minimum")
        ax1.plot(r.xs[-1], r.fs[-1], marker="*", ms=14, color=c, mec="k")
        ax2.plot(np.arange(len(r.xs)), r.xs, color=c, label=label)
    ax1.plot(first.xs[0], first.fs[0], marker="s", color="w", mec="k", ms=8, label=f"start x₀ = {first.xs[0]:g}")
    ax1.set_xlabel("x")
    ax1.set_ylabel("f(x)")
    ends = "; ".join(f"{label} ends in the {r.basin} minimum" for label, r in runs.items())
    ax1.set_title(f"From x₀ = {first.xs[0]:g}" + (f", lr {lr:g}" if lr else "") + f": {ends}", fontsize=9)
    ax1.legend(fontsize=8)
    ax2.set_xlabel("step")
    ax2.set_ylabel("x")
    ax2.set_title("Position against step", fontsize=10)
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    return save_figure(fig, out_dir, "double_well_momentum")


def plot_basin_map(x0s, momenta, codes, out_dir, lr, steps, mark=None):
    """Which minimum of f each (start x₀, momentum μ) ends in, as a coloured map; ``mark`` = (x₀, μ) to star."""
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    from steepest.viz.minima import BASINS, critical_points

    fig = new_figure(7.2, 4.4)
    ax = fig.add_subplot()
    colors = ["#2c7fb8", "#fdae61", "#d9d9d9"]
    dx = (x0s[1] - x0s[0]) / 2 if len(x0s) > 1 else 0.5
    dm = (momenta[1] - momenta[0]) / 2 if len(momenta) > 1 else 0.5
    ax.imshow(codes, origin="lower", aspect="auto", cmap=ListedColormap(colors), vmin=-0.5, vmax=2.5,
              extent=(x0s[0] - dx, x0s[-1] + dx, momenta[0] - dm, momenta[-1] + dm), interpolation="nearest")
    deep, hump, shallow = critical_points()
    for x, name in ((deep, "deep min"), (hump, "hump"), (shallow, "shallow min")):
        ax.axvline(x, color="k", lw=0.8, ls=":")
        ax.text(x, 1.0, name, transform=ax.get_xaxis_transform(), ha="center", va="bottom", fontsize=8)
    if mark is not None:
        ax.plot(*mark, marker="*", ms=14, color="w", mec="k", ls="none", label="the run drawn beside")
    handles = [Patch(color=c, label=f"ends in: {b}") for c, b in zip(colors, BASINS) if (codes == BASINS.index(b)).any()]
    ax.legend(handles=handles + ax.get_legend_handles_labels()[0], fontsize=8, loc="lower left")
    ax.set_xlabel("start x₀")
    ax.set_ylabel("momentum μ (0: plain GD)")
    ax.set_title(f"Where each run ends on f(x) = x⁴ − 3x² + x: lr {lr:g}, {steps} steps", fontsize=10, pad=16)
    return save_figure(fig, out_dir, "double_well_basins")


def plot_ravine(runs: dict, kappa, lr, out_dir):
    """GD and momentum paths over the contours of r(u, v) = ½(u² + κv²), and r against the step (log)."""
    from steepest.viz.minima import ravine_loss

    fig = new_figure(11, 4.2)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    pts = np.concatenate([r.xs for r in runs.values()])
    pts = pts[np.all(np.isfinite(pts), axis=1)]
    ulim = 1.15 * max(np.abs(pts[:, 0]).max(), 1e-3)
    vlim = 1.3 * max(np.abs(pts[:, 1]).max(), 1e-3)
    U, V = np.meshgrid(np.linspace(-ulim, ulim, 200), np.linspace(-vlim, vlim, 200))
    R = ravine_loss(np.stack([U, V], axis=-1), kappa)
    ax1.contour(U, V, R, levels=np.geomspace(max(R.min(), 1e-3), R.max(), 14), colors="#999", linewidths=0.6)
    colors = label_colors(list(runs))
    for label, r in runs.items():
        ax1.plot(r.xs[:, 0], r.xs[:, 1], marker=".", ms=3, lw=0.8, color=colors[label], label=label)
        ax2.plot(np.arange(len(r.fs)), np.maximum(r.fs, 1e-300), color=colors[label],
                 label=f"{label}: r = {r.fs[-1]:.2g} after {len(r.fs) - 1} steps")
    first = next(iter(runs.values()))
    ax1.plot(*first.xs[0], marker="s", color="w", mec="k", ms=8, ls="none", label="start")
    ax1.set_xlabel("u (shallow direction, curvature 1)")
    ax1.set_ylabel(f"v (steep direction, curvature {kappa:g})")
    ax1.set_title(f"A ravine r(u, v) = ½(u² + {kappa:g}·v²), lr {lr:g} (GD needs lr < {2 / kappa:.3g})",
                  fontsize=9)
    ax1.legend(fontsize=8)
    ax2.set_yscale("log")
    ax2.set_xlabel("step")
    ax2.set_ylabel("r(u, v)")
    ax2.set_title("Loss against step", fontsize=10)
    ax2.legend(fontsize=8)
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
    return save_figure(fig, out_dir, "ravine_momentum")
