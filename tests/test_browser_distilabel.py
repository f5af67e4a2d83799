"""The cache graph of a pipeline built from distilabel's own classes, in a real JupyterLab
driven by headless Chromium: miss, hit, then a changed parameter named in the reason; no
api key in the page. Screenshots land in ``test-artifacts/lab-distilabel-*.png``."""

from __future__ import annotations

import functools
import pathlib
import shutil

import pytest

from tests.browser_helpers import JupyterServer, launch_chromium, write_notebook
from tests.test_browser import (
    ARTIFACTS,
    _run_all,
    _shoot,
    _status_map,
    _wait_statuses,
    open_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

DISTILABEL_CELL = '''%%pipeline distilabel-demo --cache-dir {cache}
from distilabel.models import OpenAILLM
from distilabel.steps import LoadDataFromDicts
from distilabel.steps.tasks import TextGeneration

load = LoadDataFromDicts(name="load_data_from_dicts_0",
                         data=[{{"instruction": f"question number {{i}}"}} for i in range(6)])
generate = TextGeneration(name="text_generation_0", llm=OpenAILLM(
    model="test-model", base_url="{base_url}", max_retries=0,
    generation_kwargs={{"temperature": {temperature}}}))
load >> generate
'''

DISTILABEL_STEPS = ["load_data_from_dicts_0", "text_generation_0"]


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
@pytest.mark.skipif(shutil.which("dot") is None, reason="needs graphviz's dot")
def test_distilabel_pipeline_graph_in_lab(tmp_path: pathlib.Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """distilabel's own LoadDataFromDicts >> TextGeneration(OpenAILLM) in a ``%%pipeline``
    cell, in JupyterLab only: miss, hit, then a changed temperature misses the task with
    the parameter named, while the loader hits; the api key (from the kernel's
    environment, as distilabel reads it) is nowhere in the page."""
    pytest.importorskip("playwright")
    pytest.importorskip("jupyterlab")
    pytest.importorskip("distilabel")
    from tests.distilabel_helpers import API_KEY
    from tests.openai_server import OpenAIServer

    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)   # the kernel inherits the server's env
    root = tmp_path / "root"
    root.mkdir()
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with OpenAIServer() as llm_server, \
            JupyterServer(root, tmp_path / "home", "lab") as server, \
            launch_chromium() as browser:
        cell = functools.partial(DISTILABEL_CELL.format, cache=tmp_path / "cache",
                                 base_url=llm_server.base_url)
        write_notebook(root / "distilabel.ipynb",
                       ["%load_ext distilabel_nb", cell(temperature=0.7)])
        page = open_notebook(browser, server, "distilabel.ipynb", "lab", errors)

        # 1. First run: both of distilabel's steps compute; the server answered 6 prompts.
        _run_all(page)
        _wait_statuses(page, dict.fromkeys(DISTILABEL_STEPS, "miss"))
        assert _status_map(page) == dict.fromkeys(DISTILABEL_STEPS, "miss")
        assert llm_server.count == 6
        assert llm_server.auth_headers[0] == f"Bearer {API_KEY}"   # the key was in use
        _shoot(page, "lab-distilabel-first-run.png")

        # 2. Identical re-run: both hit, nothing sent to the server.
        _run_all(page)
        _wait_statuses(page, dict.fromkeys(DISTILABEL_STEPS, "hit"))
        assert llm_server.count == 6
        _shoot(page, "lab-distilabel-full-hit.png")

        # 3. The cell edited in the page: another temperature. The task misses, and says
        # why; the loader hits.
        page.evaluate("""(source) => window.jupyterapp.shell.currentWidget.content
            .widgets[1].model.sharedModel.setSource(source)""", cell(temperature=0.2))
        _run_all(page)
        _wait_statuses(page, {"load_data_from_dicts_0": "hit", "text_generation_0": "miss"})
        assert llm_server.count == 12
        task = page.locator('.dnb-root g[data-step="text_generation_0"]')
        reason = "llm.generation_kwargs.temperature changed 0.7 -> 0.2"
        assert reason in (task.locator("title").text_content() or "")
        _shoot(page, "lab-distilabel-changed-temperature.png")
        task.click()    # the side panel names the step and the reason
        page.wait_for_selector(".dnb-panel .dnb-panel-name:text-is('text_generation_0')",
                               timeout=10_000)
        assert reason in page.locator(".dnb-panel").inner_text()
        _shoot(page, "lab-distilabel-panel.png")
        html = page.content()
        page.close()

    assert "text_generation_0" in html and API_KEY not in html
    assert not errors, "JavaScript errors in the page:\n" + "\n".join(errors)
