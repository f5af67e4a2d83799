"""Safe to share: a cache never executes code, files are user-only, secrets never leak."""

from __future__ import annotations

import ast
import os
import pathlib
import pickle
import sqlite3
import stat
import warnings
from typing import Any

import pytest

import distilabel_nb
from distilabel_nb import Pipeline, RunEvent, Secret, StepFailedError, StepFailedWarning
from distilabel_nb.cli import main
from distilabel_nb.llms.offline import OfflineLLM
from distilabel_nb.steps import LoadDataFromDicts, Step
from distilabel_nb.steps.tasks import TextGeneration

from . import faultkit

KEY = "sk-test-DO-NOT-LEAK-4f9a2c"
TOKEN = "hf_SECRET_TOKEN_77e1"


# -- no code from the cache ----------------------------------------------------------------
class _Planted:
    """Unpickling this creates the marker file: proof that something unpickled it."""

    def __init__(self, marker: pathlib.Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (open, (str(self.marker), "w"))


def test_no_module_can_unpickle_or_eval() -> None:
    """The package never imports a deserializer that runs code, nor calls eval."""
    forbidden = {"pickle", "cPickle", "dill", "cloudpickle", "marshal", "shelve", "joblib",
                 "_pickle"}
    root = pathlib.Path(distilabel_nb.__file__).parent
    # The Ray backend ships the user's own steps to workers the user runs (Ray pickles by
    # design); it never reads anything from the cache. Every other module is checked.
    shipping = {root / "backends" / "ray.py", root / "backends" / "shipping.py"}
    for path in sorted(set(root.rglob("*.py")) - shipping):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                names = set()
            assert not names & forbidden, f"{path}: imports {names & forbidden}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id != "eval", f"{path}:{node.lineno}: eval()"
                # exec runs the user's own cell (the %%pipeline magic): never cache data.
                if node.func.id == "exec":
                    assert path.name == "magics.py", f"{path}:{node.lineno}: exec()"


def test_planted_pickles_are_never_loaded(tmp_path: pathlib.Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    data = faultkit.write_data(tmp_path / "data.jsonl")
    cache = tmp_path / "cache"
    faultkit.build(cache, data).run(progress=False)
    marker = tmp_path / "PWNED"
    payload = pickle.dumps(_Planted(marker))
    pickle.loads(payload)  # the payload works ...
    assert marker.exists()
    marker.unlink()  # ... and from here on must never run
    version = cache / "v1"
    # Pickles beside the cache files, under names a careless loader would try.
    for place in (cache, version, version / "data", *version.glob("data/*/*")):
        for name in ("cache.pkl", "index.pickle", "state.joblib", "manifest.pkl"):
            (place / name).write_bytes(payload)
    # A segment file replaced by the pickle, with the manifest checksum made to match.
    import xxhash

    target = faultkit.segment_paths(cache, "words")[0]
    target.write_bytes(payload)
    with sqlite3.connect(version / "manifest.sqlite") as conn:
        conn.execute("UPDATE segments SET checksum=?, sig=NULL WHERE path LIKE ?",
                     (xxhash.xxh3_64_hexdigest(payload), f"%{target.name}"))
    # The row cache, if any, and the runs' JSON are data too.
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        distiset = faultkit.build(cache, data).run(progress=False)
    assert faultkit.rows_of(distiset) == faultkit.expected()
    for argv in (["cache", "ls"], ["cache", "show", "faults"], ["cache", "gc", "--max-size",
                                                                  "1TB"]):
        main(["--cache-dir", str(cache), *argv])
    capsys.readouterr()
    assert not marker.exists(), "a planted pickle was executed"


def test_a_planted_manifest_pointing_outside_is_only_read_as_arrow(
        tmp_path: pathlib.Path) -> None:
    """A manifest row naming any file (here a pickle outside the cache) gets that file
    read as bytes, checksummed and refused: it is never decoded as anything else."""
    data = faultkit.write_data(tmp_path / "data.jsonl")
    cache = tmp_path / "cache"
    faultkit.build(cache, data).run(progress=False)
    marker = tmp_path / "PWNED"
    outside = tmp_path / "evil.pkl"
    outside.write_bytes(pickle.dumps(_Planted(marker)))
    with sqlite3.connect(cache / "v1" / "manifest.sqlite") as conn:
        conn.execute("UPDATE segments SET path=?, sig=NULL", (str(outside),))
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        distiset = faultkit.build(cache, data).run(progress=False)
    assert faultkit.rows_of(distiset) == faultkit.expected()
    assert not marker.exists()
    assert outside.exists(), "a file outside the cache was deleted"


# -- user-only files -----------------------------------------------------------------------
def _modes(root: pathlib.Path) -> dict[str, int]:
    return {str(p.relative_to(root.parent)): stat.S_IMODE(p.stat().st_mode)
            for p in [root, *root.rglob("*")]}


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o000])
def test_cache_files_and_folders_are_user_only(tmp_path: pathlib.Path, umask: int) -> None:
    data = faultkit.write_data(tmp_path / "data.jsonl")
    old = os.umask(umask)
    try:
        cache = tmp_path / "fresh" / "cache"
        faultkit.build(cache, data).run(progress=False)
    finally:
        os.umask(old)
    modes = _modes(tmp_path / "fresh")
    loose = {p: oct(m) for p, m in modes.items()
             if m & 0o077 or m not in (0o700, 0o600)}
    assert not loose, f"not user-only: {loose}"


def test_row_cache_files_are_user_only(tmp_path: pathlib.Path) -> None:
    cache = tmp_path / "cache"
    with Pipeline(name="rows", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"instruction": f"q{i}"} for i in range(6)])
        load >> TextGeneration(name="gen", llm=OfflineLLM())
    pipeline.run(progress=False)
    loose = {p: oct(m) for p, m in _modes(cache).items() if m & 0o077}
    assert not loose, f"not user-only: {loose}"


# -- secrets -------------------------------------------------------------------------------
class KeyedLLM(OfflineLLM):
    """An LLM with an API key (a secret by its name) and a token marked ``Secret``."""

    api_key: str | None = None
    session: Secret[str] = None


class Keyed(Step):
    """A step holding secrets that raises errors quoting them, as client libraries do."""

    api_key: str | None = None
    token: Secret[str] = None
    fail: bool = False

    @property
    def inputs(self) -> list[str]:
        return ["instruction"]

    @property
    def outputs(self) -> list[str]:
        return ["ok"]

    def process(self, rows: list[dict[str, Any]]) -> Any:  # type: ignore[override]
        if self.fail:
            msg = f"401 Unauthorized: invalid key {self.api_key} (token {self.token})"
            raise PermissionError(msg)
        for row in rows:
            row["ok"] = True
        yield rows


def _secret_pipeline(cache: pathlib.Path, key: str = KEY, fail: bool = False) -> Pipeline:
    with Pipeline(name="secrets", cache_dir=cache) as pipeline:
        load = LoadDataFromDicts(name="load", data=[{"instruction": f"q{i}"} for i in range(6)])
        keyed = Keyed(name="keyed", api_key=key, token=TOKEN, fail=fail)
        gen = TextGeneration(name="gen", llm=KeyedLLM(api_key=key, session=TOKEN))
        load >> keyed >> gen
    return pipeline


def _assert_clean(text: str, where: str) -> None:
    assert KEY not in text and TOKEN not in text, f"a secret leaked into {where}"


def _scan_files(root: pathlib.Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert KEY.encode() not in blob and TOKEN.encode() not in blob, path


def test_secrets_never_reach_files_reports_events_or_reprs(tmp_path: pathlib.Path) -> None:
    cache = tmp_path / "cache"
    pipeline = _secret_pipeline(cache)
    events: list[RunEvent] = []
    pipeline.run(progress=False, on_event=events.append)
    assert pipeline.last_run is not None
    _assert_clean(repr(pipeline), "repr(pipeline)")
    for step in pipeline.steps.values():
        _assert_clean(repr(step), f"repr({step.name})")
        _assert_clean(str(step.signature_fields()), f"signature of {step.name}")
    _assert_clean(repr(pipeline.steps["gen"].llm), "repr(llm)")  # type: ignore[attr-defined]
    _assert_clean(repr(pipeline.last_run), "the report")
    _assert_clean(pipeline.last_run._repr_html_(), "the report's HTML")
    _assert_clean(str([r.as_dict() for r in pipeline.last_run.values()]), "report dicts")
    _assert_clean(str(events), "run events")
    _assert_clean(str(pipeline.plan()), "the plan")
    _scan_files(cache)
    # A new key is not a new computation: secrets are not part of any cache key.
    again = _secret_pipeline(cache, key="sk-another-key-0000")
    again.run(progress=False)
    assert set(again.last_run.statuses().values()) == {"hit"}  # type: ignore[union-attr]
    assert "api_key" not in str(again.last_run)


def test_cli_output_has_no_secrets(tmp_path: pathlib.Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    cache = tmp_path / "cache"
    _secret_pipeline(cache).run(progress=False)
    capsys.readouterr()
    for argv in (["cache", "ls"], ["cache", "show", "secrets"], ["--json", "cache", "show",
                                                                 "secrets"]):
        main(["--cache-dir", str(cache), *argv])
        out, err = capsys.readouterr()
        _assert_clean(out + err, f"distilabel-nb {' '.join(argv)}")


def test_secrets_are_redacted_from_failure_warnings(tmp_path: pathlib.Path) -> None:
    cache = tmp_path / "cache"
    pipeline = _secret_pipeline(cache, fail=True)
    with pytest.warns(StepFailedWarning) as caught:
        pipeline.run(progress=False)
    text = "\n".join(str(w.message) for w in caught)
    assert "401 Unauthorized" in text and "Traceback" in text
    _assert_clean(text, "the failure warning")
    assert pipeline.last_run is not None
    assert pipeline.last_run["keyed"].status == "failed"
    _assert_clean(repr(pipeline.last_run), "the report of a run that went on")
    _assert_clean(str([r.as_dict() for r in pipeline.last_run.values()]), "report dicts")
    _scan_files(cache)


def test_secrets_are_redacted_from_error_messages(tmp_path: pathlib.Path) -> None:
    cache = tmp_path / "cache"
    pipeline = _secret_pipeline(cache, fail=True)
    with pytest.raises(StepFailedError) as caught:
        pipeline.run(progress=False, fail_fast=True)
    assert "401 Unauthorized" in str(caught.value)
    _scan_files(cache)
    _assert_clean(str(caught.value), "the error message")
    assert pipeline.last_run is not None
    _assert_clean(repr(pipeline.last_run), "the failed run's report")
    _assert_clean(str([r.as_dict() for r in pipeline.last_run.values()]), "report dicts")
