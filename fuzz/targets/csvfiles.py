"""CSV files: load_file / load_csv on generated tables, ragged rows, odd numbers and bad bytes."""

from __future__ import annotations

import random
from pathlib import Path

import mutate
from targets.common import Case, check_dataset

NAME = "csv"

NUMBERS = ["0", "1", "2", "-1", "3.5", "1e3", "-0", "0.0", "1e-320", "nan", "NaN", "inf", "-inf",
           "Infinity", "1e999", "-1e999", "1e300", "9" * 40, "0x1p3", "1_000", "+5", ".5", "5.",
           " 7 ", "٣", "１２", "1,5", "1e", "--1", "", " ", "3.4028236e38", "2e308", "9223372036854775808",
           "18446744073709551616", "-9223372036854775809", "4.9e-324", "1.0000000001"]
WORDS = ["cat", "dog", "7a", "label", "x", "", " ", "\"quoted\"", "\"a,b\"", "\"line\nbreak\"",
         "é", "日本", "\t", "#", "'", "\"", "None", "true", "\x00", "a" * 200]
NEWLINES = ["\n", "\r\n", "\r"]


def _cell(r: random.Random, kind: str) -> str:
    if kind == "num":
        return str(r.choice([r.randint(0, 9), round(r.gauss(0, 10), 3), r.randint(-5, 300)]))
    return r.choice(NUMBERS) if r.random() < 0.6 else r.choice(WORDS)


def table(r: random.Random, d: str = ",") -> str:
    """A table with delimiter ``d``: mostly well formed, each part occasionally not."""
    n_cols = r.choice([1, 2, 3, 3, 5, 8, r.randint(2, 60)])
    n_rows = r.choice([0, 1, 2, 3, 5, 10, 40, r.randint(1, 300)])
    nl = r.choice(NEWLINES) if r.random() < 0.2 else "\n"
    label_col = r.randrange(n_cols)
    text_labels = r.random() < 0.25
    weird = r.choice([0.0, 0.0, 0.002, 0.02, 0.1])  # share of cells that are not plain numbers
    lines = []
    if r.random() < 0.5:
        names = [f"f{j}" for j in range(n_cols)]
        if r.random() < 0.7:
            names[label_col] = "label"
        if r.random() < 0.1:
            names[r.randrange(n_cols)] = r.choice(WORDS + NUMBERS)
        lines.append(d.join(names))
    for _ in range(n_rows):
        width = n_cols if r.random() >= weird else max(0, n_cols + r.choice([-2, -1, 1, 5]))
        cells = []
        for j in range(width):
            if j == label_col:
                cells.append(r.choice(["cat", "dog", "emu"]) if text_labels else str(r.randint(0, 4)))
                if r.random() < weird:
                    cells[-1] = _cell(r, "any")
            else:
                cells.append(_cell(r, "any") if r.random() < weird else _cell(r, "num"))
        lines.append(d.join(cells))
        if r.random() < weird:
            lines.append(r.choice(["", " ", d * n_cols, "#comment", "\x0c", " " * 3]))
    text = nl.join(lines) + (nl if r.random() < 0.8 else "")
    if r.random() < 0.05:
        text = "\ufeff" + text
    if r.random() < 0.01:
        text += "1" + d + "9" * r.choice([140000, 200000]) + nl  # past csv's field size limit
    return text


def _encode(r: random.Random, text: str) -> bytes:
    enc = r.choices(["utf-8", "latin-1", "utf-16", "cp1252"], [95, 2, 1, 2])[0]
    return text.encode(enc, "replace")


def _bad_bytes(r: random.Random, data: bytes) -> bytes:
    blob = r.choice([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xc0\xaf", b"\x00", b"\x80\x80",
                     b"\xef\xbb\xbf", b"\xf4\x90\x80\x80"])
    if r.random() < 0.3:  # late in the file: past the first buffer the reader decodes
        data = data + (b"1,2\n" * 3000 if r.random() < 0.5 else b"")
        i = len(data)
    else:
        i = r.randrange(len(data) + 1)
    return data[:i] + blob + data[i:]


def seeds() -> list[bytes]:
    r = random.Random(0)
    return [table(r).encode() for _ in range(30)] + [
        b"label,a,b\n0,1,2\n1,3,4\n", b"a,b,label\n1,2,cat\n3,4,dog\n", b"0,1.5\n1,2.5\n"]


def mutate_bytes(r: random.Random, data: bytes, pool) -> bytes:
    what = r.random()
    if what < 0.5:
        return _encode(r, table(r))
    if what < 0.7:
        return _bad_bytes(r, data)
    return mutate.havoc(r, data, pool)


def generate(r: random.Random, pool) -> Case:
    what, d = r.random(), r.choice([",", ",", ",", "\t", ";", " "])
    if what < 0.55:
        data = _encode(r, table(r, d))
    else:
        data, d = (_bad_bytes(r, r.choice(pool)) if what < 0.75 else mutate.havoc(r, r.choice(pool), pool)), ","
    if r.random() < 0.1:  # the wrong delimiter for the file
        d = r.choice([",", "\t", ";"])
    options = {}
    if d in (",", "\t") and r.random() < 0.8:
        how, suffix = "load_file", r.choice([".csv", ".txt"]) if d == "," else ".tsv"
    else:
        how, suffix = "load_csv", ".csv"
        options["delimiter"] = d
        if r.random() < 0.3:
            options["label_column"] = r.choice(["label", "f1", "nope", 0, 1, -1, 7, -9])
        if r.random() < 0.3:
            options["header"] = r.choice([True, False])
    return Case(data, how=how, suffix=suffix, options=options)


def prepare(case: Case, work: Path):
    from steepest.data import load_csv, load_file

    p = work / ("input" + case.suffix)
    p.write_bytes(case.data)
    if case.how == "load_file":
        return (lambda: load_file(p)), [p]
    return (lambda: load_csv(p, **case.options)), [p]


def check(result, case: Case):
    check_dataset(result)
