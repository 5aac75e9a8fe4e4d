"""The fuzz suite (issue 17): every public entry point x every input mutation.

``test_table`` runs the whole table of :mod:`fuzz.entries` x :mod:`fuzz.mutations`
in a child process with ``faulthandler`` on (a crash inside a kernel kills the
child, not the test run, and is reported), prints the tally and fails on any
case that is not a clean error or a finite result where one is due.
``test_random_values`` draws random values (NaN, infinities, huge and tiny
numbers, negative costs) with hypothesis and holds every entry to the same rule.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from .entries import ENTRIES
from .entries_layers import LAYER_ENTRIES
from .entries_more import MORE_ENTRIES
from .mutations import Mutation
from .outcome import FAILURES, classify

GROUPS = ["solvers", "relaxations", "estimators", "distributions", "models", "constructors"]
# (a matrix inverse is left out of the random values: random matrices are often
# numerically singular, where its contract, LAPACK's, leaves the inverse unspecified)
ALL = [e for e in (*ENTRIES, *LAYER_ENTRIES, *MORE_ENTRIES) if not e.finite]


@pytest.mark.parametrize("group", GROUPS)
def test_table(group: str, capsys: pytest.CaptureFixture[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-X", "faulthandler", "-m", "fuzz.run", f"{group}."],
        cwd=Path(__file__).parent.parent,
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert proc.returncode == 0, f"the {group} run crashed:\n{proc.stderr[-4000:]}"
    tally = collections.Counter(r["verdict"] for r in rows)
    with capsys.disabled():  # the tally is part of the report
        print(f"\n{group}: {len(rows)} cases, {dict(tally)}")
    bad = [r for r in rows if r["verdict"] in FAILURES]
    lines = (f"{r['entry']} | {r['case']} | {r['verdict']} | {r['detail']}" for r in bad[:40])
    assert not bad, "\n".join(lines)
    assert rows, f"no case ran for {group}"


_VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True, width=32),
    st.sampled_from([0.0, -0.0, 1e-38, -1e30, 1e30, 3.0e38, -3.0e38, float("-inf")]),
)


@settings(
    max_examples=1500,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_random_values(data: st.DataObject) -> None:
    entry = data.draw(st.sampled_from(ALL), label="entry")
    values = data.draw(arrays(np.float32, entry.shape, elements=_VALUES), label="values")
    if not entry.reads_diagonal:  # documented as not read: it carries no bad input
        values[..., np.arange(values.shape[-1]), np.arange(values.shape[-1])] = 0.0
    bad = bool(np.isnan(values).any() or np.isposinf(values).any())
    if entry.costs:
        bad = bad or bool((values < 0).any())
    if entry.finite:
        bad = bad or bool(np.isneginf(values).any())
    if entry.shape_only:  # values not read: anything goes
        bad = False

    def expect(_: object) -> str:
        # Random -inf patterns may leave no structure: a clean error is fine then.
        return "error" if bad else "either"

    mutation = Mutation("random", lambda e, x: torch.from_numpy(values.copy()), expect)
    verdict, detail = classify(entry, mutation)
    assert verdict == "pass", f"{entry.name}: {verdict} ({detail}) on\n{values}"
