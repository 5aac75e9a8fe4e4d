"""Fixtures: a tiny BeerAdvocate-format folder written by the tests."""

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")


WORDS = ["the", "beer", "smells", "of", "citrus", "and", "pine", "dark", "head", "taste"]


def write_beer(folder: Path, *, aspect: int = 1, n_train: int = 24, n_held: int = 8) -> Path:
    """Write the four files of one aspect; reviews are short word sequences."""
    folder.mkdir(parents=True, exist_ok=True)

    def review(i: int) -> str:
        ratings = " ".join(f"{((i * 7 + j) % 10) / 10:.1f}" for j in range(5))
        tokens = " ".join(WORDS[(i + j) % len(WORDS)] for j in range(5 + i % 7))
        return f"{ratings}\t{tokens}\n"

    (folder / f"reviews.aspect{aspect}.train.txt").write_text(
        "".join(review(i) for i in range(n_train))
    )
    held = "".join(review(i) for i in range(100, 100 + n_held - 1)) + review(200).replace(
        "beer",
        "stout",  # a word outside the training vocabulary
    )
    (folder / f"reviews.aspect{aspect}.heldout.txt").write_text(held)
    annotations = [
        {"x": ["the", "beer", "smells", "of", "citrus"], "0": [[0, 1]], "1": [[2, 5]], "2": []},
        {"x": ["pine", "and", "mystery", "head"], "0": [], "1": [[0, 1], [3, 4]], "2": []},
    ]
    (folder / "annotations.json").write_text("".join(json.dumps(a) + "\n" for a in annotations))
    emb = "".join(
        f"{w} " + " ".join(f"{(i + 1) * 0.1 * (d + 1):.2f}" for d in range(4)) + "\n"
        for i, w in enumerate(WORDS[:-1])  # "taste" has no vector
    )
    (folder / "review+wiki.filtered.200.txt").write_text(emb + "unused 1 2 3 4\n")
    return folder


@pytest.fixture
def beer_folder(tmp_path):
    """``beer_folder(name, **kw)`` writes a tiny BeerAdvocate folder under tmp_path."""
    return lambda name="beer", **kw: write_beer(tmp_path / name, **kw)
