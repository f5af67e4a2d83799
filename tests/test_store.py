from __future__ import annotations

import pathlib

import pyarrow as pa
import pytest

from distilabel_nb.cache.sqlite import SQLiteManifest
from distilabel_nb.cache.store import CorruptSegmentError, SegmentStore


def test_segments_round_trip_with_differing_schemas(tmp_path: pathlib.Path) -> None:
    store = SegmentStore(str(tmp_path))
    tables = [pa.table({"a": [1, 2]}), pa.table({"a": [None], "b": ["x"]}), pa.table({})]
    segment = store.write("ab" * 16, 0, tables)
    back = store.read(segment.path, segment.checksum)
    assert back.to_pylist() == [{"a": 1, "b": None}, {"a": 2, "b": None}, {"a": None, "b": "x"}]
    assert not list(tmp_path.rglob("*.tmp-*"))


def test_damage_of_any_kind_is_detected(tmp_path: pathlib.Path) -> None:
    store = SegmentStore(str(tmp_path))
    segment = store.write("cd" * 16, 0, [pa.table({"a": list(range(100))})])
    path = pathlib.Path(segment.path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptSegmentError, match="checksum mismatch"):
        SegmentStore(str(tmp_path)).read(segment.path, segment.checksum)
    path.unlink()
    with pytest.raises(CorruptSegmentError, match="cannot be read"):
        SegmentStore(str(tmp_path)).read(segment.path, segment.checksum)


def test_manifest_tracks_batches_and_completion(tmp_path: pathlib.Path) -> None:
    manifest = SQLiteManifest(tmp_path / "m.sqlite")
    key = "ef" * 16
    x = f"{tmp_path}/data/ef/{key}"  # segment paths live under the manifest's data folder
    manifest.add_segment(key, 0, [50, 50], f"{x}/0", 10, "c0", 50, "p", "s")
    manifest.add_segment(key, 3, [20], f"{x}/3", 5, "c3", 50, "p", "s")
    state = manifest.state(key)
    assert sorted(state.batches) == [0, 1, 3]
    assert state.batches[1].offset == 50
    assert state.rows == 120 and not state.complete
    manifest.add_segment(key, 2, [50], f"{x}/2", 5, "c2", 50, "p", "s")
    manifest.complete(key, 4, 50, "p", "s")
    assert manifest.state(key).complete
    manifest.drop_segment(f"{x}/2")
    assert not manifest.state(key).complete
    assert manifest.invalidate([key]) == [f"{x}/0", f"{x}/3"]
    assert manifest.state(key).batches == {}
