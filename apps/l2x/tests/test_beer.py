import json

import numpy as np
import pytest
from l2x import beer
from l2x.cli import main
from structgrad_app_common import CLIError
from structgrad_app_common.testing import assert_cli_error

WORDS = ["the", "beer", "smells", "of", "citrus", "and", "pine", "dark", "head", "taste"]


def test_loader_on_tiny_files(beer_folder):
    folder = beer_folder()
    d = beer.load(folder, aspect=1, max_len=8)
    assert d.vocab[:3] == ["<PAD>", "<START>", "<UNK>"]
    assert d.vocab[3:] == WORDS  # first-seen order of the training tokens
    assert d.x_train.shape == (24, 8) and d.x_train.dtype == np.int64
    # Review 0 has 5 tokens: pre-padded with 3 zeros; review 6 has 11, truncated to its first 8.
    assert d.x_train[0].tolist() == [0, 0, 0, 3, 4, 5, 6, 7]
    assert d.x_train[6].tolist() == [d.vocab.index(WORDS[(6 + j) % 10]) for j in range(8)]
    # Ratings: column 1 of "r0 r1 ...", r_j = ((7i + j) mod 10) / 10.
    np.testing.assert_allclose(d.y_train[:3], [0.1, 0.8, 0.5])
    assert beer.UNK in d.x_heldout[-1]  # "stout" is not a training word
    assert d.embeddings.shape == (len(d.vocab), 4)
    np.testing.assert_allclose(d.embeddings[3], [0.1, 0.2, 0.3, 0.4])
    assert not d.embeddings[d.vocab.index("taste")].any() and not d.embeddings[0].any()
    # Annotations: review 0 (5 tokens -> columns 3..7), aspect 1 span [2, 5).
    assert d.annotated_tokens[0].tolist() == [False] * 3 + [True] * 5
    assert np.flatnonzero(d.annotated_spans[0]).tolist() == [5, 6, 7]
    assert np.flatnonzero(d.annotated_spans[1]).tolist() == [4, 7]
    assert d.x_annotated[1, 6] == beer.UNK  # "mystery"


def _fails(folder, message):
    with pytest.raises(CLIError) as err:
        beer.load(folder, aspect=1, max_len=8)
    assert "\n" not in str(err.value) and message in str(err.value), str(err.value)


def test_malformed_files(tmp_path, beer_folder):
    _fails(tmp_path / "nowhere", "is not a folder")
    folder = beer_folder("a")
    (folder / "annotations.json").unlink()
    _fails(folder, "file not found")
    folder = beer_folder("b")
    (folder / "reviews.aspect1.train.txt").write_text("0.1 0.2 no tab here\n")
    _fails(folder, "reviews.aspect1.train.txt:1: expected '<ratings> TAB <tokens>'")
    folder = beer_folder("c")
    (folder / "reviews.aspect1.heldout.txt").write_text("0.5\tone short rating\n")
    _fails(folder, "no rating column 1")
    folder = beer_folder("d")
    with open(folder / "review+wiki.filtered.200.txt", "a") as f:
        f.write("odd 1 2\n")
    _fails(folder, "vector of size 2, expected 4")
    folder = beer_folder("e")
    (folder / "annotations.json").write_text(json.dumps({"x": ["a"], "0": []}) + "\n")
    _fails(folder, "annotations.json:1: expected a JSON object with 'x'")
    folder = beer_folder("f")
    (folder / "review+wiki.filtered.200.txt").write_text("")
    _fails(folder, "is empty")
    folder = beer_folder("g")
    (folder / "reviews.aspect1.train.txt").write_bytes(b"\xff\xfe\x00bad")
    _fails(folder, "cannot read")
    for name, rating in [("h", "nan"), ("i", "7.5")]:
        folder = beer_folder(name)
        (folder / "reviews.aspect1.heldout.txt").write_text(f"0.5 {rating} 0.5\tsome words\n")
        _fails(folder, f"rating {float(rating)} outside [0, 1]")
    folder = beer_folder("j")
    with open(folder / "review+wiki.filtered.200.txt", "a") as f:
        f.write("odd 1 nan 2 3\n")
    _fails(folder, "the vector of 'odd' is not finite")


def test_annotation_values_out_of_range_are_one_line(beer_folder, tmp_path, capsys):
    # A bound of 1e999 (inf) was an OverflowError, deep nesting a RecursionError.
    lines = {
        "inf": '{"x": ["the", "beer"], "0": [], "1": [[1e999, 2]], "2": []}\n',
        "deep": '{"x": ' + "[" * 100_000 + "\n",
    }
    for name, line in lines.items():
        folder = beer_folder(name)
        (folder / "annotations.json").write_text(line)
        _fails(folder, "annotations.json:1: expected a JSON object with 'x'")
    # The command line says so in one line too (train and eval --data read the folder).
    argv = ["train", "--task", "beer", "--data", str(folder), "--smoke", "--no-progress"]
    argv += ["--out", str(tmp_path / "run")]
    assert_cli_error(capsys, main, argv, "annotations.json:1", prog="l2x")
