"""One self-contained HTML page per run: training, comparison, landscape and explanation, each explained.

The page is built by a pure function, :func:`build_html` ``(title, sections) → str``, from
:class:`Section` objects holding :class:`Text`, :class:`Pre`, :class:`Table` and :class:`Image`
items, with a table of contents linking to each section. Images are embedded as ``data:`` URIs
(PNG, base64), the style sheet is inline and there is no script, so the file opens anywhere
without network access.

:func:`collect` reads a run directory written by ``steepest train`` (``config.toml``,
``metrics.jsonl``, ``model.safetensors``) and whatever the other commands wrote into it or into
its sub-directories: a comparison (``summary.json``, e.g. ``compare/``), a landscape
(``landscape.json``, ``landscape/``) and an explanation (``explain.json``, ``explain/``). Each
known picture gets a title and one or two sentences on what to look for and what it cannot
show (:data:`EXPLAIN`); tables use words for their columns (:data:`COLUMNS`); the stop reason is
said once; with the model and its test set at hand, the misclassified test images are shown.
Every section that holds timings says on which machine they were measured.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from steepest._files import is_regular, read_regular
from steepest.errors import ConfigError
from steepest.records import LABELS, evaluated_sets, evaluation_columns

# A report reads what a directory holds, not what anyone could put there: bounded reads.
MAX_IMAGE_BYTES = 32 * 2**20
MAX_TEXT_BYTES = 64 * 2**20


@dataclass
class Text:
    text: str


@dataclass
class Pre:
    """Preformatted text (a configuration file)."""

    text: str


@dataclass
class Table:
    """``columns`` and ``rows`` (lists of values, or dicts keyed by column)."""

    columns: list
    rows: list
    caption: str = ""


@dataclass
class Image:
    """Image bytes (PNG by default), a caption and a note (what to look for, caveats) under it."""

    data: bytes
    caption: str = ""
    mime: str = "image/png"
    note: str = ""

    @classmethod
    def from_file(cls, path, caption=None) -> "Image":
        path = Path(path)
        mime = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}.get(path.suffix.lower())
        if mime is None:
            raise ConfigError(f"{path}: only .png, .svg and .jpg images can be embedded")
        title, note = EXPLAIN.get(path.stem, (path.stem.replace("_", " "), ""))
        data = read_regular(path, ConfigError, "an image file", max_bytes=MAX_IMAGE_BYTES)
        return cls(data, caption if caption is not None else title, mime, note)


@dataclass
class Section:
    title: str
    items: list = field(default_factory=list)
    intro: str = ""         # a sentence under the heading: what the section is and where it came from


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{border-bottom:2px solid #1f77b4;padding-bottom:.2em}h2{margin-top:2em;color:#1f4e79}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th{background:#eef3f8}td:first-child,th:first-child{text-align:left}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
figure{margin:1.2em 0;display:inline-block;vertical-align:top}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555;max-width:760px}figcaption b{color:#222}pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em}
.meta{color:#666;font-size:.9em}nav{background:#f6f8fa;padding:.6em 1.2em;border:1px solid #ddd}
nav ol{margin:.3em 0}.intro{color:#444}.gallery figure{margin:.3em}
"""


def _fmt(v) -> str:
    if v is None:
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    if isinstance(v, (list, dict)):
        return json.dumps(v, ensure_ascii=False)
    return str(v)


def _item_html(item) -> str:
    e = html.escape
    if isinstance(item, Text):
        return f"<p>{e(item.text)}</p>"
    if isinstance(item, Pre):
        return f"<pre>{e(item.text)}</pre>"
    if isinstance(item, Table):
        head = "".join(f"<th>{e(str(c))}</th>" for c in item.columns)
        body = []
        for r in item.rows:
            vals = [r.get(c) for c in item.columns] if isinstance(r, dict) else list(r)
            body.append("<tr>" + "".join(f"<td>{e(_fmt(v))}</td>" for v in vals) + "</tr>")
        cap = f"<caption>{e(item.caption)}</caption>" if item.caption else ""
        return f"<table>{cap}<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    if isinstance(item, Image):
        src = f"data:{item.mime};base64,{base64.b64encode(item.data).decode('ascii')}"
        note = f"<br>{e(item.note)}" if item.note else ""
        return (f'<figure><img src="{src}" alt="{e(item.caption)}">'
                f"<figcaption><b>{e(item.caption)}</b>{note}</figcaption></figure>")
    raise ConfigError(f"cannot put a {type(item).__name__} in a report; use Text, Pre, Table or Image")


def build_html(title: str, sections, subtitle: str = "") -> str:
    """The whole page as a string; depends on nothing but its arguments."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">',
             '<link rel="icon" href="data:,">',  # no favicon request: nothing leaves the file
             f"<title>{e(title)}</title><style>{_CSS}</style></head><body>", f"<h1>{e(title)}</h1>"]
    if subtitle:
        parts.append(f'<p class="meta">{e(subtitle)}</p>')
    if len(sections) > 1:
        links = "".join(f'<li><a href="#s{i}">{e(s.title)}</a></li>' for i, s in enumerate(sections, 1))
        parts.append(f"<nav><b>Contents</b><ol>{links}</ol></nav>")
    for i, s in enumerate(sections, 1):
        parts.append(f'<section id="s{i}"><h2>{e(s.title)}</h2>')
        if s.intro:
            parts.append(f'<p class="intro">{e(s.intro)}</p>')
        parts += [_item_html(it) for it in s.items]
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


# ---------------------------------------------------------------- what each picture shows

#: Picture stem → (title, what to look for and what it cannot show).
EXPLAIN = {
    "loss_curve": ("Loss per epoch", "Training (and validation/test) loss after each epoch, log scale. A gap "
                   "that opens between train and test is overfitting; train loss is over the whole set."),
    "accuracy_curve": ("Accuracy per epoch", "Accuracy after each epoch; the last test point is the headline "
                       "number."),
    "loss_vs_epochs": ("Training loss against epochs", "One line per optimizer, all from the same θ₀ with the "
                       "same budget. The loss is measured on a fixed sample of training rows (see the title), so "
                       "small wiggles are sampling."),
    "loss_vs_samples": ("Training loss against samples processed", "Equal x is equal compute (rows through "
                        "backprop): many cheap mini-batch steps against one full-batch step each pass."),
    "loss_vs_seconds": ("Training loss against wall seconds", "Each run's own clock, every gradient and "
                        "per-epoch evaluation included. Seconds depend on the machine named under the axis and on "
                        "its load: compare the order of the curves, not their numbers, across machines."),
    "grad_norm_vs_steps": ("Gradient norm against steps", "‖∇L‖ on the evaluation sample, log–log, with the ε "
                           "of the stopping rule. Stochastic runs stay noisy: each step sees one batch."),
    "test_accuracy": ("Test accuracy", "After each epoch, on the test set. It chooses nothing: any learning-rate "
                      "tuning used a validation split of the training rows."),
    "step_loss": ("Loss of each step's own batch", "Small batches draw a noisy line because every point is a "
                  "different batch; a full-batch point is the whole training loss. Compare trends, not points."),
    "gradient_noise": ("Gradient noise against batch size", "Left: how well a mini-batch gradient points along "
                       "the full one; right: its variance against the dotted 1/B − 1/n law. From a few dozen "
                       "draws per size on a sample of training rows."),
    "line_1d": ("Loss on the straight line θ₀ → θ*", "α = 0 is the initial θ, α = 1 the trained one. A fall "
                "without a bump means no barrier on the straight path — which is not the path training took."),
    "plane_contour": ("Loss on a random plane around θ* (contours)", "Two random filter-normalised directions, "
                      "θ* at the star. One random plane among very many: it shows the basin's width in typical "
                      "directions, not in the sharpest ones."),
    "plane_surface": ("Loss on a random plane around θ* (surface)", "The numbers of the contour plot, in 3-D."),
    "flatness": ("How flat θ* is: ΔL(r) along random directions", "½[L(θ*+r·d) + L(θ*−r·d)] − L(θ*) at "
                 "filter-normalised distances r, the mean over a few seeded directions and their range. Typical "
                 "curvature, not the sharpest direction; it measures the minimum, not how well it generalises."),
    "line_1d_both": ("Two models on the line θ₀ → θ*", "Each model from its own θ₀ to its own θ*, train and test "
                     "loss on one axis."),
    "plane_contour_both": ("Two models on a random plane (one colour scale)", "The same Gaussian draws, each "
                           "filter-normalised to its own model's weights; one plane among very many."),
    "trajectories": ("Optimizer paths on their principal plane", "The plane of the two directions the paths "
                     "spread most along; the legend gives each path's lr and batch. The contours are the loss on "
                     "that plane with all other directions held at θ*, not the loss the optimizer felt."),
    "step_probe": ("Step probe along −∇L at θ*", "L(θ − α∇L) against α; the title says whether the learning rate "
                   "in use overshoots. Where the curve leaves the dashed first-order line, the linear model of "
                   "the loss no longer holds. One direction, on a sample of rows."),
    "step_probe_init": ("Step probe along −∇L at θ₀", "The same probe at the initial θ, where the gradient is "
                        "larger and the loss surface steeper."),
    "double_well_momentum": ("GD against momentum on f(x) = x⁴ − 3x² + x", "From the one start in the title. "
                             "From other starts the outcome differs: see the basin map."),
    "double_well_basins": ("Which minimum each start and momentum ends in", "Each cell is one run of the toy "
                           "function; the star is the run drawn beside. Momentum finds the deep minimum only "
                           "from some starts."),
    "ravine_momentum": ("GD against momentum in an ill-conditioned ravine", "The step size is limited by the "
                        "steep direction, so GD crawls along the shallow one while momentum keeps its speed: "
                        "an advantage that does not depend on the start."),
    "input_gradient_maps_over_training": ("−∂L/∂W₁ from θ₀ to the trained θ", "The same units and batch, one "
                                          "row per moment of training, each row on its own colour scale (the "
                                          "gradient shrinks as the loss falls). Middle rows are re-trained from "
                                          "θ₀ with the model's recipe."),
    "input_gradient_maps": ("−∂L/∂W₁ per hidden unit", "Red: the next step raises the weight from that pixel; "
                            "blue: lowers it. A mean over the batch dominated by its few highest-loss rows (the "
                            "title gives their share), so at a trained θ a map may look like one digit. Dashed "
                            "grey: a dead unit."),
    "first_layer_weights": ("First-layer weights", "What each hidden unit responds to in the input, each unit "
                            "on its own colour scale."),
    "gradient_histograms": ("Gradient components per layer", "How many weights get how large a gradient, log "
                            "counts: most components are tiny, a few carry the step."),
    "top_moves": ("The weights the next step moves most", "Named by the units they join; the title sets the "
                  "first-order loss change beside the measured one."),
    "first_order": ("First-order prediction against the measured change", "Where the lines part the step is too "
                    "long for the linear model; a cross marks a step that raised the loss."),
    "layer_grad_norms": ("Per-layer gradient norms over the run", "From metrics.jsonl: a layer whose norm "
                         "collapses early has stopped learning."),
    "misclassified": ("Misclassified test images", "The first test images the model gets wrong, in test-set "
                      "order (not the worst ones), each with its true class, the prediction and its probability."),
}

#: Record key → column heading: the training records' labels (:data:`steepest.records.LABELS`), and the
#: keys only compare's summaries and explain's tables have.
COLUMNS = {
    **LABELS, "label": "run", "optimizer": "optimizer", "batch_size": "batch", "momentum": "momentum μ",
    "loss": "loss", "rows": "rows", "relative_error": "first order vs measured (relative)",
    "predicted_change": "first-order loss change −η‖∇L‖²", "measured_change": "measured loss change",
    "tuned": "lr chosen from", "time_ratio": "time ÷ fastest",
}


def _cell(key, value):
    """A value for a table cell: accuracies as percentages, tuning grids in words."""
    if value is None:
        return None
    if key.endswith("_acc") and isinstance(value, (int, float)):
        return f"{100 * value:.2f}%"
    if key == "tuned" and isinstance(value, dict):
        grid = ", ".join(f"{v:g}" for v in value.get("grid", []))
        return grid + (" (at the edge)" if value.get("at_edge") else "")
    return value


def _table(records, keys, caption=""):
    cols = [k for k in keys if any(r.get(k) is not None for r in records)]
    rows = [[_cell(k, r.get(k)) for k in cols] for r in records]
    return Table([COLUMNS.get(k, k.replace("_", " ")) for k in cols], rows, caption)


# ---------------------------------------------------------------- reading a directory

def _text(path: Path) -> str:
    """A side file's text: regular files only, bounded, undecodable bytes replaced (never a hang)."""
    return read_regular(path, ConfigError, "a text file", max_bytes=MAX_TEXT_BYTES).decode("utf-8", "replace")


def _json(text: str):
    """Parsed JSON, or None when the text is not JSON (or nested too deeply to be ours)."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def _real(v) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file, one a line; other lines (cut short by a kill) are skipped."""
    if not is_regular(path):
        return []
    rows = []
    for line in _text(Path(path)).splitlines():
        obj = _json(line.strip()) if line.strip() else None
        if isinstance(obj, dict):
            rows.append(obj)
    return rows


def _read_json(path: Path) -> dict | None:
    """A JSON object from ``path``, or None when it is missing, not a regular file or not an object."""
    if not is_regular(path):
        return None
    obj = _json(_text(path))
    return obj if isinstance(obj, dict) else None


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _curves(records: list[dict]) -> list[Image]:
    """Loss and accuracy against epochs from metrics.jsonl records."""
    from steepest.viz.common import new_figure

    recs = [r for r in records if _real(r.get("epoch"))]
    out = []
    for kind, ylabel, log, stem in (("loss", "loss", True, "loss_curve"), ("acc", "accuracy", False, "accuracy_curve")):
        def ok(v, log=log):  # numbers only; a log axis only positive ones
            return _real(v) and (v > 0 or not log)
        keys = [k for k in ("train", *evaluated_sets(recs)) if any(ok(r.get(f"{k}_{kind}")) for r in recs)]
        if not keys:
            continue
        fig = new_figure(6, 3.8)
        ax = fig.add_subplot()
        for k in keys:
            pts = [(r["epoch"], r[f"{k}_{kind}"]) for r in recs if ok(r.get(f"{k}_{kind}"))]
            ax.plot(*zip(*pts), marker="o", ms=3, label=k)
        if log:
            ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        title, note = EXPLAIN[stem]
        try:
            out.append(Image(_png(fig), title, note=note))
        except (ValueError, OverflowError):  # values matplotlib cannot lay out (an epoch of 1e308): no curve
            continue
    return out


def _kind(d: Path) -> str | None:
    """What wrote directory ``d``: ``"compare"``, ``"landscape"``, ``"explain"`` or None."""
    for marker, kind in (("summary.json", "compare"), ("landscape.json", "landscape"), ("explain.json", "explain")):
        if is_regular(d / marker):
            return kind
    name = d.name.lower()
    return next((k for k in ("compare", "landscape", "explain") if name.startswith(k)), None)


def _plots(d: Path) -> list[Image]:
    """The PNGs directly in ``d``, in the story's order (:data:`EXPLAIN`), then the rest by name."""
    order = {stem: i for i, stem in enumerate(EXPLAIN)}
    return [Image.from_file(p) for p in sorted((p for p in d.glob("*.png") if is_regular(p)),
                                                 key=lambda p: (order.get(p.stem, len(order)), p.name))]


def _machine_text(machine) -> list[Text]:
    return [Text(f"Timings in this section were measured on {machine}; seconds differ on other machines, "
                 "ratios between runs much less.")] if machine else []


def _model_sections(d: Path, model_info, records) -> list[Section]:
    """Summary (model, data, final metrics, the stop reason once, the machine), training, configuration."""
    sections = []
    summary = []
    meta = model_info[2] if model_info else {}
    if model_info:
        net = model_info[0]
        summary.append(Text(f"Model: {net.architecture}, {net.n_params:,} "
                            f"parameters, {net.dtype}."))
        ds = meta.get("dataset") or {}
        if ds.get("name"):
            counts = [f"{ds[k]:,} {w}" for k, w in (("n_train", "training"), ("n_val", "validation"),
                                                    ("n_test", "test")) if isinstance(ds.get(k), int) and ds[k]]
            summary.append(Text(f"Data: {ds['name']}" + (f", {' + '.join(counts)} samples" if counts else "") + "."))
    metrics = meta.get("metrics") or {}
    final = {k: v for k, v in metrics.items() if k not in ("stop_reason", "stop_message", "model")
             and not isinstance(v, (dict, list))}
    if final:
        summary.append(Table(["quantity", "value"], [[COLUMNS.get(k, k.replace("_", " ")), _cell(k, v)]
                                                     for k, v in final.items()], "Final metrics"))
    end = next((r for r in reversed(records) if r.get("stop_reason")), None) or metrics
    if end.get("stop_reason"):
        summary.append(Text(f"Stopped by {end['stop_reason']}" + (f": {end['stop_message']}."
                                                                  if end.get("stop_message") else ".")))
    env = meta.get("environment") or {}
    if env.get("blas_kernel") or env.get("cpu"):
        summary.append(Text(f"Trained on {env.get('cpu', 'an unrecorded CPU')} with NumPy {env.get('numpy', '?')}, "
                            f"BLAS kernel {env.get('blas_kernel') or 'unrecorded'}, {env.get('blas_threads') or '?'} "
                            "threads: the same seed gives the same θ, bit for bit, on the same kernel and threads."))
    if summary:
        sections.append(Section("Summary", summary))
    epochs = [r for r in records if "epoch" in r]
    if epochs:
        items = _curves(epochs) + [_table(epochs, evaluation_columns(evaluated_sets(epochs)),
                                          "Metrics per epoch (from metrics.jsonl)")]
        intro = ("How the loss and accuracy moved, epoch by epoch. ‖∇L‖ is over the whole training set; seconds "
                 "are each epoch's training time, evaluation excluded"
                 + (f", on {env['cpu']}." if env.get("cpu") else "."))
        sections.append(Section("Training", items, intro))
    if is_regular(d / "config.toml"):
        sections.append(Section("Configuration", [Pre(_text(d / "config.toml"))],
                                "The resolved options of the run; `steepest train --config` takes this file."))
    return sections


def _compare_section(d: Path, rel: str) -> Section:
    data = _read_json(d / "summary.json") or {}  # what is not of the shape compare writes is left out
    table = [r for r in data.get("table", []) if isinstance(r, dict)] if isinstance(data.get("table"), list) else []
    machine = data.get("machine")
    items = list(_machine_text(machine if isinstance(machine, str) else None))
    if table:
        budget = data.get("budget") if isinstance(data.get("budget"), dict) else {}
        budget = ", ".join(f"{v} {k}" for k, v in budget.items())
        key = "wall_seconds" if all(_real(r.get("wall_seconds")) for r in table) else "seconds"
        fastest = min((r[key] for r in table if _real(r.get(key)) and r[key] > 0), default=None)
        rows = [{**r, "time_ratio": f"{r[key] / fastest:.1f}×"} if fastest and _real(r.get(key))
                else r for r in table]
        items.append(_table(rows, ("label", "optimizer", "lr", "batch_size", "momentum", "tuned", "train_loss",
                                   "train_acc", "test_acc", "grad_norm", "steps", "samples", "time_ratio",
                                   "stop_reason"),
                            f"Optimizers from the same θ₀ (budget: {budget} per run; curves {data.get('eval', '')})"))
    return Section(f"Comparison of optimizers ({rel})", items + _plots(d),
                   "Several optimizers trained from the same initial θ under the same budget (steepest compare).")


def _landscape_section(d: Path, rel: str) -> Section:
    data = _read_json(d / "landscape.json") or {}
    items = []
    for key, at in (("step_probe", "θ*"), ("step_probe_init", "θ₀")):
        verdict = (data.get(key) or {}).get("verdict") if isinstance(data.get(key), dict) else None
        if verdict:
            items.append(Text(f"Step probe at {at}: {verdict}."))
    return Section(f"Loss landscape ({rel})", items + _plots(d),
                   "The loss seen through lines and planes of parameter space (steepest landscape). Every loss is "
                   "evaluated on a sample of training rows; each plot's title says how many.")


def _explain_section(d: Path, rel: str) -> Section:
    data = _read_json(d / "explain.json") or {}
    keys = ("loss", "lr", "rows", "grad_norm", "predicted_change", "measured_change", "relative_error")
    flat = [[COLUMNS.get(k, k.replace("_", " ")), data[k]] for k in keys if isinstance(data.get(k), (int, float))]
    items = [Table(["quantity", "value"], flat, f"The gradient at the {data.get('theta', 'θ')} on "
                                                f"{data.get('batch', 'a batch')}")] if flat else []
    if isinstance(data.get("dead_units"), list):
        items.append(Text(f"Dead units in the first hidden layer (silent on the whole batch): "
                          f"{len(data['dead_units'])}" + (f" — {', '.join(map(str, data['dead_units'][:20]))}"
                                                          if data["dead_units"] else "") + "."))
    return Section(f"The gradient's anatomy ({rel})", items + _plots(d),
                   "What the next gradient-descent step changes, weight by weight (steepest explain).")


def _misclassified_section(model_info, limit=32) -> Section | None:
    """A gallery of the first ``limit`` misclassified test images, when the model's dataset is at hand."""
    if not model_info:
        return None
    net, theta, meta = model_info
    name = (meta.get("dataset") or {}).get("name")
    shape = (meta.get("preprocessing") or {}).get("image_shape")
    if not name or not shape:
        return None
    from steepest.errors import SteepestError

    try:
        ds = _trained_on(meta, name)
    except (SteepestError, ImportError, OSError) as e:
        return Section("Misclassified test images", [Text(f"Not drawn: the test set of {name} is not at hand "
                                                          f"({str(e).splitlines()[0]}).")])
    if ds.X_test is None or ds.X_test.shape[1] != net.sizes[0]:
        return None
    P = net.predict_proba(theta, ds.X_test)
    pred = P.argmax(axis=1)
    wrong = [int(i) for i in (pred != ds.y_test).nonzero()[0]]
    return Section("Misclassified test images", [Text(f"{len(wrong):,} of {len(ds.y_test):,} test images are "
                                                      f"misclassified ({100 * len(wrong) / len(ds.y_test):.2f}%).")]
                   + ([_gallery(ds, wrong[:limit], pred, P, shape)] if wrong else []))


def _trained_on(meta, name):
    """The dataset the model was trained on (:func:`steepest.data.trained_data`: the user's file it records,
    never a named dataset that merely shares its stem), only if its samples are those the model records."""
    from steepest.data import is_user_file, load_dataset, load_file, matches_record, trained_data
    from steepest.errors import SteepestError

    given, labels = trained_data(meta)
    if not given:
        raise SteepestError(f"{name} is not a named dataset")
    ds = load_file(given, labels=labels) if is_user_file(given, labels) else load_dataset(given, download=False)
    if not matches_record(ds, meta):
        raise SteepestError(f"{given} no longer holds the samples the model was trained on")
    return ds


def _gallery(ds, rows, pred, P, shape) -> Image:
    from steepest.viz.common import new_figure

    cols = 8
    fig = new_figure(1.25 * cols, 1.45 * -(-len(rows) // cols))
    for j, i in enumerate(rows):
        ax = fig.add_subplot(-(-len(rows) // cols), cols, j + 1)
        ax.imshow(ds.X_test[i].reshape(shape), cmap="gray_r", interpolation="nearest")
        ax.set_title(f"#{i}: {ds.y_test[i]} → {pred[i]}\np {P[i, pred[i]]:.2f}", fontsize=7)
        ax.set_xticks([])
        ax.set_yticks([])
    title, note = EXPLAIN["misclassified"]
    return Image(_png(fig), title, note=note + " Each: #index, true → predicted, p of the prediction.")


def collect(directory) -> tuple[str, list[Section]]:
    """Title and sections for whatever ``directory`` holds (see the module docstring)."""
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(f"{d} is not a directory; give a run directory (from `steepest train`) or an "
                          "output directory of `steepest compare`, `landscape` or `explain`")
    model_info = None
    if is_regular(d / "model.safetensors"):
        from steepest.io import load_model

        model_info = load_model(d / "model.safetensors")
    records = read_jsonl(d / "metrics.jsonl") if is_regular(d / "metrics.jsonl") else []
    sections = _model_sections(d, model_info, records)
    builders = {"compare": _compare_section, "landscape": _landscape_section, "explain": _explain_section}
    found = [(d, ".")] if _kind(d) else []
    found += [(sub, sub.name) for sub in sorted(p for p in d.iterdir() if p.is_dir()) if _kind(sub)]
    order = {"compare": 0, "landscape": 1, "explain": 2}
    for sub, rel in sorted(found, key=lambda f: (order[_kind(f[0])], f[1])):
        sections.append(builders[_kind(sub)](sub, rel))
    gallery = _misclassified_section(model_info)
    if gallery is not None:
        sections.append(gallery)
    used = {sub for sub, _ in found}
    rest = [p for p in d.rglob("*.png") if p.parent not in used and is_regular(p)]
    if rest:
        rest.sort(key=lambda p: (len(p.relative_to(d).parts), str(p)))
        sections.append(Section("Other plots", [Image.from_file(p) for p in rest]))
    if not sections:
        raise ConfigError(f"{d} holds nothing to report (no config.toml, metrics.jsonl, model, summary.json "
                          "or plots); give the directory a steepest command wrote")
    return f"steepest report: {d.resolve().name}", sections


def write_report(directory, out=None) -> Path:
    """Write ``directory/report.html`` (or ``out``) for :func:`collect`'s sections, atomically; return its path."""
    from steepest.io import atomic_write

    title, sections = collect(directory)
    out = Path(out) if out is not None else Path(directory) / "report.html"
    atomic_write(out, build_html(title, sections, subtitle=str(Path(directory).resolve())))
    return out
