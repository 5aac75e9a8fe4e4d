"""BeerAdvocate reviews (Lei et al. 2016) from local files, in the reference's format.

A data folder holds four files (the content of the reference's ``l2x-data.tar.gz``;
nothing is downloaded here):

- ``reviews.aspect{A}.train.txt`` and ``reviews.aspect{A}.heldout.txt``: one
  review per line, ``r0 r1 ... <TAB> w1 w2 ...``: whitespace-separated
  normalised ratings in [0, 1] (column ``A`` is the target; the usual order is
  appearance, aroma, palate, taste, overall), a tab, then the tokens separated
  by whitespace (the files are already lower-cased and tokenised).
- ``annotations.json``: one JSON object per line with ``"x"`` (the token list)
  and, per aspect ``"0"``, ``"1"``, ``"2"``, a list of ``[start, end)`` token
  spans that human annotators marked for that aspect.
- ``review+wiki.filtered.200.txt``: word embeddings, one word per line
  followed by its vector (200 floats in the reference; the size is read from
  the file and must be the same on every line).

Vocabulary: the training tokens in first-seen order get ids 3, 4, ...; 0 is
padding, 1 ``<START>`` (unused, as in the reference), 2 ``<UNK>`` for tokens
outside the training vocabulary. Words without an embedding get a zero row.
Sequences keep their first ``max_len`` tokens and are padded at the front
(Keras ``pad_sequences(padding="pre")``, as the reference).

References:
    Lei, Barzilay and Jaakkola, "Rationalizing Neural Predictions", EMNLP 2016,
    https://arxiv.org/abs/1606.04155.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from structgrad_app_common import CLIError

__all__ = ["BeerData", "file_names", "load", "pad"]

PAD, START, UNK = 0, 1, 2


def file_names(aspect: int) -> dict[str, str]:
    """The file names a data folder must hold for ``aspect``."""
    return {
        "train": f"reviews.aspect{aspect}.train.txt",
        "heldout": f"reviews.aspect{aspect}.heldout.txt",
        "annotations": "annotations.json",
        "embeddings": "review+wiki.filtered.200.txt",
    }


@dataclass(frozen=True)
class BeerData:
    """A loaded BeerAdvocate aspect.

    Attributes:
        x_train: int64 ``[N, L]`` token ids; ``y_train`` float32 ``[N]`` ratings.
        x_heldout: int64 ``[H, L]``; ``y_heldout`` float32 ``[H]`` (split into
            validation and test halves per seed by the trainer).
        embeddings: float32 ``[V, D]`` (row 0 = padding = zeros).
        x_annotated: int64 ``[M, L]`` annotated reviews.
        annotated_tokens: bool ``[M, L]`` positions holding a review token.
        annotated_spans: bool ``[M, L]`` positions inside an annotated span.
        vocab: the id → word list.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_heldout: np.ndarray
    y_heldout: np.ndarray
    embeddings: np.ndarray
    x_annotated: np.ndarray
    annotated_tokens: np.ndarray
    annotated_spans: np.ndarray
    vocab: list[str]


def pad(ids: list[list[int]], max_len: int) -> np.ndarray:
    """Keep the first ``max_len`` ids of each sequence and pad at the front with 0."""
    out = np.zeros((len(ids), max_len), dtype=np.int64)
    for i, seq in enumerate(ids):
        seq = seq[:max_len]
        if seq:
            out[i, max_len - len(seq) :] = seq
    return out


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        raise CLIError(f"BeerAdvocate file not found: {str(path)!r}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise CLIError(f"cannot read {str(path)!r}: {err}") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise CLIError(f"{str(path)!r} is empty")
    return lines


def _reviews(path: Path, aspect: int) -> tuple[list[list[str]], np.ndarray]:
    docs, ratings = [], []
    for no, line in enumerate(_lines(path), 1):
        head, tab, text = line.partition("\t")
        try:
            values = [float(v) for v in head.split()]
        except ValueError:
            values = []
        if not tab or not values:
            raise CLIError(
                f"{path.name}:{no}: expected '<ratings> TAB <tokens>' with numeric ratings"
            )
        if aspect >= len(values):
            raise CLIError(f"{path.name}:{no}: no rating column {aspect} (has {len(values)})")
        if not 0.0 <= values[aspect] <= 1.0:  # NaN fails too
            raise CLIError(
                f"{path.name}:{no}: rating {values[aspect]} outside [0, 1] (normalised ratings)"
            )
        docs.append(text.split())
        ratings.append(values[aspect])
    return docs, np.asarray(ratings, dtype=np.float32)


def _embeddings(path: Path, vocab: dict[str, int]) -> np.ndarray:
    matrix: np.ndarray | None = None
    for no, line in enumerate(_lines(path), 1):
        word, *values = line.split()
        try:
            vec = np.asarray(values, dtype=np.float32)
        except ValueError:
            raise CLIError(f"{path.name}:{no}: non-numeric embedding value") from None
        if not np.isfinite(vec).all():
            raise CLIError(f"{path.name}:{no}: the vector of {word!r} is not finite")
        if matrix is None:
            if vec.size == 0:
                raise CLIError(f"{path.name}:{no}: a word without a vector")
            matrix = np.zeros((len(vocab), vec.size), dtype=np.float32)
        if vec.size != matrix.shape[1]:
            raise CLIError(
                f"{path.name}:{no}: vector of size {vec.size}, expected {matrix.shape[1]}"
            )
        if word in vocab:
            matrix[vocab[word]] = vec
    assert matrix is not None  # _lines refuses empty files
    matrix[PAD] = 0.0
    return matrix


def _annotations(
    path: Path, aspect: int, vocab: dict[str, int], max_len: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids, tokens, spans = [], [], []
    for no, line in enumerate(_lines(path), 1):
        try:
            item = json.loads(line)
            words = item["x"]
            ranges = item[str(aspect)]
            if not isinstance(words, list) or not all(isinstance(w, str) for w in words):
                raise TypeError("'x' must be a list of strings")
            bounds = [(int(a), int(b)) for a, b in ranges]
        # OverflowError: int() of a span bound 1e999 (inf); RecursionError:
        # json.loads of a line nested thousands of brackets deep.
        except (
            json.JSONDecodeError,
            KeyError,
            TypeError,
            ValueError,
            OverflowError,
            RecursionError,
        ) as err:
            raise CLIError(
                f"{path.name}:{no}: expected a JSON object with 'x' (tokens) and "
                f"'{aspect}' ([start, end) spans): {type(err).__name__} {err}"
            ) from None
        n = min(len(words), max_len)
        offset = max_len - n  # pre-padding shifts token i to column offset + i
        tok = np.zeros(max_len, dtype=bool)
        tok[offset:] = True
        span = np.zeros(max_len, dtype=bool)
        for a, b in bounds:
            a, b = max(a, 0), min(b, n)
            if a < b:
                span[offset + a : offset + b] = True
        ids.append([vocab.get(w, UNK) for w in words])
        tokens.append(tok)
        spans.append(span)
    return pad(ids, max_len), np.stack(tokens), np.stack(spans)


def load(folder: str | Path, *, aspect: int = 1, max_len: int = 350) -> BeerData:
    """Load one aspect of BeerAdvocate from a data folder (see the module docstring).

    Args:
        folder: the folder holding the four files.
        aspect: rating column and annotation key (0 appearance, 1 aroma, 2 palate).
        max_len: sequence length L (350 in the reference).

    Returns:
        The arrays.

    Raises:
        CLIError: one line naming the missing or malformed file (and line).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CLIError(f"--data {str(folder)!r} is not a folder (BeerAdvocate needs a folder)")
    if aspect < 0 or max_len < 1:
        raise CLIError(f"--aspect must be >= 0 and --max-len >= 1, got {aspect}, {max_len}")
    names = file_names(aspect)
    train_docs, y_train = _reviews(folder / names["train"], aspect)
    vocab = {"<PAD>": PAD, "<START>": START, "<UNK>": UNK}
    for doc in train_docs:
        for word in doc:
            vocab.setdefault(word, len(vocab))
    held_docs, y_held = _reviews(folder / names["heldout"], aspect)
    x_ann, tok, span = _annotations(folder / names["annotations"], aspect, vocab, max_len)
    emb = _embeddings(folder / names["embeddings"], vocab)

    def encode(docs: list[list[str]]) -> np.ndarray:
        return pad([[vocab.get(w, UNK) for w in d] for d in docs], max_len)

    return BeerData(
        x_train=encode(train_docs),
        y_train=y_train,
        x_heldout=encode(held_docs),
        y_heldout=y_held,
        embeddings=emb,
        x_annotated=x_ann,
        annotated_tokens=tok,
        annotated_spans=span,
        vocab=list(vocab),
    )
