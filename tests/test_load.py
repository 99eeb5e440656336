"""The load-test benchmark on a small scale: 3 concurrent clients, each Train (2 steps) + Compare
(the train-then-compare scenario of benchmarks/load_test.py).

Run: .venv/bin/python -m pytest tests/test_load.py -q -s   (-s prints the table)
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
import load_test  # noqa: E402


def test_three_concurrent_clients_all_finish(tmp_path, capsys):
    with load_test.serve_app(log_path=tmp_path / "app.log") as url:
        results, wall = load_test.run_load(url, clients=3, steps=2)
    table = load_test.markdown_table(results, wall, steps=2)
    with capsys.disabled():
        print("\n" + table)
    assert [r.error for r in results] == [None] * 3, table
    assert all(r.ok for r in results)
    for r in results:
        assert r.train.outputs[-1][0].startswith("Done: 2 steps")
        assert 0 <= r.train.wait <= r.train.total and 0 <= r.compare.wait <= r.compare.total
    # Fair turns: the three runs shared the model step by step, so every one of them had started
    # before the first one finished (one model slot per run would start them one after another).
    assert max(r.train.wait for r in results) < min(r.train.total for r in results)
