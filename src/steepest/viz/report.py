"""One self-contained HTML page for a run or a comparison: configuration, metrics, plots, stop reason.

The page is built by a pure function, :func:`build_html` ``(title, sections) → str``, from
:class:`Section` objects holding :class:`Text`, :class:`Pre`, :class:`Table` and :class:`Image`
items. Images are embedded as ``data:`` URIs (PNG, base64), the style sheet is inline and there is
no script, so the file opens anywhere without network access.

:func:`collect` reads a directory written by ``steepest train`` (``config.toml``,
``metrics.jsonl``, ``model.safetensors``), ``steepest compare`` (``summary.json``),
``landscape`` or ``explain`` (``*.json``) — whatever is there — plus every ``*.png`` in it and
its sub-directories, and draws the training curves from ``metrics.jsonl`` when present.
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

#: largest file a report reads (an image to embed, a JSON or TOML file to show)
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
    """Image bytes (PNG by default) and a caption."""

    data: bytes
    caption: str = ""
    mime: str = "image/png"

    @classmethod
    def from_file(cls, path, caption=None) -> "Image":
        path = Path(path)
        mime = {".png": "image/png", ".svg": "image/svg+xml", ".jpg": "image/jpeg"}.get(path.suffix.lower())
        if mime is None:
            raise ConfigError(f"{path}: only .png, .svg and .jpg images can be embedded")
        data = read_regular(path, ConfigError, "an image file", max_bytes=MAX_IMAGE_BYTES)
        return cls(data, caption if caption is not None else _caption(path), mime)


@dataclass
class Section:
    title: str
    items: list = field(default_factory=list)


_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45}
h1{border-bottom:2px solid #1f77b4;padding-bottom:.2em}h2{margin-top:2em;color:#1f4e79}
table{border-collapse:collapse;margin:1em 0;font-size:.9em}th,td{border:1px solid #ccc;padding:.25em .6em;
text-align:right}th{background:#eef3f8}td:first-child,th:first-child{text-align:left}
caption{caption-side:top;text-align:left;font-weight:600;padding:.3em 0}
figure{margin:1.2em 0;display:inline-block;vertical-align:top}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}pre{background:#f6f8fa;padding:.8em;overflow-x:auto;font-size:.85em}
.meta{color:#666;font-size:.9em}
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
        return (f'<figure><img src="{src}" alt="{e(item.caption)}">'
                f"<figcaption>{e(item.caption)}</figcaption></figure>")
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
    for s in sections:
        parts.append(f"<section><h2>{e(s.title)}</h2>")
        parts += [_item_html(it) for it in s.items]
        parts.append("</section>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


# ---------------------------------------------------------------- reading a directory

_CAPTIONS = {
    "loss_vs_epochs": "Training loss against epochs", "loss_vs_samples": "Training loss against samples processed",
    "loss_vs_seconds": "Training loss against seconds", "grad_norm_vs_steps": "Gradient norm against steps",
    "test_accuracy": "Test accuracy", "step_loss": "Per-step loss", "gradient_noise": "Gradient noise",
    "line_1d": "Loss on the line θ₀ → θ*", "plane_contour": "Loss on a random plane around θ* (contours)",
    "plane_surface": "Loss on a random plane around θ* (surface)",
    "trajectories": "Optimizer paths on their PCA plane",
    "step_probe": "Step probe along −∇L", "minima_momentum": "Local minima: GD against momentum",
    "input_gradient_maps": "−∂L/∂W of the first layer, per hidden unit",
    "first_layer_weights": "First-layer weights",
    "gradient_histograms": "Gradient components per layer", "top_moves": "The largest moves of the next step",
    "first_order": "First-order prediction against the measured loss change",
    "layer_grad_norms": "Per-layer gradient norms over the run",
}


def _caption(path: Path) -> str:
    return _CAPTIONS.get(path.stem, path.stem.replace("_", " "))


def _text(path: Path) -> str:
    """A side file's text: regular files only, bounded, undecodable bytes replaced (never a hang)."""
    return read_regular(path, ConfigError, "a text file", max_bytes=MAX_TEXT_BYTES).decode("utf-8", "replace")


def _json(text: str):
    """Parsed JSON, or None when the text is not JSON (or nested too deeply to be ours)."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        return None


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file; lines that are not JSON objects are skipped."""
    rows = []
    for line in _text(Path(path)).splitlines():
        line = line.strip()
        if line:
            obj = _json(line)  # None: a line cut short by an interrupted run
            if isinstance(obj, dict):
                rows.append(obj)
    return rows


def _real(v) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    return buf.getvalue()


def _curves(records: list[dict]) -> list[Image]:
    """Loss and accuracy against epochs from metrics.jsonl records."""
    from steepest.viz.common import new_figure

    recs = [r for r in records if _real(r.get("epoch"))]
    out = []
    for kind, ylabel, log in (("loss", "loss", True), ("acc", "accuracy", False)):
        def ok(v):  # numbers only; a log axis only positive ones
            return _real(v) and (v > 0 or not log)
        keys = [k for k in ("train", "val", "test") if any(ok(r.get(f"{k}_{kind}")) for r in recs)]
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
        try:
            out.append(Image(_png(fig), f"{ylabel.capitalize()} per epoch (from metrics.jsonl)"))
        except (ValueError, OverflowError):  # values matplotlib cannot lay out (an epoch of 1e308): no curve
            continue
    return out


_METRIC_COLS = ("epoch", "step", "train_loss", "train_acc", "val_loss", "val_acc", "test_loss", "test_acc",
                "grad_norm", "lr", "samples", "seconds")


def _comparison(data) -> Table | None:
    """The table of a ``summary.json`` written by ``steepest compare`` (None if it is not one)."""
    if not isinstance(data, dict) or not isinstance(data.get("table", []), list):
        return None
    table = [r for r in data.get("table", []) if isinstance(r, dict)]
    cols = [c for c in ("label", "optimizer", "lr", "batch_size", "train_loss", "train_acc", "test_acc",
                        "grad_norm", "steps", "epochs", "samples", "seconds", "stop_reason")
            if any(c in r for r in table)]
    budget = data.get("budget")
    budget = ", ".join(f"{v} {k}" for k, v in budget.items()) if isinstance(budget, dict) else ""
    return Table(cols, table, f"Optimizers compared from the same θ₀ (budget: {budget}; "
                              f"curves {_fmt(data.get('eval', ''))})")


def _summary(d: Path, records, skipped) -> list:
    """Model, final metrics, comparison table and stop reason."""
    summary, meta = [], {}
    model = d / "model.safetensors"
    if is_regular(model):
        from steepest.io import load_model

        net, _, meta = load_model(model)
        summary.append(Text(f"Model: {'-'.join(map(str, net.sizes))} {net.activation}, "
                            f"{net.n_params:,} parameters, {net.dtype}."))
        metrics = meta.get("metrics") or {}
        if metrics:
            summary.append(Table(["metric", "value"], [[k, v] for k, v in metrics.items()], "Final metrics"))
    stop = next((r.get("stop_reason") for r in reversed(records) if r.get("stop_reason")), None)
    if stop is None:
        stop = (meta.get("metrics") or {}).get("stop_reason")
    if is_regular(d / "summary.json"):
        table = _comparison(_json(_text(d / "summary.json")))
        if table is None:
            skipped.append("summary.json (not the JSON object `steepest compare` writes)")
        else:
            summary.append(table)
    if stop:
        summary.append(Text(f"Stop reason: {_fmt(stop)}."))
    return summary


def _images(d: Path, skipped) -> list[Section]:
    """Every regular ``*.png`` file under ``d``, grouped by sub-directory, in the story's order."""
    order = {stem: i for i, stem in enumerate(_CAPTIONS)}  # the story's order, then the rest by name
    images = sorted((p for p in d.rglob("*.png") if is_regular(p)),
                    key=lambda p: (len(p.relative_to(d).parts), str(p.parent), order.get(p.stem, len(order)), p.name))
    groups: dict[str, list] = {}
    for p in images:
        rel = p.parent.relative_to(d)
        try:
            image = Image.from_file(p)
        except ConfigError:
            skipped.append(f"{p.relative_to(d)} (larger than {MAX_IMAGE_BYTES // 2**20} MiB)")
            continue
        groups.setdefault("Plots" if rel == Path(".") else f"Plots: {rel}", []).append(image)
    return [Section(title, items) for title, items in groups.items()]


def collect(directory) -> tuple[str, list[Section]]:
    """Title and sections for whatever ``directory`` holds (see the module docstring).

    Side files that cannot be shown (not UTF-8 JSON, the wrong shape, not regular files) are listed
    in a last section, "Not shown", instead of stopping the report.
    """
    d = Path(directory)
    if not d.is_dir():
        raise ConfigError(f"{d} is not a directory; give a run directory (from `steepest train`) or an "
                          "output directory of `steepest compare`, `landscape` or `explain`")
    sections: list[Section] = []
    skipped: list[str] = []
    records = read_jsonl(d / "metrics.jsonl") if is_regular(d / "metrics.jsonl") else []
    summary = _summary(d, records, skipped)
    if summary:
        sections.append(Section("Summary", summary))
    if is_regular(d / "config.toml"):
        sections.append(Section("Configuration", [Pre(_text(d / "config.toml"))]))
    if records:
        cols = [c for c in _METRIC_COLS if any(r.get(c) is not None for r in records)]
        sections.append(Section("Metrics per epoch", [Table(cols, [r for r in records if "epoch" in r])]
                                + _curves(records)))
    for name in sorted(p.name for p in d.glob("*.json") if p.name != "summary.json" and is_regular(p)):
        data = _json(_text(d / name))
        if not isinstance(data, dict):
            skipped.append(f"{name} (not a JSON object)")
            continue
        flat = [[k, v] for k, v in data.items() if not isinstance(v, (list, dict))]
        if flat:
            sections.append(Section(f"Numbers from {name}", [Table(["quantity", "value"], flat)]))
    sections += _images(d, skipped)
    if not sections:
        raise ConfigError(f"{d} holds nothing to report (no config.toml, metrics.jsonl, model, summary.json "
                          "or plots); give the directory a steepest command wrote")
    if skipped:
        sections.append(Section("Not shown", [Text(f) for f in skipped]))
    return f"steepest report: {d.resolve().name}", sections


def write_report(directory, out=None) -> Path:
    """Write ``directory/report.html`` (or ``out``) for :func:`collect`'s sections; return its path.

    Written by :func:`steepest.io.atomic_write`: a full disk leaves the previous report whole.
    """
    from steepest.io import atomic_write

    out = Path(out) if out is not None else Path(directory) / "report.html"
    if out.is_dir():
        raise ConfigError(f"--out {out} is a directory; give the path of the HTML file to write")
    title, sections = collect(directory)
    return atomic_write(out, build_html(title, sections, subtitle=str(Path(directory).resolve())))
