"""A Jupyter server (JupyterLab or Notebook 7) on 127.0.0.1 with a throw-away config, and
headless Chromium.

Used by ``tests/test_browser.py``. Chromium is Debian's ``chromium`` package launched by
Playwright through ``executable_path`` (``playwright install`` is never needed).
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from typing import Any, Literal

__all__ = ["CHROMIUM_ARGS", "FRONT_ENDS", "FrontEnd", "JupyterServer", "free_port",
           "launch_chromium", "write_notebook"]

CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--no-first-run",
]

FrontEnd = Literal["lab", "notebook"]
FRONT_ENDS: tuple[FrontEnd, ...] = ("lab", "notebook")

# Lab plugins that would pop up notices over the notebook or reach the network (Notebook 7
# loads the same plugins, and reads the same page_config.json).
_DISABLED = [
    "@jupyterlab/apputils-extension:announcements",
    "@jupyterlab/apputils-extension:notification",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_notebook(path: pathlib.Path, cells: list[str]) -> None:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    nbformat.write(notebook, str(path))


# Each front end's server module and the option that sets ``window.jupyterapp``. The
# jupyterlab server extension runs under both commands, so the LabApp options apply to both.
_COMMANDS: dict[FrontEnd, list[str]] = {
    "lab": ["jupyterlab", "--LabApp.expose_app_in_browser=True"],
    "notebook": ["notebook", "--JupyterNotebookApp.expose_app_in_browser=True"],
}
_LAB_OPTIONS = [
    "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    "--LabApp.extension_manager=readonly",
]

# Where each front end opens a notebook: `?reset` starts Lab on an empty workspace.
_NOTEBOOK_PATHS: dict[FrontEnd, str] = {"lab": "lab/tree/{}?reset", "notebook": "notebooks/{}"}


class JupyterServer:
    """``with JupyterServer(root, home, kind="notebook") as server: server.notebook_url(...)``:
    started, waited for, stopped. ``kind`` is ``"lab"`` (JupyterLab 4) or ``"notebook"``
    (Notebook 7); both expose the application as ``window.jupyterapp``."""

    def __init__(self, root: pathlib.Path, home: pathlib.Path, kind: FrontEnd = "lab") -> None:
        if kind not in _COMMANDS:
            msg = f"unknown front end {kind!r}: one of {', '.join(_COMMANDS)}"
            raise ValueError(msg)
        self.root = root
        self.home = home
        self.kind = kind
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = home / f"jupyter-{kind}.log"

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def notebook_url(self, name: str) -> str:
        return self.url(_NOTEBOOK_PATHS[self.kind].format(name))

    def __enter__(self) -> JupyterServer:
        config = self.home / "config"
        (config / "labconfig").mkdir(parents=True, exist_ok=True)
        (config / "labconfig" / "page_config.json").write_text(json.dumps(
            {"disabledExtensions": dict.fromkeys(_DISABLED, True)}))
        env = dict(os.environ)
        env.update({
            "JUPYTER_CONFIG_DIR": str(config),
            "JUPYTER_DATA_DIR": str(self.home / "data"),
            "JUPYTER_RUNTIME_DIR": str(self.home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(self.home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(self.home / "workspaces"),
            "IPYTHONDIR": str(self.home / "ipython"),
            "PYTHONPATH": os.pathsep.join([str(pathlib.Path(__file__).parent.parent),
                                           env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
        })
        module, *options = _COMMANDS[self.kind]
        command = [
            sys.executable, "-m", module, "--no-browser",
            "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0", "--ServerApp.open_browser=False",
            "--IdentityProvider.token=", "--ServerApp.password=",
            "--ServerApp.disable_check_xsrf=True", f"--ServerApp.root_dir={self.root}",
            *options, *_LAB_OPTIONS,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            command.append("--allow-root")
        self._log = self.log.open("wb")
        self.process = subprocess.Popen(command, cwd=self.root, env=env, stdout=self._log,
                                        stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                msg = f"jupyter {self.kind} exited early:\n{self.log.read_text()[-3000:]}"
                raise RuntimeError(msg)
            with contextlib.suppress(OSError), \
                    urllib.request.urlopen(self.url("api/status"), timeout=2) as response:
                if response.status == 200:
                    return self
            time.sleep(0.3)
        self.__exit__()
        msg = f"jupyter {self.kind} did not start in 60 s:\n{self.log.read_text()[-3000:]}"
        raise RuntimeError(msg)

    def __exit__(self, *exc: object) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        self._log.close()


@contextlib.contextmanager
def launch_chromium() -> Iterator[Any]:
    """A Playwright Chromium browser on Debian's ``chromium`` binary."""
    from playwright.sync_api import sync_playwright

    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        msg = "Debian's `chromium` is not installed: apt-get install -y chromium"
        raise RuntimeError(msg)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
