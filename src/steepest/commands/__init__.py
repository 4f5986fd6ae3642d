"""The subcommands of ``steepest``, one module each.

Each module has ``add_parser(subparsers)`` (returns its parser; the ``--help`` epilog holds an
example) and ``run(args) -> int`` (the exit status). Modules import only the standard library at
import time; NumPy-heavy and optional packages (tqdm, safetensors, pooch, PIL) are imported
inside ``run`` so that ``steepest --help`` is fast.
"""

#: Subcommand modules, in the order ``steepest --help`` lists them.
COMMANDS = ("train", "evaluate", "predict", "export", "gradcheck", "datasets", "compare", "landscape", "explain", "report",
            "recipes", "lab")
