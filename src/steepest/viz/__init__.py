"""See what gradient descent does: optimizers compared, the loss landscape, the gradient's anatomy, reports.

Every analysis returns numbers (dataclasses of NumPy arrays) and has a separate plotting function
that writes PNG and SVG files; matplotlib is imported only when something is drawn. The core never
imports this package.

========================  ===================================================================
module                    what it holds
========================  ===================================================================
:mod:`.compare`           :func:`compare_optimizers` (same θ₀, equal budget), :func:`gradient_noise`
:mod:`.landscape`         :func:`line_1d`, :func:`random_plane`, :func:`train_paths`,
                          :func:`trajectory_landscape`, :func:`step_probe`
:mod:`.flatness`          ``flatness.flatness``: ΔL(r) at filter-normalised distances, :class:`Flatness`
:mod:`.minima`            :func:`momentum_vs_gd` on f(x) = x⁴ − 3x² + x
:mod:`.anatomy`           :func:`gradient_anatomy`, :func:`first_order_sweep`
:mod:`.report`            :func:`build_html` (pure), :func:`write_report` for a directory
:mod:`.plots_compare`,    the plotting functions, one figure each, ``(result, out_dir) → [paths]``
:mod:`.plots_landscape`,
:mod:`.plots_flatness`,
:mod:`.plots_anatomy`
========================  ===================================================================
"""

from steepest.viz.anatomy import Anatomy, first_order_sweep, gradient_anatomy
from steepest.viz.compare import (
    DEFAULT_RUNS,
    Comparison,
    GradientNoise,
    RunSpec,
    compare_optimizers,
    gradient_noise,
    parse_runs,
    write_comparison,
)
from steepest.viz.landscape import (
    Line1D,
    PCAPlane,
    Plane,
    StepProbe,
    filter_normalized_direction,
    line_1d,
    pca_plane,
    random_plane,
    step_probe,
    train_paths,
    trajectory_landscape,
)
from steepest.viz.flatness import Flatness  # the function stays flatness.flatness: it would hide its module
from steepest.viz.minima import momentum_vs_gd
from steepest.viz.report import Image, Pre, Section, Table, Text, build_html, collect, write_report

__all__ = [
    "Anatomy", "first_order_sweep", "gradient_anatomy",
    "DEFAULT_RUNS", "Comparison", "GradientNoise", "RunSpec", "compare_optimizers", "gradient_noise",
    "parse_runs", "write_comparison",
    "Line1D", "PCAPlane", "Plane", "StepProbe", "filter_normalized_direction", "line_1d", "pca_plane",
    "random_plane", "step_probe", "train_paths", "trajectory_landscape",
    "Flatness", "momentum_vs_gd",
    "Image", "Pre", "Section", "Table", "Text", "build_html", "collect", "write_report",
]
