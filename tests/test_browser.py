"""The cache graph in a real JupyterLab 4 and a real Notebook 7, driven by headless Chromium.

A notebook's ``%%pipeline`` cell is run twice (miss -> hit), a node is clicked (its cache
goes off), and the next run recomputes that step and its descendants while its
ancestors stay hits. The same scenario runs in both front ends (one test, parametrized by
``kind``). Screenshots land in ``test-artifacts/<kind>-graph-*.png``.
"""

from __future__ import annotations

import pathlib
import shutil

import pytest

from tests.browser_helpers import (
    FRONT_ENDS,
    FrontEnd,
    JupyterServer,
    launch_chromium,
    write_notebook,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(240)]

ARTIFACTS = pathlib.Path(__file__).parent.parent / "test-artifacts"

PIPELINE_CELL = '''%%pipeline browser-demo --cache-dir {cache}
import time
from distilabel_nb.steps import LoadDataFromDicts, StepInput, step

@step(inputs=["instruction"], outputs=["n_chars"])
def CountChars(inputs: StepInput):
    for row in inputs:
        row["n_chars"] = len(row["instruction"])
    yield inputs

@step(inputs=["instruction"], outputs=["shout"])
def Shout(inputs: StepInput):
    for row in inputs:
        row["shout"] = row["instruction"].upper()
    yield inputs

@step(inputs=["n_chars"], outputs=["long"])
def IsLong(inputs: StepInput):
    time.sleep(0.8)   # slow enough to be seen running, even on a busy machine
    for row in inputs:
        row["long"] = row["n_chars"] > 12
    yield inputs

load = LoadDataFromDicts(name="load", batch_size=10,
                         data=[{{"instruction": f"question number {{i}}"}} for i in range(40)])
count = CountChars(name="count")
shout = Shout(name="shout")
is_long = IsLong(name="is_long", input_batch_size=10)
load >> [count, shout]
count >> is_long
'''

STEPS = ["load", "count", "shout", "is_long"]


def _status_map(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return page.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('.dnb-root g[data-step]')].map(
            g => [g.getAttribute('data-step'), g.getAttribute('data-status')]))""")


KERNEL_IDLE = """() => { const w = window.jupyterapp.shell.currentWidget;
    const kernel = w && w.sessionContext && w.sessionContext.session &&
                   w.sessionContext.session.kernel;
    return kernel && kernel.connectionStatus === 'connected' && kernel.status === 'idle'; }"""


def _wait_statuses(page, expected: dict[str, str], timeout: float = 60_000) -> None:  # type: ignore[no-untyped-def]
    """Wait until the cell has finished and its (single) graph shows ``expected``.

    The magic re-displays the graph once the run is over (so the stored static picture is
    the final one): wait for the kernel to be idle, then for the re-rendered view."""
    _wait_graph(page, expected, timeout)
    page.wait_for_function(KERNEL_IDLE, timeout=timeout)
    page.wait_for_timeout(300)
    _wait_graph(page, expected, timeout)


def _shoot(page, name: str) -> None:  # type: ignore[no-untyped-def]
    page.mouse.move(1, 1)    # no hover effect in the picture
    page.locator(".dnb-root").screenshot(path=str(ARTIFACTS / name))


def _wait_graph(page, expected: dict[str, str], timeout: float) -> None:  # type: ignore[no-untyped-def]
    page.wait_for_function(
        """(expected) => {
            const roots = document.querySelectorAll('.dnb-root');
            if (roots.length !== 1 || roots[0].getAttribute('data-mode') !== 'done') return false;
            for (const [step, status] of Object.entries(expected)) {
                const g = roots[0].querySelector(`g[data-step="${step}"]`);
                if (!g || g.getAttribute('data-status') !== status) return false;
            }
            return true;
        }""", arg=expected, timeout=timeout)


def _run_all(page) -> None:  # type: ignore[no-untyped-def]
    # Clear the old outputs first so the next graph is unambiguously the new one.
    page.evaluate("window.jupyterapp.commands.execute('notebook:clear-all-cell-outputs')")
    page.wait_for_function("document.querySelectorAll('.dnb-root').length === 0")
    # Not awaited: the command's promise only settles when every cell has finished.
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")


# Errors a front end raises on its own, before any cell runs: (front end, message, script).
# Notebook 7.6.5 throws this on every page load, /tree included: its keyboard-shortcuts
# plugin reads `plugins['@jupyterlab/shortcuts-extension:shortcuts'].schema` in a
# `pluginChanged` handler fired for docmanager's settings before its own are loaded.
_FRONT_END_ERRORS = [
    ("notebook", "Cannot read properties of undefined (reading 'schema')",
     "/static/notebook/notebook_core."),
]


def _page_errors(kind: FrontEnd, error) -> list[str]:  # type: ignore[no-untyped-def]
    """The uncaught error in words, or nothing when it is the front end's own known error
    (matched by message and by the script it came from, so the widget's are never hidden)."""
    for front_end, message, script in _FRONT_END_ERRORS:
        if kind == front_end and error.message == message and script in (error.stack or ""):
            return []
    return [f"pageerror: {error}\n{error.stack}"]


def open_notebook(browser, server: JupyterServer, name: str, kind: FrontEnd,  # type: ignore[no-untyped-def]
                  errors: list[str], height: int = 1000):
    """A page showing notebook ``name``, its kernel ready for "run all" (the status shows
    it); the page's JavaScript errors and console errors are appended to ``errors``."""
    page = browser.new_page(viewport={"width": 1400, "height": height})
    page.on("pageerror", lambda error: errors.extend(_page_errors(kind, error)))
    page.on("console", lambda msg: errors.append(f"console: {msg.text}")
            if msg.type == "error" else None)
    page.goto(server.notebook_url(name), wait_until="domcontentloaded")
    page.wait_for_function("window.jupyterapp && document.querySelector('.jp-Notebook')",
                           timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_function(KERNEL_IDLE, timeout=60_000)
    return page


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
@pytest.mark.skipif(shutil.which("dot") is None, reason="needs graphviz's dot")
@pytest.mark.parametrize("kind", FRONT_ENDS)
def test_cache_graph_in_browser(tmp_path: pathlib.Path, kind: FrontEnd) -> None:
    pytest.importorskip("playwright")
    pytest.importorskip({"lab": "jupyterlab", "notebook": "notebook"}[kind])
    root = tmp_path / "root"
    root.mkdir()
    cache = tmp_path / "cache"
    write_notebook(root / "graph.ipynb",
                   ["%load_ext distilabel_nb", PIPELINE_CELL.format(cache=cache)])
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with JupyterServer(root, tmp_path / "home", kind) as server, launch_chromium() as browser:
        page = open_notebook(browser, server, "graph.ipynb", kind, errors)

        # 1. First run: every step computes; the slow step is seen running, with rows done.
        _run_all(page)
        running = page.wait_for_selector(
            '.dnb-root g[data-step="is_long"][data-status="running"]', timeout=60_000)
        assert running is not None
        assert "rows" in (running.text_content() or "")
        _shoot(page, f"{kind}-graph-running.png")
        _wait_statuses(page, dict.fromkeys(STEPS, "miss"))
        _shoot(page, f"{kind}-graph-first-run.png")

        # 2. Identical re-run: every step is a hit (the complete cache hit picture).
        _run_all(page)
        _wait_statuses(page, dict.fromkeys(STEPS, "hit"))
        _shoot(page, f"{kind}-graph-full-hit.png")
        assert _status_map(page) == dict.fromkeys(STEPS, "hit")

        # 3. Click 'count': its cache goes off, 'is_long' is marked as re-running.
        page.locator('.dnb-root g[data-step="count"]').click()
        page.wait_for_selector('.dnb-root g[data-step="count"][data-use-cache="false"]',
                               timeout=15_000)
        page.wait_for_selector('.dnb-root g[data-step="is_long"][data-rerun="true"]',
                               timeout=15_000)
        assert page.locator('.dnb-root g[data-step="load"]').get_attribute(
            "data-use-cache") == "true"
        # The side panel shows the selected step.
        page.wait_for_selector(".dnb-panel .dnb-panel-name:text-is('count')", timeout=10_000)
        panel = page.locator(".dnb-panel").inner_text()
        assert "reason" in panel and "rows" in panel and "signature" in panel

        # 4. Re-run the cell: the toggle holds; count and its descendant recompute.
        _run_all(page)
        expected = {"load": "hit", "shout": "hit", "count": "miss", "is_long": "miss"}
        _wait_statuses(page, expected)
        assert page.locator('.dnb-root g[data-step="count"]').get_attribute(
            "data-use-cache") == "false"
        _shoot(page, f"{kind}-graph-partial-hit.png")

        # 5. The widget's Run button re-runs with the same switch: same picture again.
        runs = int(page.locator(".dnb-root").get_attribute("data-runs") or "0")
        page.locator(".dnb-root .dnb-run").click()
        page.wait_for_function(
            f"Number(document.querySelector('.dnb-root').getAttribute('data-runs')) > {runs}",
            timeout=30_000)
        _wait_statuses(page, expected)
        page.close()

    assert not errors, "JavaScript errors in the page:\n" + "\n".join(errors)


HISTORY_CELL = '''%%pipeline history-demo --cache-dir {cache}
from distilabel_nb.steps import LoadDataFromDicts, StepInput, step

@step(inputs=["text"], outputs=["styled"])
def Write(inputs: StepInput, style: str = "concise"):
    for row in inputs:
        row["styled"] = f"{{style}}: {{row['text']}}"
    yield inputs

@step(inputs=["styled"], outputs=["n"])
def Count(inputs: StepInput):
    for row in inputs:
        row["n"] = len(row["styled"])
    yield inputs

load = LoadDataFromDicts(name="load", batch_size=10,
                         data=[{{"text": f"answer {{i}}"}} for i in range(40)])
load >> Write(name="write", style="{style}") >> Count(name="count")
'''

RERUN_CELL = 'rerun = pipeline.run(progress=False, recompute=["count"])  # another cell'

PARTIAL = {"load": "hit", "write": "miss", "count": "miss"}


def _graph_statuses(root) -> dict[str, str]:  # type: ignore[no-untyped-def]
    return root.evaluate("""(root) => Object.fromEntries(
        [...root.querySelectorAll('g[data-step]')].map(
            g => [g.getAttribute('data-step'), g.getAttribute('data-status')]))""")


@pytest.mark.skipif(shutil.which("chromium") is None, reason="needs Debian's chromium")
@pytest.mark.skipif(shutil.which("dot") is None, reason="needs graphviz's dot")
@pytest.mark.parametrize("kind", FRONT_ENDS)
def test_history_in_browser(tmp_path: pathlib.Path, kind: FrontEnd) -> None:
    """A first run, a changed cell (a partial hit), a re-run from another cell: the partial
    hit's graph keeps its colours (live and in the saved notebook); its strip lists the
    three runs; comparing the first two names the changed step and why."""
    import json

    pytest.importorskip("playwright")
    pytest.importorskip({"lab": "jupyterlab", "notebook": "notebook"}[kind])
    root = tmp_path / "root"
    root.mkdir()
    cache = tmp_path / "cache"
    write_notebook(root / "history.ipynb", [
        "%load_ext distilabel_nb", HISTORY_CELL.format(cache=cache, style="concise"),
        HISTORY_CELL.format(cache=cache, style="detailed"), RERUN_CELL])
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with JupyterServer(root, tmp_path / "home", kind) as server, launch_chromium() as browser:
        page = open_notebook(browser, server, "history.ipynb", kind, errors, height=1100)
        page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); }")
        page.wait_for_function("""() => {
            const roots = document.querySelectorAll('.dnb-root');
            return roots.length === 2 && [...roots].every(
                r => r.getAttribute('data-mode') === 'done');
        }""", timeout=90_000)
        page.wait_for_function(KERNEL_IDLE, timeout=60_000)
        page.wait_for_timeout(500)
        first, partial = page.locator(".dnb-root").nth(0), page.locator(".dnb-root").nth(1)

        # 1. The partial hit's graph keeps its own run after the re-run of another cell.
        assert _graph_statuses(partial) == PARTIAL
        assert _graph_statuses(first) == dict.fromkeys(PARTIAL, "miss")

        # 2. Its strip lists the three runs (re-read when the graph is looked at).
        partial.hover()
        partial.locator(".dnb-chip").nth(2).wait_for(timeout=15_000)
        chips = partial.locator(".dnb-chip")
        assert chips.count() == 3
        assert chips.nth(1).get_attribute("data-own") == "true"
        assert chips.nth(1).get_attribute("data-shown") == "true"
        assert "3 miss" in (chips.nth(0).get_attribute("title") or "")
        partial.scroll_into_view_if_needed()
        _shoot_locator(partial, f"{kind}-history-partial.png")

        # Choosing the re-run shows its colours; choosing the cell's own run brings hers back.
        chips.nth(2).click()
        page.wait_for_function("""(root) => root.querySelector(
            'g[data-step="write"]').getAttribute('data-status') === 'hit'""",
            arg=partial.element_handle(), timeout=15_000)
        assert _graph_statuses(partial) == {"load": "hit", "write": "hit", "count": "miss"}
        _shoot_locator(partial, f"{kind}-history-rerun-shown.png")
        chips.nth(1).click()
        page.wait_for_function("""(root) => root.querySelector(
            'g[data-step="write"]').getAttribute('data-status') === 'miss'""",
            arg=partial.element_handle(), timeout=15_000)

        # 3. Compare the first two runs: 'write' changed, and why, in the reasons' words.
        partial.locator(".dnb-compare").click()
        chips.nth(0).click()
        chips.nth(1).click()
        page.wait_for_function("(root) => root.getAttribute('data-mode') === 'compare'",
                               arg=partial.element_handle(), timeout=15_000)
        assert _graph_statuses(partial) == {"load": "same", "write": "changed",
                                            "count": "changed"}
        title = partial.locator('g[data-step="write"] title').text_content() or ""
        assert "style changed 'concise' -> 'detailed'" in title
        partial.locator('g[data-step="write"]').click()
        page.wait_for_selector(".dnb-change", timeout=10_000)
        change = partial.locator(".dnb-change").inner_text()
        assert change == "style changed 'concise' -> 'detailed'"
        assert partial.locator('g[data-step="write"]').get_attribute("data-use-cache") == "true"
        assert "2 steps changed" in partial.locator(".dnb-message").inner_text()
        _shoot_locator(partial, f"{kind}-history-compare.png")

        # 4. The saved notebook's static picture of each cell is that cell's own run.
        partial.locator(".dnb-compare").click()      # back to its own run
        page.wait_for_function("(root) => root.getAttribute('data-mode') === 'done'",
                               arg=partial.element_handle(), timeout=15_000)
        page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
        page.wait_for_timeout(1500)
        page.close()

    saved = json.loads((root / "history.ipynb").read_text())
    pictures = [o["data"]["image/svg+xml"] for c in saved["cells"] for o in c.get("outputs", [])
                if "image/svg+xml" in o.get("data", {})]
    svg = [p if isinstance(p, str) else "".join(p) for p in pictures]
    assert len(svg) == 2
    assert svg[0].count('data-status="miss"') == 3
    assert 'data-step="load" data-status="hit"' in svg[1]
    assert 'data-step="write" data-status="miss"' in svg[1]
    assert not errors, "JavaScript errors in the page:\n" + "\n".join(errors)


def _shoot_locator(locator, name: str) -> None:  # type: ignore[no-untyped-def]
    locator.page.mouse.move(1, 1)
    locator.screenshot(path=str(ARTIFACTS / name))
