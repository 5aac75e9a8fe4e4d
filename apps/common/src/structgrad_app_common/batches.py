"""Training orders and noise fixed by (seed, epoch) or (seed, step), so runs resume exactly."""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from typing import Any

__all__ = [
    "derived_generator",
    "epoch_batch",
    "global_seed",
    "shuffled",
    "steps_per_epoch",
    "torch_seed",
]

# torch's global RNG is one per process: runs in threads (joblib's threading
# backend) take turns at seeding it and drawing their initial weights.
_GLOBAL_RNG = threading.Lock()


@contextlib.contextmanager
def global_seed(seed: int) -> Iterator[None]:
    """Seed torch's global RNG with ``seed`` and hold it for the block (e.g. a model's init).

    Runs in the threads of one process share that RNG: the lock makes seeding
    and the block's draws one step, so each run's initial weights depend on its
    seed alone. Draws outside such a block (e.g. dropout during training) stay
    shared between threads; processes (loky, the default) are not affected.
    """
    import torch

    with _GLOBAL_RNG:
        torch.manual_seed(seed)
        yield


# Spreads (seed, index) pairs over distinct generator seeds.
_SEED_STRIDE = 1_000_003
# ``torch.Generator.manual_seed`` takes an unsigned 64-bit seed (and wraps a
# negative one into that range); a larger integer raises ``OverflowError``.
_TORCH_SEEDS = 2**64


def torch_seed(value: int) -> int:
    """``value`` as a seed ``manual_seed`` accepts: reduced modulo ``2**64``.

    A value torch takes already (``0 <= value < 2**64``) is returned unchanged,
    so the streams of those seeds stay what they were; only a derived seed past
    the range (e.g. ``seed * stride + index`` of a seed near ``2**63``) wraps.
    """
    return value % _TORCH_SEEDS


def derived_generator(seed: int, index: int, device: Any = "cpu") -> Any:
    """A ``torch.Generator`` on ``device`` seeded by ``(seed, index)`` alone (resumable noise).

    Every ``seed`` in ``[0, 2**63)`` works: see :func:`torch_seed`.
    """
    import torch

    return torch.Generator(device).manual_seed(torch_seed(seed * _SEED_STRIDE + index))


def shuffled(n: int, *, seed: int, epoch: int) -> Any:
    """The training order of ``epoch``: a permutation of ``n`` fixed by (seed, epoch).

    A resumed run therefore sees the same batches as an uninterrupted one.
    """
    import torch

    return torch.randperm(n, generator=derived_generator(seed, epoch))


def steps_per_epoch(
    n: int, batch_size: int, *, drop_last: bool = False, no_single: bool = False
) -> int:
    """Batches in an epoch of ``n`` items (a last, smaller batch counts unless ``drop_last``).

    ``no_single``: a last batch of one item joins the one before (BatchNorm
    cannot train on a single item).
    """
    if no_single and n > batch_size and n % batch_size == 1:
        return n // batch_size
    return max(1, n // batch_size if drop_last else -(-n // batch_size))


def epoch_batch(
    step: int,
    n: int,
    batch_size: int,
    *,
    seed: int,
    drop_last: bool = False,
    no_single: bool = False,
    first_epoch: int = 1,
) -> Any:
    """The indices of optimiser step ``step`` (1-based): batches of :func:`shuffled` epochs.

    A function of (seed, step) only, so a resumed run sees the same batches as
    an uninterrupted one. ``first_epoch`` numbers the first epoch's order;
    ``drop_last`` and ``no_single`` as in :func:`steps_per_epoch`.
    """
    per_epoch = steps_per_epoch(n, batch_size, drop_last=drop_last, no_single=no_single)
    epoch, i = divmod(step - 1, per_epoch)
    end = n if no_single and i == per_epoch - 1 and n % batch_size == 1 else (i + 1) * batch_size
    return _order(n, seed, epoch + first_epoch)[i * batch_size : end]


@functools.lru_cache(maxsize=2)
def _order(n: int, seed: int, epoch: int) -> Any:
    # One permutation per epoch, not per step (callers only slice it).
    return shuffled(n, seed=seed, epoch=epoch)
