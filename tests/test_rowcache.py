"""The row-level cache: keys, successes only, tokens kept, concurrent writers."""

from __future__ import annotations

import threading

from distilabel_nb.cache.rowcache import RowCache, row_key


def test_put_get_and_tokens(tmp_path):
    with RowCache(tmp_path / "rows") as cache:
        keys = [row_key({"instruction": f"q{i}"}) for i in range(1200)]
        cache.put_many("sig", [(k, {"text": f"a{i}"}, i, 2 * i) for i, k in enumerate(keys)])
        found = cache.get_many("sig", [*keys, "missing"])
        assert len(found) == 1200
        assert found[keys[7]] == ({"text": "a7"}, 7, 14)
        assert cache.get_many("other-signature", keys) == {}
        assert cache.count("sig") == 1200
        assert cache.clear("sig") == 1200 and cache.count() == 0


def test_row_key_depends_on_values_not_on_key_order():
    assert row_key({"a": 1, "b": "x"}) == row_key({"b": "x", "a": 1})
    assert row_key({"a": 1}) != row_key({"a": 2})
    assert row_key({"a": [{"role": "user", "content": "hi"}]}) != row_key({"a": []})


def test_survives_reopening_and_two_writers(tmp_path):
    folder = tmp_path / "rows"
    first, second = RowCache(folder), RowCache(folder)

    def write(cache: RowCache, start: int) -> None:
        for i in range(start, start + 200, 10):
            cache.put_many("s", [(str(j), {"v": j}, 1, 1) for j in range(i, i + 10)])

    threads = [threading.Thread(target=write, args=(first, 0)),
               threading.Thread(target=write, args=(second, 200))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    first.close()
    second.close()
    with RowCache(folder) as again:
        assert again.count("s") == 400
