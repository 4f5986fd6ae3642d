"""The shape of the code: a pure core, a thin shell, short functions."""

import ast
import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "steepest"
CORE = ["network", "activations", "losses", "init", "optim", "schedules", "stopping", "batches", "step",
        "events", "listeners", "records", "loop", "finite_diff", "metrics", "registry", "io", "errors"]


def test_no_function_in_src_is_longer_than_80_lines():
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > 80:
                    long.append(f"{path.relative_to(SRC)}:{node.lineno} {node.name} ({n} lines)")
    assert not long, "split these: " + ", ".join(long)


def test_the_core_imports_nothing_from_the_shell():
    code = ("import json, sys\n" + "".join(f"import steepest.{m}\n" for m in CORE) +
            "print(json.dumps(sorted(sys.modules)))")
    mods = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                     check=True).stdout)
    shell = [m for m in mods if m.startswith(("steepest.commands", "steepest.cli", "steepest.viz",
                                             "steepest.data.fetch", "steepest.lab", "matplotlib", "tqdm",
                                             "starlette", "uvicorn", "mpi4py", "sklearn", "onnx"))]
    assert shell == []


def test_train_is_a_thin_wrapper_over_the_loop_parts():
    tree = ast.parse((SRC / "loop.py").read_text())
    (fn,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train"]
    assert fn.end_lineno - fn.lineno + 1 <= 60
