import json

import pytest
from shootout.cli import main
from structgrad_app_common.app_checks import AppChecks
from structgrad_app_common.testing import assert_png

APP = AppChecks(main, "shootout")


def test_smoke_writes_table_rows_and_heatmaps(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["--smoke", "--out", str(out), "--no-progress"]) == 0
    table = (out / "shootout.md").read_text()
    assert "| structure | estimator | law | cosine |" in table
    assert "arborescence (n=4) | imle | pam |" in table
    assert "categorical (n=5) | t-reinforce+ | rg (= pam) |" in table
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert len(rows) == 30 and {r["law"] for r in rows} == {"rg", "pam"}
    for name in ("heatmap_cosine.png", "heatmap_logvar.png"):
        assert_png(out / name)
    assert "| estimator |" in capsys.readouterr().out


def test_config_read_back_and_device(tmp_path, capsys):
    pair = ["--structures", "categorical", "--estimators", "ste", "--no-progress"]
    argv = ["--smoke", "--draws", "50", *pair]
    APP.config_and_device(capsys, argv, tmp_path, command=[], extra=pair)


def test_config_reads_back_the_selection(tmp_path, capsys):
    # config.json held the numeric settings only: the rerun measured every pair.
    a, b, c = (str(tmp_path / x) for x in "abc")
    pair = ["--structures", "categorical", "--estimators", "ste,sst"]
    assert main(["--smoke", "--draws", "20", "--no-progress", "--out", a, *pair]) == 0
    saved = json.loads((tmp_path / "a" / "config.json").read_text())
    assert saved["structures"] == ["categorical"] and saved["estimators"] == ["ste", "sst"]
    assert main(["--config", f"{a}/config.json", "--no-progress", "--out", b]) == 0
    rows = [json.loads(line) for line in (tmp_path / "b" / "rows.jsonl").read_text().splitlines()]
    assert [(r["structure"], r["estimator"]) for r in rows] == [
        ("categorical", "ste"),
        ("categorical", "sst"),
    ]
    given = ["--config", f"{a}/config.json", "--no-progress", "--out", c, "--estimators", "ste"]
    assert main(given) == 0  # a flag given wins
    assert len((tmp_path / "c" / "rows.jsonl").read_text().splitlines()) == 1


def test_resume_reuses_matching_rows(tmp_path, capsys):
    out = tmp_path / "run"
    argv = [
        "--smoke",
        "--out",
        str(out),
        "--no-progress",
        "--structures",
        "categorical",
        "--estimators",
        "t-reinforce,imle",
    ]
    assert main(argv) == 0
    first = (out / "rows.jsonl").read_text()
    assert main([*argv, "--resume"]) == 0
    assert (out / "rows.jsonl").read_text() == first  # nothing re-measured
    assert main([*argv, "--resume", "--seed", "1"]) == 0  # other settings: re-measured
    assert (out / "rows.jsonl").read_text() != first


def test_resume_measures_hand_edited_rows_again(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["--smoke", "--out", str(out), "--no-progress", "--structures", "categorical",
            "--estimators", "t-reinforce,imle,ste"]  # fmt: skip
    assert main(argv) == 0
    rows = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    rows[0].pop("cosine")  # no column: KeyError
    rows[1]["cosine"] = "x"  # no number: ValueError in the table
    (out / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main([*argv, "--resume"]) == 0
    again = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert [r["estimator"] for r in again] == ["ste", "t-reinforce", "imle"]  # two re-measured
    assert again[0] == rows[2] and all(isinstance(r["cosine"], float) for r in again)


def test_resume_with_a_smaller_selection_keeps_the_other_rows(tmp_path, capsys):
    out = tmp_path / "run"
    base = ["--smoke", "--out", str(out), "--no-progress", "--structures", "categorical"]
    assert main([*base, "--estimators", "t-reinforce,imle,sst"]) == 0
    before = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert main([*base, "--estimators", "t-reinforce,ste", "--resume"]) == 0
    after = [json.loads(line) for line in (out / "rows.jsonl").read_text().splitlines()]
    assert [r["estimator"] for r in after] == ["imle", "sst", "t-reinforce", "ste"]
    assert after[:3] == [before[1], before[2], before[0]]  # kept as they were
    table = (out / "shootout.md").read_text()  # the table shows the selection
    assert "| ste |" in table and "| imle |" not in table


def test_existing_rows_need_resume_or_overwrite(tmp_path, capsys):
    argv = ["--smoke", "--out", str(tmp_path), "--no-progress", "--structures", "categorical"]
    argv += ["--estimators", "imle"]  # one pair: its heat-map must lay out without warnings
    assert main(argv) == 0
    APP.fail(capsys, argv, "already holds rows; pass --resume or --overwrite")
    assert main([*argv, "--overwrite"]) == 0


def test_rows_are_logged_as_pairs_finish(tmp_path, monkeypatch):
    """An interrupted run keeps the rows of the pairs done so far (for --resume)."""
    import shootout.run as run_module

    real = run_module.evaluate_pair
    calls = []

    def flaky(**task):
        if calls:
            raise KeyboardInterrupt  # the second pair: interrupted
        calls.append(task)
        return real(**task)

    monkeypatch.setattr(run_module, "evaluate_pair", flaky)
    argv = ["--smoke", "--out", str(tmp_path), "--no-progress", "--structures", "categorical"]
    with pytest.raises(KeyboardInterrupt):
        main([*argv, "--estimators", "imle,ste"])
    rows = (tmp_path / "rows.jsonl").read_text().splitlines()
    assert len(rows) == 1 and '"imle"' in rows[0]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--structures", "grid"], "unknown structure 'grid'"),
        (["--estimators", "magic"], "unknown estimator 'magic'"),
        (["--estimators", "aimle-fwd"], "estimator 'aimle-fwd' is now called 'aimle'"),
        (["--estimators", "reinforce-ema"], "estimator 'reinforce-ema' is now called 'reinforce'"),
        (["--structures", "binary_tree", "--estimators", "imle"], "no estimator of imle"),
        (["--draws", "1"], "--draws must be >= 2"),
        (["--jobs", "0"], "--jobs must be >= 1"),
        (["--tau", "0"], "--tau must be > 0"),
        (["--draws", "many"], "invalid int value"),
        (["--resume", "--overwrite"], "--resume and --overwrite exclude each other"),
    ],
)
def test_user_mistakes_are_one_line_errors(tmp_path, capsys, argv, message):
    APP.fail(capsys, ["--smoke", "--out", str(tmp_path), *argv], message)


def test_out_is_a_file(tmp_path, capsys):
    path = tmp_path / "file"
    path.write_text("x")
    APP.fail(capsys, ["--smoke", "--out", str(path)], "not a directory")


def test_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--draws",
        "--structures",
        "--estimators",
        "--smoke",
        "--out",
        "--jobs",
        "--seed",
        "--tau",
        "--warmup",
        "--reference-samples",
        "--resume",
    ):
        assert flag in text


@pytest.mark.parametrize("out", ["", " "])
def test_an_empty_out_is_refused(tmp_path, capsys, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    APP.fail(capsys, ["--smoke", "--out", out], "argument --out: needs a path, got an empty value")
    assert not list(tmp_path.iterdir())  # nothing written into the current folder
