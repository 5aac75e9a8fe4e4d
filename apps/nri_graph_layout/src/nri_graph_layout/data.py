"""The graph-layout data set: random trees laid out by Fruchterman–Reingold.

Each sample (Paulus et al. 2020, §3.1 of the reference notes):

1. a tree on ``n`` vertices: the maximum spanning tree (Kruskal) of i.i.d.
   standard Gumbel weights, one per undirected edge (not uniform over trees);
2. ``T`` frames of the networkx ``spring_layout`` dynamics on that tree, started
   from ``N(0, I)`` positions: the first frame after one iteration, every later
   frame one more call with ``iterations=1`` on the previous frame (plus
   ``noise_std · N(0, I)``), each call with ``k = 1/sqrt(n)``, a temperature of
   0.1 × the current extent and a final rescale (subtract the mean, divide by
   the largest |coordinate|), so every frame lies in ``[-1, 1]`` with max |x| = 1.

:func:`spring_step` is networkx's dense ``_fruchterman_reingold`` (one
iteration) followed by ``rescale_layout``, vectorised over the batch; the tests
check it against ``networkx.spring_layout`` itself.

Files are ``.npz`` (no pickle) with ``{split}_trajectories`` float32
``[S, n, T, 2]`` (vertex, time, coordinate), ``{split}_edges`` uint8 ``[S, n, n]``
(symmetric 0/1, zero diagonal) for ``split`` in train/valid/test, and int64
scalars ``num_vertices``, ``num_timesteps``, ``seed``, ``format_version``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from structgrad_app_common import CLIError, atomic_save_npz, load_npz

from structgrad.solvers import max_spanning_tree

SPLITS = ("train", "valid", "test")
FORMAT_VERSION = 1
DIMS = 2
_CHUNK = 4096  # samples per vectorised block (bounded memory)


def random_trees(num: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """Maximum spanning trees of Gumbel(0, 1) edge weights.

    Args:
        num: number of trees.
        n: vertices per tree.
        rng: numpy generator.

    Returns:
        uint8 ``[num, n, n]`` symmetric adjacency matrices with ``n - 1`` edges.
    """
    weights = rng.gumbel(size=(num, n, n))  # the solver reads the upper triangle only
    return max_spanning_tree(weights).astype(np.uint8)


def spring_step(pos: np.ndarray, adj: np.ndarray) -> np.ndarray:
    """One ``networkx.spring_layout(G, pos=pos, iterations=1)`` call, batched.

    Args:
        pos: ``[B, n, 2]`` float64 positions.
        adj: ``[B, n, n]`` float64 adjacency.

    Returns:
        ``[B, n, 2]`` new positions, centred and rescaled so max |coord| = 1.
    """
    n = pos.shape[-2]
    k = np.sqrt(1.0 / n)  # networkx's optimal distance for k=None
    # Temperature: 0.1 × the largest coordinate extent; one iteration uses it whole.
    extent = pos.max(axis=-2) - pos.min(axis=-2)  # [B, 2]
    t = extent.max(axis=-1) * 0.1  # [B]
    delta = pos[:, :, None, :] - pos[:, None, :, :]  # [B, n, n, 2]
    distance = np.maximum(np.linalg.norm(delta, axis=-1), 0.01)  # minimum distance 0.01
    force = k * k / distance**2 - adj * distance / k  # repulsion − attraction along edges
    displacement = np.einsum("bijk,bij->bik", delta, force)
    length = np.maximum(np.linalg.norm(displacement, axis=-1), 0.01)
    pos = pos + displacement * (t[:, None] / length)[..., None]
    # rescale_layout: centre each axis, then scale the largest |coordinate| to 1.
    pos = pos - pos.mean(axis=-2, keepdims=True)
    lim = np.abs(pos).max(axis=(-2, -1), keepdims=True)
    return pos / np.where(lim > 0, lim, 1.0)


def layout_frames(
    adj: np.ndarray, num_timesteps: int, rng: np.random.Generator, *, noise_std: float = 0.0
) -> np.ndarray:
    """Fruchterman–Reingold trajectories of the given graphs.

    Args:
        adj: ``[B, n, n]`` adjacency.
        num_timesteps: frames ``T``.
        rng: numpy generator (initial positions and noise).
        noise_std: standard deviation of the Gaussian noise added before each
            later frame (0: none).

    Returns:
        float64 ``[B, n, T, 2]`` positions in ``[-1, 1]``.
    """
    adj = adj.astype(np.float64)
    b, n, _ = adj.shape
    pos = rng.standard_normal((b, n, DIMS))
    frames = []
    for step in range(num_timesteps):
        if step > 0 and noise_std > 0:
            pos = pos + noise_std * rng.standard_normal(pos.shape)
        pos = spring_step(pos, adj)
        frames.append(pos)
    return np.stack(frames, axis=2)


@dataclass(frozen=True)
class GenerateConfig:
    """Sizes and seed of a data set (defaults: the reference's T=10 data).

    Attributes:
        num_train: training graphs.
        num_valid: validation graphs.
        num_test: test graphs.
        num_vertices: vertices per graph ``n``.
        num_timesteps: frames per trajectory ``T``.
        noise_std: Gaussian noise added before each frame after the first.
        seed: seed; each split draws from its own child stream, so changing one
            split's size leaves the others unchanged.
    """

    num_train: int = 50_000
    num_valid: int = 10_000
    num_test: int = 10_000
    num_vertices: int = 10
    num_timesteps: int = 10
    noise_std: float = 0.0
    seed: int = 42


def generate(config: GenerateConfig, *, progress: bool = False) -> dict[str, np.ndarray | np.int64]:
    """Generate all three splits in memory (the ``.npz`` layout; the sizes as ``np.int64``)."""
    from tqdm.auto import tqdm

    if config.num_vertices < 2 or config.num_timesteps < 2:
        raise CLIError("need --num-vertices >= 2 and --num-timesteps >= 2")
    sizes = {"train": config.num_train, "valid": config.num_valid, "test": config.num_test}
    if min(sizes.values()) < 1:
        raise CLIError(f"every split needs at least one graph, got {sizes}")
    streams = np.random.SeedSequence(config.seed).spawn(len(SPLITS))
    arrays: dict[str, np.ndarray | np.int64] = {}
    total = sum(sizes.values())
    with tqdm(total=total, desc="generate", unit="graph", disable=not progress) as bar:
        for split, stream in zip(SPLITS, streams, strict=True):
            rng = np.random.default_rng(stream)
            xs, es = [], []
            for start in range(0, sizes[split], _CHUNK):
                num = min(_CHUNK, sizes[split] - start)
                edges = random_trees(num, config.num_vertices, rng)
                xs.append(
                    layout_frames(edges, config.num_timesteps, rng, noise_std=config.noise_std)
                )
                es.append(edges)
                bar.update(num)
            arrays[f"{split}_trajectories"] = np.concatenate(xs).astype(np.float32)
            arrays[f"{split}_edges"] = np.concatenate(es)
    arrays["num_vertices"] = np.int64(config.num_vertices)
    arrays["num_timesteps"] = np.int64(config.num_timesteps)
    arrays["seed"] = np.int64(config.seed)
    arrays["format_version"] = np.int64(FORMAT_VERSION)
    return arrays


def default_filename(config: GenerateConfig) -> str:
    """``graph_layout_n{n}_T{T}[_noise{σ}]_seed{seed}.npz``."""
    noise = f"_noise{config.noise_std:g}" if config.noise_std > 0 else ""
    return (
        f"graph_layout_n{config.num_vertices}_T{config.num_timesteps}{noise}_seed{config.seed}.npz"
    )


def save(path: str | os.PathLike[str], arrays: Mapping[str, np.ndarray | np.generic]) -> None:
    """Write a data set atomically (checked first, so a bad set is never written)."""
    _validate(arrays, str(path))
    atomic_save_npz(path, arrays)


@dataclass(frozen=True)
class Dataset:
    """A loaded data set.

    Attributes:
        trajectories: split → float32 ``[S, n, T, 2]``.
        edges: split → uint8 ``[S, n, n]``.
        num_vertices: ``n``.
        num_timesteps: ``T``.
        seed: generator seed.
    """

    trajectories: dict[str, np.ndarray]
    edges: dict[str, np.ndarray]
    num_vertices: int
    num_timesteps: int
    seed: int


def _validate(arrays: Mapping[str, np.ndarray | np.generic], where: str) -> None:
    """Raise a one-line ``CLIError`` unless the arrays form a valid data set."""
    for key in ("num_vertices", "num_timesteps", "seed", "format_version"):
        if key not in arrays:
            raise CLIError(f"{where}: missing key {key!r}")
        if np.asarray(arrays[key]).shape != () or np.asarray(arrays[key]).dtype.kind not in "iu":
            raise CLIError(f"{where}: {key!r} must be an integer scalar")
    if int(arrays["format_version"]) != FORMAT_VERSION:
        raise CLIError(
            f"{where}: format_version {int(arrays['format_version'])} is not {FORMAT_VERSION}"
        )
    n, t = int(arrays["num_vertices"]), int(arrays["num_timesteps"])
    if n < 2 or t < 2:  # as generate refuses them
        raise CLIError(f"{where}: needs num_vertices >= 2 and num_timesteps >= 2, got {n} and {t}")
    for split in SPLITS:
        xk, ek = f"{split}_trajectories", f"{split}_edges"
        for key in (xk, ek):
            if key not in arrays:
                raise CLIError(f"{where}: missing key {key!r}")
        x, e = np.asarray(arrays[xk]), np.asarray(arrays[ek])
        if x.dtype != np.float32 or x.ndim != 4 or x.shape[1:] != (n, t, DIMS) or len(x) < 1:
            raise CLIError(
                f"{where}: {xk!r} must be float32 [S, {n}, {t}, {DIMS}] with S >= 1, "
                f"got {x.dtype} {list(x.shape)}"
            )
        if e.dtype != np.uint8 or e.shape != (len(x), n, n):
            raise CLIError(
                f"{where}: {ek!r} must be uint8 [{len(x)}, {n}, {n}], got {e.dtype} {list(e.shape)}"
            )
        if not np.isfinite(x).all():
            raise CLIError(f"{where}: {xk!r} has NaN or inf")
        _check_trees(e, f"{where}: {ek!r}")


def _check_trees(e: np.ndarray, where: str) -> None:
    """Raise unless every ``[n, n]`` of ``e`` is a 0/1 symmetric adjacency of a tree."""
    n = e.shape[-1]
    if e.max(initial=0) > 1:
        raise CLIError(f"{where} must hold 0/1 adjacencies, got values up to {int(e.max())}")
    if not (e == e.transpose(0, 2, 1)).all() or np.diagonal(e, axis1=1, axis2=2).any():
        raise CLIError(f"{where} must be symmetric adjacencies without self-loops")
    counts = e.sum(axis=(1, 2), dtype=np.int64) // 2
    if (counts != n - 1).any():
        bad = int(np.flatnonzero(counts != n - 1)[0])
        raise CLIError(
            f"{where}: graph {bad} has {int(counts[bad])} edges, a tree on {n} vertices {n - 1}"
        )
    # n - 1 edges and connected: a tree (a triangle beside an edge passed the count).
    # Vertices within 2^k steps of each other, by repeated squaring of (I + A).
    reach = (e + np.eye(n, dtype=e.dtype)).astype(np.float32)
    for _ in range(max(n - 1, 1).bit_length()):
        reach = np.minimum(reach @ reach, 1.0)
    if len(e) and not reach[:, 0].all():
        bad = int(np.flatnonzero(~reach[:, 0].all(-1))[0])
        raise CLIError(f"{where}: graph {bad} is not connected, so not a tree")


def load(path: str | os.PathLike[str]) -> Dataset:
    """Load and validate a data set written by :func:`save`.

    Raises:
        CLIError: a one-line message if the file is missing, not a readable
            ``.npz`` (or would need pickle), or has wrong keys, shapes or dtypes.
    """
    path = Path(path)
    arrays = load_npz(path, expected="an .npz written by `generate`")
    _validate(arrays, str(path))
    return Dataset(
        trajectories={s: arrays[f"{s}_trajectories"] for s in SPLITS},
        edges={s: arrays[f"{s}_edges"] for s in SPLITS},
        num_vertices=int(arrays["num_vertices"]),
        num_timesteps=int(arrays["num_timesteps"]),
        seed=int(arrays["seed"]),
    )
