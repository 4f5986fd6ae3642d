"""The lab in a real browser: Debian's chromium driven by Playwright against the real server."""

import os
import shutil
import time
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="steepest lab needs the lab extra (starlette)")
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")

from labserver import Lab  # noqa: E402

CHROMIUM = os.environ.get("STEEPEST_CHROMIUM", "/usr/bin/chromium")
# The README's picture: written there only when asked (STEEPEST_UPDATE_DOCS=1), so a test run leaves the
# checkout as it found it; otherwise beside the test's other temporary files.
DOCS_SHOT = Path(__file__).resolve().parent.parent / "docs" / "lab.png"


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    if not shutil.which(CHROMIUM):
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")
    server = Lab("--dataset", "digits", "--hidden", "32", cwd=tmp_path_factory.mktemp("lab"))
    with sync_api.sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        except Exception as e:  # a browser that cannot start here is a reason to skip, stated
            server.stop()
            pytest.skip(f"chromium would not start: {e}")
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.goto(server.url)
        pg.server = server
        yield pg
        browser.close()
    server.stop()


def number(page, testid):
    text = page.get_by_test_id(testid).inner_text().strip().rstrip("%")
    return float(text) if text not in ("–", "") else None


def test_the_menus_are_the_registrys(page):
    """The page's menus are filled from GET /api/status (steepest.registry), the controls show the run's settings."""
    from steepest.lab.config import DEFAULTS, RACE_DEFAULTS
    from steepest.registry import ACTIVATIONS, INITS, OPTIMIZERS

    page.wait_for_function("() => document.getElementById('optimizer').value !== ''", timeout=15000)
    menu = lambda id: page.eval_on_selector(f"#{id}", "s => Array.from(s.options, o => o.value)")
    assert (menu("activation"), menu("init"), menu("optimizer")) == (list(ACTIVATIONS), list(INITS), list(OPTIMIZERS))
    assert menu("r0-opt") == list(OPTIMIZERS) and menu("budget") == ["steps", "samples", "seconds"]
    assert page.eval_on_selector("#r0-opt", "s => s.value") == RACE_DEFAULTS[0]["optimizer"]
    assert page.eval_on_selector("#optimizer", "s => s.value") == DEFAULTS["optimizer"]
    assert page.eval_on_selector("#activation", "s => s.value") == DEFAULTS["activation"]


def test_start_and_the_shown_loss_falls(page):
    page.get_by_test_id("start").click()
    page.wait_for_function("() => +document.querySelector('[data-testid=step]').textContent > 0", timeout=15000)
    first = number(page, "loss")
    page.wait_for_function(f"() => +document.querySelector('[data-testid=loss]').textContent < {first} * 0.5",
                           timeout=20000)
    assert number(page, "accuracy") > 50
    page.get_by_test_id("pause").click()
    time.sleep(0.6)
    s = number(page, "step")
    time.sleep(0.6)
    assert number(page, "step") == s


def test_a_control_change_shows_within_half_a_second(page):
    page.get_by_test_id("start").click()
    t = page.evaluate("""() => new Promise(done => {
        const el = document.getElementById('lr'); el.value = '0.0123';
        const t0 = performance.now(); el.dispatchEvent(new Event('change'));
        const look = () => document.getElementById('state').dataset.lr === '0.0123'
            ? done(performance.now() - t0) : requestAnimationFrame(look);
        look(); })""")
    page.get_by_test_id("pause").click()
    print(f"control change → first point with the new rate on the page: {t:.0f} ms")
    assert t <= 500


def test_draw_a_stroke_and_read_a_prediction(page):
    canvas = page.get_by_test_id("draw")
    canvas.scroll_into_view_if_needed()
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    for k in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * (0.15 + 0.07 * k))
    page.mouse.up()
    page.wait_for_function("() => /^[0-9]$/.test(document.querySelector('[data-testid=prediction]').textContent)",
                           timeout=20000)
    assert page.get_by_test_id("prediction").inner_text() in "0123456789"


def test_a_race_advances_both_curves(page, tmp_path):
    page.get_by_test_id("race").click()
    page.wait_for_function("() => document.querySelectorAll('#legend span').length === 2", timeout=30000)
    counts = "() => [...document.querySelectorAll('#legend span')].length"
    assert page.evaluate(counts) == 2
    page.wait_for_function("() => window.labState && window.labState().every(n => n >= 3)", timeout=45000)
    a = page.evaluate("() => window.labState()")
    time.sleep(1.0)
    b = page.evaluate("() => window.labState()")
    assert all(y > x for x, y in zip(a, b)), (a, b)
    # the loss surface comes by itself once there are paths (the button only recomputes it)
    page.wait_for_function("() => document.getElementById('surface-note').textContent.includes('loss on')", timeout=60000)
    # the GD racer's full-set ‖∇L‖ is drawn, and the legend says which line the ε rule tests
    assert "Thick dashed, with dots: ‖∇L‖ on the full training set" in page.inner_text("#grad-note")
    page.click("#surface")
    page.wait_for_function("() => document.getElementById('surface-note').textContent.includes('loss on')", timeout=60000)
    page.click("#basins")
    page.get_by_test_id("pause").click()
    shot = DOCS_SHOT if os.environ.get("STEEPEST_UPDATE_DOCS") == "1" else tmp_path / "lab.png"
    shot.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10000


def test_reset_shows_the_next_seed(page):
    seed = int(page.input_value("#seed"))
    page.get_by_test_id("reset").click()
    page.wait_for_function(f"() => document.getElementById('seed').value === '{seed + 1}'", timeout=15000)
    assert page.get_by_test_id("step").inner_text() == "0"


def test_maxout_from_the_menu_trains_and_names_each_piece(page):
    """Choosing maxout in the page rebuilds the network; its first-layer maps are titled unit and piece."""
    page.select_option("#activation", "maxout")
    page.wait_for_function("() => document.getElementById('activation').value === 'maxout'", timeout=15000)
    page.get_by_test_id("start").click()
    page.wait_for_function("() => { const c = document.querySelector('#anatomy canvas'); "
                           "return c && c.title.startsWith('unit 1, piece'); }", timeout=20000)
    titles = page.eval_on_selector_all("#anatomy canvas", "cs => cs.map(c => c.title)")
    page.get_by_test_id("pause").click()
    assert titles[:3] == ["unit 1, piece 1", "unit 1, piece 2", "unit 2, piece 1"]  # 2 pieces: the lab's default
