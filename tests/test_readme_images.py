"""The README's pictures: each one it shows exists, none lies unused, and each is named after what it shows."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_every_picture_the_readme_shows_exists_and_none_is_left_over():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"!\[[^\]]*\]\((docs/images/[^)]+)\)", readme))
    assert shown, "the README shows no pictures"
    on_disk = {str(p.relative_to(ROOT)) for p in (ROOT / "docs" / "images").glob("*.png")}
    assert shown <= on_disk, f"missing: {sorted(shown - on_disk)}"
    assert on_disk <= shown, f"not shown anywhere: {sorted(on_disk - shown)}"
    # the toy functions have nothing to do with MNIST: their files do not say it
    assert not [p for p in shown if "mnist" in p and ("well" in p or "ravine" in p or "minima" in p)]


def test_the_seeing_commands_write_where_the_pictures_come_from():
    """Each README section writes its own directory, so following the README in order never meets a
    directory that "already holds a trained model"."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    outs = re.findall(r"steepest train .*?--out (\S+)", readme, flags=re.S)
    assert len(outs) == len(set(outs)) >= 2, outs
    for line in re.findall(r"^steepest (?:train|compare) [^\n]*--dataset mnist[^\n]*$", readme, flags=re.M):
        assert "--fallback digits" in line, line
