"""Every notebook in notebooks/ runs top to bottom in a fresh python3 kernel."""

from __future__ import annotations

import os
import pathlib
from typing import Any

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

NOTEBOOKS = sorted((pathlib.Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
REPO = pathlib.Path(__file__).parent.parent


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The kernel inherits the environment: the repo first on the path, the cache private.
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    notebook = nbformat.read(str(path), as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=180, kernel_name="python3",
                                     resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    errors = [output for cell in notebook.cells if cell.cell_type == "code"
              for output in cell.get("outputs", []) if output.get("output_type") == "error"]
    assert not errors, errors
    if path.stem == "quickstart":
        _each_graph_keeps_its_run(notebook)


def _statuses(svg: str) -> dict[str, str]:
    import re

    return dict(re.findall(r'data-step="([^"]+)" data-status="([^"]+)"', svg))


def _each_graph_keeps_its_run(notebook: Any) -> None:
    """Section 3's graph still shows section 3's partial hit after section 4 ran the
    pipeline again (the saved notebook agrees with its text); section 5 compares."""
    pictures = {}
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            svg = output.get("data", {}).get("image/svg+xml")
            if svg and cell.source.lstrip().startswith(("%%pipeline", "looking_back =")):
                pictures.setdefault(cell.source.split("\n")[0], []).append(_statuses(svg))
    runs = pictures["%%pipeline quickstart --cache-dir {CACHE}"]
    assert runs[0] == {"load": "miss", "prompt": "miss", "answer": "miss",
                       "count_words": "miss"}
    assert runs[1] == dict.fromkeys(runs[0], "hit")
    assert runs[2] == {"load": "hit", "prompt": "miss", "answer": "miss", "count_words": "hit"}
    (compared,) = pictures["looking_back = CacheGraph(pipeline)"]
    assert compared == {"load": "same", "prompt": "changed", "answer": "changed",
                        "count_words": "same"}
