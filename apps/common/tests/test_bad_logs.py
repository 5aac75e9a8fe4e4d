"""Hand-edited or damaged logs on --resume: skipped lines with a warning, never a traceback."""

import math

from structgrad_app_common import (
    Column,
    JsonlLogger,
    SearchGroup,
    SearchOptions,
    Sweep,
    read_jsonl,
    run_search,
)
from structgrad_app_common.testing import ToyRun as Run
from structgrad_app_common.testing import append_record

CALLS: list[int] = []


def _train(cfg):
    CALLS.append(cfg.seed)
    return {"loss": math.nan if cfg.seed == 1 else cfg.lr * (cfg.seed + 1)}


SWEEP = Sweep(Run, _train, ("loss",), (Column("loss", "loss"),), score="loss")
GROUPS = [SearchGroup(("a",), {"method": "a"})]


def _search(**changes):
    return SearchOptions(1, [0, 1, 2], (0.1, 0.1), None, n_jobs=1, backend="threading", **changes)


def test_a_log_line_that_is_no_object_or_has_no_numeric_step_is_skipped(tmp_path, capsys):
    path = tmp_path / "m.jsonl"
    with JsonlLogger(path) as log:
        for step in range(3):
            log.log({"step": step, "loss": 1.0})
    for bad in ([1, 2], {"loss": 2.0}, {"step": "five"}, {"step": True}):
        append_record(path, bad)
    append_record(path, {"step": 1, "loss": 3.0})
    with JsonlLogger(path, resume_step=1) as log:
        pass
    assert [r["loss"] for r in read_jsonl(path)] == [1.0, 1.0, 3.0]
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"warning: {path}: line 4 is not a JSON object and is skipped"
    assert err[1:] == [f"warning: {path}: line {i} has no numeric 'step' and is skipped"
                       for i in (5, 6, 7)]  # fmt: skip


def test_sweep_resume_skips_bad_records_and_counts_the_seeds_averaged(tmp_path, capsys):
    base = Run(out=str(tmp_path))
    CALLS.clear()
    records, table = run_search(SWEEP, base, _search(), GROUPS)
    assert records[0]["loss"] == 0.1 and math.isnan(records[1]["loss"])  # diverged
    # The mean is over seeds 0 and 2: so is the seeds column (it said 3).
    assert "| a | 0.1 | 1 | 2 | 0.2 ± 0.1 |" in table
    log = tmp_path / "sweep.jsonl"
    lines = log.read_text().splitlines()
    text = lines[0].replace('"loss": 0.1', '"loss": "high"')
    log.write_text("\n".join(["[1]", text, *lines[1:]]) + "\n")
    CALLS.clear()
    again, table2 = run_search(SWEEP, base, _search(resume=True), GROUPS)
    assert CALLS == [0] and table2 == table  # only the bad record's run is run again
    assert [r["loss"] for r in again] == [0.1, None, 0.30000000000000004]
    err = capsys.readouterr().err.splitlines()
    assert err == [
        f"warning: {log}: line 1 is not a JSON object and is skipped",
        f"warning: {log}: a record's 'loss' is not a number: its run is run again",
    ]
