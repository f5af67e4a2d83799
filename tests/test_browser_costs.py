"""The graph's money views in a real JupyterLab, driven by headless Chromium: a plan with
an LLM step's estimate (node line and side panel), and a step waiting for its offline
batch job. Screenshots land in ``test-artifacts/lab-costs-*.png``."""

from __future__ import annotations

import pathlib
import shutil

import pytest

from tests.browser_helpers import JupyterServer, launch_chromium, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

ARTIFACTS = pathlib.Path(__file__).parent.parent / "test-artifacts"

SERVER_CELL = "from tests.openai_server import OpenAIServer\nserver = OpenAIServer().start()"
BODY = '''
from distilabel_nb.llms import OpenAILLM
from distilabel_nb.steps import LoadDataFromDicts
from distilabel_nb.steps.tasks import TextGeneration
load = LoadDataFromDicts(name="load", data=[{{"instruction": f"say {{i}}"}} for i in range(20)])
gen = TextGeneration(name="gen", llm=OpenAILLM(
    model="m", base_url=server.base_url, api_key="k", price_per_million_tokens=2.0,
    use_offline_batch_generation={offline}))
load >> gen
'''
PLAN_CELL = "%%pipeline plan-demo --cache-dir {cache} --plan" + BODY.replace("{offline}", "False")
WAIT_CELL = "%%pipeline wait-demo --cache-dir {cache}" + BODY.replace("{offline}", "True")


def _node_text(page, index: int, step: str) -> str:  # type: ignore[no-untyped-def]
    return page.locator(".dnb-root").nth(index).locator(
        f'g[data-step="{step}"]').text_content() or ""


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
@pytest.mark.skipif(shutil.which("dot") is None, reason="needs graphviz's dot")
def test_plan_costs_and_waiting_batch_in_lab(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("playwright")
    pytest.importorskip("jupyterlab")
    pytest.importorskip("openai")
    root = tmp_path / "root"
    root.mkdir()
    cache = tmp_path / "cache"
    write_notebook(root / "costs.ipynb", ["%load_ext distilabel_nb", SERVER_CELL,
                                          PLAN_CELL.format(cache=cache),
                                          WAIT_CELL.format(cache=cache)])
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with JupyterServer(root, tmp_path / "home", "lab") as server, launch_chromium() as browser:
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.on("pageerror", lambda error: errors.append(f"pageerror: {error}"))
        page.goto(server.notebook_url("costs.ipynb"), wait_until="domcontentloaded")
        page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')",
                               timeout=60_000)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_function("""() => { const w = window.jupyterapp.shell.currentWidget;
            const k = w && w.sessionContext && w.sessionContext.session &&
                      w.sessionContext.session.kernel;
            return k && k.connectionStatus === 'connected' && k.status === 'idle'; }""",
                               timeout=60_000)
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")

        # 1. The plan: the LLM node says what it would send and cost.
        page.wait_for_function("document.querySelectorAll('.dnb-root').length >= 1",
                               timeout=90_000)
        page.wait_for_function(
            """() => { const g = document.querySelector('.dnb-root g[data-step="gen"]');
                       return g && g.textContent.includes('sends 20'); }""", timeout=60_000)
        assert "~$" in _node_text(page, 0, "gen")
        page.locator(".dnb-root").nth(0).locator('g[data-step="gen"]').click()
        page.wait_for_selector(".dnb-panel .dnb-panel-name:text-is('gen')", timeout=10_000)
        panel = page.locator(".dnb-root").nth(0).locator(".dnb-panel").inner_text()
        assert "plan: would send" in panel and "sends 20 rows, about" in panel
        page.mouse.move(1, 1)
        page.locator(".dnb-root").nth(0).screenshot(path=str(ARTIFACTS / "lab-costs-plan.png"))

        # 2. The offline batch job is in progress: the step waits, with its progress.
        page.wait_for_function(
            """() => { const roots = document.querySelectorAll('.dnb-root');
                       if (roots.length < 2) return false;
                       const g = roots[1].querySelector('g[data-step="gen"]');
                       return g && g.textContent.includes('waiting'); }""", timeout=90_000)
        assert "batch 0/20" in _node_text(page, 1, "gen")
        page.wait_for_function("""() => document.querySelector('.jp-Notebook')
            .textContent.includes('OfflineBatchPendingError')""", timeout=60_000)
        page.mouse.move(1, 1)
        page.locator(".dnb-root").nth(1).screenshot(
            path=str(ARTIFACTS / "lab-costs-waiting.png"))
        page.close()
    assert not errors, "JavaScript errors in the page:\n" + "\n".join(errors)
