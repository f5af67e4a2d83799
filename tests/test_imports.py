"""Every module imports alone: no import cycle hides behind the order a package's
``__init__`` happens to use. (``lint-imports`` checks the layers themselves.)"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import distilabel_nb

PACKAGE = pathlib.Path(distilabel_nb.__file__).parent

# Each module is imported after forgetting every distilabel_nb module imported before,
# so it loads its own dependencies in its own order (third-party packages stay loaded:
# a fresh interpreter per module would take a minute for the same check).
CHECK = """
import importlib, sys, traceback
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m.split(".")[0] == "distilabel_nb"]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ":\\n" + traceback.format_exc())
print("\\n".join(failed))
sys.exit(1 if failed else 0)
"""


def modules() -> list[str]:
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def test_every_module_imports_alone() -> None:
    names = modules()
    assert "distilabel_nb.engine.executor" in names and "distilabel_nb.steps.base" in names
    done = subprocess.run([sys.executable, "-c", CHECK, *names], capture_output=True,
                          text=True, timeout=240, env=os.environ.copy())
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_lower_layer_alone_does_not_load_the_upper_ones() -> None:
    code = ("import sys, distilabel_nb.steps.base, distilabel_nb.cache.admin; "
            "print(sorted(m for m in sys.modules if m.startswith(('distilabel_nb.pipeline', "
            "'distilabel_nb.engine', 'distilabel_nb.notebook.widget'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == "[]"
