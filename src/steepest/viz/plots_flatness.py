"""Plots that put models side by side on one scale: ΔL(r), the lines θ₀ → θ*, the random planes.

Each takes ``label → result`` (one or more models) and draws them on shared axes or a shared
colour scale, with a caption that says what was measured and what was not.
"""

from __future__ import annotations

import numpy as np

from steepest.viz.common import label_colors, new_figure, save_figure
from steepest.viz.plots_landscape import _tick, line_axes


def _caption(fig, text):
    fig.text(0.01, -0.02, text, ha="left", va="top", fontsize=7.5, wrap=True, color="#333")


def plot_flatness(results: dict, out_dir, radius, stem="flatness"):
    """ΔL(r) of each model: the mean over its directions (line) and their range (band), r = ``radius`` marked."""
    fig = new_figure(6.8, 4.4)
    ax = fig.add_subplot()
    colors = label_colors(list(results))
    for label, f in results.items():
        inc = f.increase
        m, lo, hi = inc.mean(axis=0), inc.min(axis=0), inc.max(axis=0)
        at = f.at(radius)[0]
        ax.plot(f.radii, m, marker=".", color=colors[label],
                label=f"{label}: ΔL({radius:g}) = {at:.3g}, L(θ*) = {f.loss0:.3g}")
        ax.fill_between(f.radii, lo, hi, color=colors[label], alpha=0.18, lw=0)
    ax.axvline(radius, color="k", lw=0.8, ls=":")
    # symlog: linear near 0 (ΔL(0) = 0, and a side may dip below θ*), logarithmic beyond
    ax.set_yscale("symlog", linthresh=1e-3)
    low = min(float(np.nanmin(f.increase)) for f in results.values())
    ax.set_ylim(bottom=min(low * 1.5, 0.0))
    ax.set_xlabel("r   (filter-normalised distance from θ*)")
    ax.set_ylabel("ΔL(r) = ½[L(θ*+r·d) + L(θ*−r·d)] − L(θ*)")
    first = next(iter(results.values()))
    k = first.plus.shape[0]
    ax.set_title(f"Loss increase around θ*, {k} seeded random directions — {first.note}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    _caption(fig, f"Line: mean over {k} Gaussian directions (seed {first.seed}); band: their min–max. Each "
             "direction is filter-normalised to its own model's weights (every unit's incoming weights scaled to "
             "their norm at θ*, biases not moved), so r = 1 is a step as large as the weights themselves. Loss: "
             "cross-entropy + the model's L2 term, on the sample named above. Random directions show the typical "
             "curvature, not the sharpest direction; nothing here measures generalisation.")
    return save_figure(fig, out_dir, stem)


def plot_lines(lines: dict, out_dir, stem="line_1d_both"):
    """Train (solid) and test (dashed) loss along θ(α) = (1 − α)θ₀ + αθ* of each model, on one log axis."""
    fig = new_figure(6.8, 4.4)
    ax = fig.add_subplot()
    colors = label_colors(list(lines))
    for label, line in lines.items():
        ax.plot(line.alphas, line.train_loss, color=colors[label], label=f"{label}: train")
        if line.test_loss is not None:
            ax.plot(line.alphas, line.test_loss, color=colors[label], ls="--", label=f"{label}: test")
    line_axes(ax, "α   (θ = (1 − α)·θ₀ + α·θ*, each model its own θ₀ and θ*)",
              f"Loss along the line from θ₀ to θ* — train {next(iter(lines.values())).note}", fontsize=9,
              legend_size=7.5)
    return save_figure(fig, out_dir, stem)


def plot_planes(planes: dict, out_dir, stem="plane_contour_both"):
    """The random plane around each model's θ*, side by side on one colour scale (log₁₀ loss)."""
    # one scale: from the lowest loss of any panel up to 1000× the highest of the panels' own minima
    # (each panel's walls get three decades, however low the other's floor is), at most the highest loss
    finite = [p.loss[np.isfinite(p.loss)] for p in planes.values()]
    floors = [np.log10(max(f.min(), 1e-12)) for f in finite if f.size]
    lo = min(floors) if floors else 0.0
    hi = min(max(np.log10(max(f.max(), 1e-12)) for f in finite if f.size), max(floors) + 3.0) if floors else 1.0
    levels = np.linspace(lo, hi if hi > lo else lo + 1e-6, 40)
    fig = new_figure(5.2 * len(planes) + 0.8, 4.9)
    axes = [fig.add_subplot(1, len(planes), i + 1) for i in range(len(planes))]
    for ax, (label, p) in zip(axes, planes.items()):
        A, B = np.meshgrid(p.alphas, p.betas)
        Z = np.clip(np.log10(np.clip(np.nan_to_num(p.loss, nan=np.inf), 1e-12, None)), lo, hi)
        cs = ax.contourf(A, B, Z, levels=levels, cmap="viridis")
        ax.contour(A, B, Z, levels=levels[::2], colors="w", linewidths=0.4, alpha=0.6)
        ax.plot([0], [0], marker="*", color="r", ms=12)
        i, j = np.flatnonzero(p.betas == 0), np.flatnonzero(p.alphas == 0)
        at = f"\nL(θ*) = {p.loss[i[0], j[0]]:.3g}" if i.size and j.size else ""
        ax.set_title(f"{label}{at}", fontsize=9)
        ax.set_xlabel("a (direction d₁)")
        ax.set_aspect("equal")
    axes[0].set_ylabel("b (direction d₂)")
    fig.colorbar(cs, ax=axes, label="log₁₀ loss (one scale for all panels)", format=_tick())
    first = next(iter(planes.values()))
    fig.suptitle(f"Loss around θ* (red star) on a random filter-normalised plane — {first.note}", fontsize=10)
    _caption(fig, "Each panel: θ* + a·d₁ + b·d₂ with d₁, d₂ the same Gaussian draws (same seed), each "
             "filter-normalised to its own model's weights; one plane out of many, the first two of the "
             "directions ΔL is averaged over. Losses above the top of the scale (1000× the higher of the "
             "two minima on the plane) are clipped to the top colour.")
    return save_figure(fig, out_dir, stem)
