"""Run ``tests.faultkit`` in a child process, and the helpers to start and kill it.

The child hides pandas from pyarrow (which would import it, ~2 s, on its first
conversion of Python rows): the fault tests are about the cache, not about pandas.
"""

from __future__ import annotations

import json
import os
import pathlib
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from typing import Any

from tests import faultkit

REPO = pathlib.Path(__file__).resolve().parent.parent

_LAUNCH = """
import sys
class _NoPandas:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pandas":
            raise ImportError("pandas is not needed here")
sys.meta_path.insert(0, _NoPandas())
from tests.faultkit import main
sys.exit(main(sys.argv[1:]))
"""


def start(cache: pathlib.Path, data: pathlib.Path, out: pathlib.Path, log: pathlib.Path,
          delay: float = 0.01, interrupt: str | None = None,
          pipeline: str = "faults", extra_env: dict[str, str] | None = None
          ) -> subprocess.Popen[bytes]:
    env = {**os.environ, "FAULTKIT_LOG": str(log), "FAULTKIT_DELAY": str(delay),
           "PYTHONPATH": str(REPO), "PYTHONWARNINGS": "ignore::DeprecationWarning",
           **(extra_env or {})}
    if interrupt:
        env["FAULTKIT_INTERRUPT"] = interrupt
    return subprocess.Popen([sys.executable, "-c", _LAUNCH, str(cache), str(data), str(out),
                             "--pipeline", pipeline],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def finish(process: subprocess.Popen[bytes], timeout: float = 120) -> tuple[int, str]:
    _, err = process.communicate(timeout=timeout)
    return process.returncode, err.decode(errors="replace")


def wait_for_log(log: pathlib.Path, process: subprocess.Popen[bytes], lines: int = 1,
                 timeout: float = 30) -> bool:
    """Wait until the child logged ``lines`` batches; False if it ended before."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and log.read_text().count("\n") >= lines:
            return True
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    return False


def kill_at_random(process: subprocess.Popen[bytes], log: pathlib.Path, rng: random.Random,
                   window: float) -> bool:
    """SIGKILL the child at a random moment once it is running; True if it was killed
    before it ended on its own."""
    wait_for_log(log, process)
    time.sleep(rng.uniform(0, window))
    alive = process.poll() is None
    if alive:
        process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    return alive and process.returncode == -signal.SIGKILL


def kill_trial(folder: pathlib.Path, data: pathlib.Path, seed: int, kills: int,
               window: float = 0.7, pipeline: str = "faults",
               extra_env: dict[str, str] | None = None) -> dict[str, Any]:
    """Run, SIGKILL at a random moment (``kills`` times), run to the end; the result."""
    rng = random.Random(seed)
    cache, log, out = folder / "cache", folder / "log", folder / "out"
    killed = 0
    for _ in range(kills):
        process = start(cache, data, folder / "killed", log, pipeline=pipeline,
                        extra_env=extra_env)
        killed += kill_at_random(process, log, rng, window=window)
    code, err = finish(start(cache, data, out, log, pipeline=pipeline, extra_env=extra_env),
                       timeout=300)
    report = json.loads((out / "report.json").read_text()) if code == 0 else {}
    computed = Counter(name for name, *_ in faultkit.read_log(log))
    return {"code": code, "stderr": err, "rows": faultkit.read_out(out) if code == 0 else {},
            "report": report, "killed": killed, "computed": dict(computed)}
