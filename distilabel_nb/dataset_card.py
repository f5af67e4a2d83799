"""A Distiset's dataset card and ``pipeline.yaml``, written and uploaded as distilabel does.

The card template is distilabel 1.5.3's (``utils/card/distilabel_template.md``, Apache-2.0),
naming distilabel_nb as the engine; its metadata carries ``size_categories`` and the tags
``synthetic``, ``distilabel``, ``rlaif``. ``push_to_hub`` uploads it as ``README.md`` and
the pipeline as ``pipeline.yaml`` through ``huggingface_hub.HfApi``.
"""

from __future__ import annotations

import os
import pathlib
import posixpath
import re
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from huggingface_hub import DatasetCard


__all__ = ["get_card", "push_extras", "resolve_token", "save_extras", "size_category"]

#: Where ``Distiset.save_to_disk`` keeps the pipeline's files, as distilabel does.
DISTISET_CONFIG_FOLDER = "distiset_configs"
PIPELINE_CONFIG_FILENAME = "pipeline.yaml"
TEMPLATE = pathlib.Path(__file__).with_name("dataset_card.md")
TAGS = ["synthetic", "distilabel", "rlaif"]
_SIZES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
          (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"),
          (1_000_000_000, "100M<n<1B"), (10_000_000_000, "1B<n<10B"),
          (100_000_000_000, "10B<n<100B"), (1_000_000_000_000, "100B<n<1T")]


def size_category(rows: int) -> str:
    """The Hub's ``size_categories`` value for a number of rows."""
    for limit, category in _SIZES:
        if rows < limit:
            return category
    return "n>1T"


def resolve_token(token: str | None) -> str:
    """The token given, else ``$HF_TOKEN``, else the ``huggingface-cli login`` one."""
    if token is None:
        from huggingface_hub import get_token

        token = os.environ.get("HF_TOKEN") or get_token()
    if not token:
        msg = ("Distiset.push_to_hub needs a Hugging Face token: pass token=..., set the "
               "environment variable HF_TOKEN, or run `huggingface-cli login`")
        raise ValueError(msg)
    return token


def _sample_record(record: dict[str, Any]) -> dict[str, Any]:
    """The first row, long lists cut to 10 items (as distilabel, so the card stays small)."""
    shown = {}
    for key, value in record.items():
        if isinstance(value, list) and len(value) >= 10:
            value = [*value[:10], f"... (truncated - showing 10 of {len(value)} elements)"]
        shown[key] = value
    return shown


def _hub_metadata(repo_id: str, token: str | None) -> dict[str, Any]:
    """The metadata of the README already on the Hub (pushing the data writes one)."""
    if not token:
        return {}
    import yaml
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError

    try:
        path = HfApi(token=token).hf_hub_download(repo_id, "README.md", repo_type="dataset")
    except (HfHubHTTPError, OSError):  # no README yet, or offline: start from ours
        return {}
    found = re.findall(r"---\n(.*?)\n---", pathlib.Path(path).read_text("utf-8"), re.DOTALL)
    loaded = yaml.safe_load(found[0]) if found else None
    return loaded if isinstance(loaded, dict) else {}


def get_card(distiset: Any, repo_id: str, token: str | None = None,
             include_script: bool = False, filename_py: str | None = None) -> DatasetCard:
    """The dataset card distilabel would write for this Distiset."""
    from huggingface_hub import DatasetCard, DatasetCardData

    samples, rows = {}, 0
    for name in distiset:
        table = distiset.arrow_table(name)
        rows = max(rows, table.num_rows)
        samples[name] = _sample_record(table.slice(0, 1).to_pylist()[0]) if table.num_rows \
            else {}
    metadata = {**_hub_metadata(repo_id, token), "size_categories": size_category(rows),
                "tags": TAGS}
    return DatasetCard.from_template(
        card_data=DatasetCardData(**metadata), template_path=str(TEMPLATE), repo_id=repo_id,
        sample_records=samples, include_script=include_script, filename_py=filename_py,
        artifacts={}, references=distiset.citations)


def save_extras(distiset: Any, path: str, storage_options: dict[str, Any] | None,
                save_card: bool, save_pipeline_config: bool, save_pipeline_log: bool) -> None:
    """``<path>/distiset_configs/``: README.md (the card), pipeline.yaml, pipeline.log."""
    import fsspec


    folder = posixpath.join(path, DISTISET_CONFIG_FOLDER)
    fs, _, _ = fsspec.get_fs_token_paths(folder, storage_options=storage_options)
    fs.makedirs(folder, exist_ok=True)
    files: dict[str, str] = {}
    if save_card:
        files["README.md"] = str(get_card(distiset, repo_id=pathlib.Path(path).stem))
    text = distiset.pipeline_yaml()
    if save_pipeline_config and text is not None:
        files[PIPELINE_CONFIG_FILENAME] = text
    log = distiset.log_filename_path
    if save_pipeline_log and log is not None and log.exists():
        files["pipeline.log"] = log.read_text("utf-8")
    for name, content in files.items():
        with fs.open(posixpath.join(folder, name), "w", encoding="utf-8", newline="") as out:
            out.write(content)


def push_extras(distiset: Any, repo_id: str, token: str, generate_card: bool,
                include_script: bool) -> None:
    """After the data: the script (if asked), the card as README.md, pipeline.yaml."""
    from huggingface_hub import HfApi


    api = HfApi(token=token)
    script = pathlib.Path.cwd() / sys.argv[0] if sys.argv and sys.argv[0] else None
    filename_py = pathlib.Path(sys.argv[0]).name if script is not None else None
    if include_script and script is not None and script.is_file():
        api.upload_file(path_or_fileobj=str(script), path_in_repo=filename_py or "script.py",
                        repo_id=repo_id, repo_type="dataset",
                        commit_message="Include pipeline script")
    if not generate_card:
        return
    card = get_card(distiset, repo_id, token, include_script=include_script,
                    filename_py=filename_py)
    api.upload_file(path_or_fileobj=str(card).encode("utf-8"), path_in_repo="README.md",
                    repo_id=repo_id, repo_type="dataset", commit_message="Upload README.md")
    text = distiset.pipeline_yaml()
    if text is not None:
        api.upload_file(path_or_fileobj=text.encode("utf-8"),
                        path_in_repo=PIPELINE_CONFIG_FILENAME, repo_id=repo_id,
                        repo_type="dataset")
    log = distiset.log_filename_path
    if log is not None and log.exists():
        api.upload_file(path_or_fileobj=str(log), path_in_repo="pipeline.log",
                        repo_id=repo_id, repo_type="dataset")
