"""steepest.viz.report: the pure HTML builder, reading directories, and rendering in headless Chromium."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import steepest
from steepest.errors import ConfigError
from steepest.viz.common import new_figure, save_figure
from steepest.viz.report import Image, Pre, Section, Table, Text, build_html, collect, write_report

PNG_1PX = bytes.fromhex("89504e470d0a1a0a0000000d4948445200000001000000010806000000"
                        "1f15c4890000000d49444154789c63f8cfc0f01f0005000201a0e9f2e70000000049454e44ae426082")


def _sections():
    return [Section("Summary", [Text("loss < 1 & <script>alert(1)</script>"),
                                Table(["name", "value"], [["loss", 0.1234567], ["acc", None]], "Final"),
                                Table(["a", "b"], [{"a": 1, "b": float("nan")}])]),
            Section("Config", [Pre("[train]\nlr = 0.05\n")]),
            Section("Plots", [Image(PNG_1PX, "one pixel")])]


def test_build_html_is_pure_and_self_contained():
    page = build_html("Run <1>", _sections(), subtitle="somewhere")
    assert page == build_html("Run <1>", _sections(), subtitle="somewhere")
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<title>Run &lt;1&gt;</title>" in page
    assert "<script>" not in page and "&lt;script&gt;" in page          # text is escaped
    assert "data:image/png;base64," in page and "<caption>Final</caption>" in page
    assert "0.1235" in page and "—" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page)          # nothing fetched from a network
    assert "http://" not in page and "https://" not in page
    with pytest.raises(ConfigError):
        build_html("x", [Section("bad", [object()])])
    # a table of contents whose every link lands on a section
    links = re.findall(r'<a href="#(s\d+)">([^<]*)</a>', page)
    assert [t for _, t in links] == ["Summary", "Config", "Plots"]
    assert all(f'<section id="{i}">' in page for i, _ in links)
    assert "<nav>" not in build_html("one", _sections()[:1])          # one section needs no contents


def _fake_run_dir(path):
    """A run directory as `steepest train` writes it, plus a plot in a sub-directory."""
    from steepest.io import save_model

    path.mkdir()
    net = steepest.MLP([4, 3, 2])
    save_model(path / "model.safetensors", net, net.init(seed=0),
               {"metrics": {"test_acc": 0.5, "stop_reason": "max_epochs"}, "seed": 0})
    (path / "config.toml").write_text('dataset = "digits"\nlr = 0.05\noptimizer = "momentum"\n')
    recs = [{"epoch": e, "step": 10 * e, "train_loss": 1.0 / e, "train_acc": 0.5 + 0.1 * e,
             "test_loss": 1.2 / e, "test_acc": 0.4 + 0.1 * e, "grad_norm": 0.5 / e, "lr": 0.05,
             "samples": 100 * e, "seconds": 0.01} for e in (1, 2, 3)]
    (path / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs) + '{"epoch": 4, "tra')
    fig = new_figure(3, 2)
    fig.add_subplot().plot([0, 1], [1, 0])
    save_figure(fig, path / "landscape", "line_1d")
    return path


def test_collect_run_dir(tmp_path):
    d = _fake_run_dir(tmp_path / "run")
    title, sections = collect(d)
    assert title == "steepest report: run"
    titles = [s.title for s in sections]
    assert titles == ["Summary", "Training", "Configuration", "Loss landscape (landscape)"]
    summary = sections[0].items
    assert any(isinstance(i, Text) and i.text == "Stopped by max_epochs." for i in summary)
    training = sections[1].items
    table = next(i for i in training if isinstance(i, Table))
    assert [r[0] for r in table.rows] == [1, 2, 3]                         # the cut-off line is skipped
    assert table.columns[:4] == ["epoch", "step", "train loss", "train accuracy"]
    assert table.rows[0][3] == "60.00%"
    assert sum(isinstance(i, Image) for i in training) == 2                # loss and accuracy curves
    line = sections[3].items[0]
    assert line.caption == "Loss on the straight line θ₀ → θ*" and "α = 0 is the initial θ" in line.note
    out = write_report(d)
    assert out == d / "report.html"
    page = out.read_text()
    assert page.count("<img ") == 3
    assert page.count("max_epochs") == 1                                   # the stop reason, once
    for raw in ("train_loss", "grad_norm", "test_acc", "stop_reason"):     # words, not keys
        assert raw not in page
    assert "<figcaption><b>Loss on the straight line θ₀ → θ*</b><br>α = 0" in page


def test_collect_comparison_dir(tmp_path):
    (tmp_path / "summary.json").write_text(json.dumps(
        {"budget": {"epochs": 3}, "eval": "on all 10 training samples", "machine": "a test CPU, some BLAS",
         "table": [{"label": "GD", "lr": 0.5, "batch_size": "full", "train_loss": 0.5, "test_acc": 0.25,
                    "seconds": 2.0, "stop_reason": "max_epochs"},
                   {"label": "SGD B=4", "lr": 0.1, "batch_size": 4, "momentum": None, "train_loss": 0.4,
                    "test_acc": 0.5, "seconds": 1.0, "stop_reason": "max_epochs",
                    "tuned": {"grid": [0.05, 0.1, 0.2], "at_edge": False}}], "runs": []}))
    _, sections = collect(tmp_path)
    assert [s.title for s in sections] == ["Comparison of optimizers (.)"]
    machine, table = sections[0].items[:2]
    assert "a test CPU, some BLAS" in machine.text
    assert table.columns == ["run", "learning rate", "batch", "lr chosen from", "train loss", "test accuracy",
                             "time ÷ fastest", "stopped by"]
    assert table.rows[0] == ["GD", 0.5, "full", None, 0.5, "25.00%", "2.0×", "max_epochs"]
    assert table.rows[1][3] == "0.05, 0.1, 0.2" and "3 epochs per run" in table.caption


def test_a_run_with_its_analyses_is_one_page_in_order(tmp_path):
    d = _fake_run_dir(tmp_path / "run")
    for sub, marker in (("explain", "explain.json"), ("cmp", "summary.json")):
        (d / sub).mkdir()
        (d / sub / marker).write_text(json.dumps({"loss": 0.25, "lr": 0.1, "dead_units": [3, 5], "table": []}))
        fig = new_figure(3, 2)
        fig.add_subplot().plot([0, 1], [1, 0])
        save_figure(fig, d / sub, "top_moves" if sub == "explain" else "step_loss")
    (d / "landscape" / "landscape.json").write_text(json.dumps({"step_probe": {"verdict": "lr 0.05 overshoots"}}))
    (d / "landscape" / "broken.json").write_text("{not json")
    titles = [s.title for s in collect(d)[1]]
    assert titles == ["Summary", "Training", "Configuration", "Comparison of optimizers (cmp)",
                      "Loss landscape (landscape)", "The gradient's anatomy (explain)"]
    page = write_report(d).read_text()
    assert "Step probe at θ*: lr 0.05 overshoots." in page and "Dead units in the first hidden layer" in page
    assert page.count("<img ") == 5


def test_collect_refuses_empty_and_missing(tmp_path):
    with pytest.raises(ConfigError, match="nothing to report"):
        collect(tmp_path)
    with pytest.raises(ConfigError, match="not a directory"):
        collect(tmp_path / "nope")


# ---------------------------------------------------------------- headless Chromium

def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (Debian: apt-get install chromium)")


def _run_chromium(tmp_path, url, *args):
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
           "--v=0", *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=180)


def _console(stderr):
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.fixture(scope="module")
def rendered_report(tmp_path_factory):
    d = _fake_run_dir(tmp_path_factory.mktemp("report") / "run")
    return write_report(d)


def test_report_renders_in_chromium_without_console_errors(rendered_report, tmp_path):
    shot = tmp_path / "shot.png"
    proc = _run_chromium(tmp_path, rendered_report.resolve().as_uri(), f"--screenshot={shot}",
                         "--window-size=1200,2000", "--hide-scrollbars")
    assert shot.is_file(), proc.stderr[-2000:]
    assert _console(proc.stderr) == []
    from PIL import Image as PILImage

    with PILImage.open(shot) as im:
        pixels = np.asarray(im.convert("RGB"))
    assert pixels.shape[:2] == (2000, 1200)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50           # not blank: text, tables, plots
    assert (pixels.reshape(-1, 3) != pixels[0, 0]).any(axis=1).mean() > 0.02


def test_report_images_load_in_chromium(rendered_report, tmp_path):
    """A copy of the page with a probe script: every embedded image decodes to a real size."""
    probe = tmp_path / "probe.html"
    script = ("<script>window.addEventListener('load',()=>{const im=[...document.images];"
              "console.log('IMAGES '+im.length+' '+im.filter(i=>i.complete&&i.naturalWidth>0).length);"
              "console.log('HEADINGS '+document.querySelectorAll('h2').length);"
              "const a=[...document.querySelectorAll('nav a')];"
              "console.log('LINKS '+a.length+' '+a.filter(x=>document.querySelector(x.getAttribute('href'))).length)"
              "})</script>")
    probe.write_text(rendered_report.read_text().replace("</body>", script + "</body>"))
    proc = _run_chromium(tmp_path, probe.as_uri(), "--dump-dom")
    logs = "\n".join(_console(proc.stderr))
    m = re.search(r'"IMAGES (\d+) (\d+)"', logs)
    assert m, proc.stderr[-2000:]
    assert int(m.group(1)) == int(m.group(2)) == 3
    assert '"HEADINGS 4"' in logs and '"LINKS 4 4"' in logs           # every contents link has its section
    assert "<h1>steepest report: run</h1>" in proc.stdout
