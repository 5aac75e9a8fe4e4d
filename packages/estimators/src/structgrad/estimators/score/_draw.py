"""What score-function layers share: the draw object and the ``attach`` plumbing.

``layer.draw(logits)`` returns a :class:`Draw`: the sample and everything the
estimator needs once the per-sample loss is known (the logits the draw came
from, the trace, the utilities). ``attach(loss, draw)`` turns the loss into the
loss to backpropagate. ``forward`` is ``draw(...).sample`` and keeps that draw
in :attr:`ScoreLayer.last_draw` until it is attached, so the plain
``z = layer(logits)`` then ``layer.attach(f(z))`` loop works (and the layer
holds nothing of the caller's graph afterwards); pass the sample or the draw to
``attach`` to say which draw a loss belongs to. A draw under ``torch.no_grad()``
(evaluation, logging) does not take the place of a draw waiting for its loss,
and ``attach(loss)`` warns when a second draw with gradients came before the
first was attached (it takes the second, as before).

Shapes: logits ``[*batch, *event]``; with ``samples=None`` one draw per row,
per-sample loss ``[*batch]``; with ``samples=K`` the logits are expanded to
``[K, *batch, *event]`` (so their gradients add up over ``K``, as for any
``expand``) and the per-sample loss is ``[K, *batch]``.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import torch
from torch import Tensor

from structgrad.distributions import LatentLayer, Structure
from structgrad.distributions.checks import check_int, check_options, check_tensor

from ..recursive import sample_with_trace
from ..recursive._prepare import RECURSIVE_STRUCTURES, traced

__all__ = ["Draw", "ScoreLayer"]


class Draw(NamedTuple):
    """One draw of a score-function layer.

    Attributes:
        sample: ``[*rows, *event]`` detached 0/1 structures (binary trees: the
            ``[*rows, n, n]`` adjacency).
        logits: ``[*rows, *event]`` scores the draw came from, still attached
            to the caller's graph (expanded to ``K`` samples in front if asked).
        trace: the structure's trace, batch shape ``rows``.
        utilities: ``[*rows, *event]`` detached utilities ``U = θ + G`` (float64).
        options: the structure options of the draw.
        rows: ``[K, *batch]`` or ``[*batch]``: the per-sample loss shape.
        extra: what the estimator computed at draw time (RELAX's critic terms).
    """

    sample: Tensor
    logits: Tensor
    trace: Any
    utilities: Tensor
    options: dict[str, Any]
    rows: torch.Size
    extra: Any = None


class ScoreLayer(LatentLayer):
    """Base of the score-function layers: structure, samples, draws and ``attach``.

    Args:
        structure: one of :data:`RECURSIVE_STRUCTURES`.
        samples: ``None`` for one draw per row without a sample dim, or ``K``.
        structure_options: ``k``, ``root``, ... (``lengths`` may also be given
            per call).
    """

    pathwise = False
    #: The subclass's own option names (for the unknown-option message).
    own_options: tuple[str, ...] = ()

    def __init__(
        self,
        structure: str | Structure,
        *,
        samples: int | None,
        structure_options: dict[str, Any],
    ) -> None:
        if isinstance(structure, Structure):
            structure = structure.name
        if structure not in RECURSIVE_STRUCTURES:
            raise ValueError(
                f"no score-function estimator for structure {structure!r}: it needs a "
                f"tractable trace; supported: {', '.join(RECURSIVE_STRUCTURES)}"
            )
        s = traced(structure)
        # The estimator's own options were taken by the subclass; name them too.
        check_options(
            f"{type(self).__name__}({structure!r})",
            structure_options,
            (*s.option_names, *self.own_options, "samples"),
        )
        s.options(dict(structure_options))  # now: no call can give a missing k later
        super().__init__(s, structure_options)
        self.traced = s
        self.samples = None if samples is None else check_int(samples, "samples", 1)
        #: The draw of the last :meth:`forward` call, until :meth:`attach` takes it
        #: (a draw without gradients leaves a draw with them waiting here).
        self.last_draw: Draw | None = None
        # Whether last_draw has gradients and waits for its loss; the last draw
        # without gradients made meanwhile; whether a draw with gradients
        # replaced one that was never attached.
        self._waiting = False
        self._plain_draw: Draw | None = None
        self._replaced = False

    def __getstate__(self) -> dict[str, Any]:
        """The module's state without :attr:`last_draw`.

        The draw holds the caller's graph (logits of a network, RELAX's critic
        terms): deepcopy refuses non-leaf tensors and pickling would store it.
        A copy starts without a draw, as a fresh layer does.
        """
        state = super().__getstate__() if hasattr(super(), "__getstate__") else self.__dict__
        fresh = {"last_draw": None, "_plain_draw": None, "_waiting": False, "_replaced": False}
        return {**state, **fresh}

    def draw(
        self,
        logits: Tensor,
        *,
        lengths: Any = None,
        generator: torch.Generator | None = None,
    ) -> Draw:
        """Draw the structure(s); the layer keeps nothing.

        Args:
            logits: ``[*batch, *event]`` scores θ.
            lengths: optional ``[*batch]`` sizes (structures that take them).
            generator: optional ``torch.Generator`` on the logits' device.
        """
        check_tensor(logits, "logits")
        ev = self.traced.event_dim
        if logits.ndim < ev:  # before the K samples are stacked in front
            raise ValueError(
                f"logits of {self.traced.name} need {ev} event dim(s), got shape "
                f"{tuple(logits.shape)}"
            )
        opts = dict(self.structure_options)
        if lengths is not None:
            # Per-call lengths [*batch] broadcast over the K samples in front.
            opts["lengths"] = lengths
        if self.samples is not None:
            # The expanded view keeps the graph even when drawn under no_grad:
            # attach takes the gradient later, as it does without samples.
            with torch.enable_grad():
                logits = logits.expand(self.samples, *logits.shape)
        # float64 utilities: E-REINFORCE's θ − U in float32 lost the noise at |θ| = 1e7
        drawn = sample_with_trace(self.traced.name, logits, generator=generator, wide=True, **opts)
        rows = logits.shape[: logits.ndim - ev]
        draw = Draw(drawn.sample, logits, drawn.trace, drawn.utilities, opts, rows)
        return draw._replace(extra=self.at_draw(draw, generator))

    def at_draw(self, draw: Draw, generator: torch.Generator | None) -> Any:
        """Hook: what the estimator computes when drawing (stored in ``draw.extra``)."""
        return None

    def _sample(self, logits: Tensor, lengths: Any, generator: torch.Generator | None) -> Tensor:
        """The detached sample of :meth:`draw`, ``[*batch, *event]`` (``K`` in front).

        The draw is kept in :attr:`last_draw` for :meth:`attach` (which clears it).
        A draw under ``no_grad`` leaves a draw with gradients there (the one a
        training step attaches after logging a sample).
        """
        draw = self.draw(logits, lengths=lengths, generator=generator)
        if torch.is_grad_enabled() and draw.logits.requires_grad:
            self._replaced = self._waiting  # one with gradients was never attached
            self.last_draw, self._plain_draw, self._waiting = draw, None, True
        elif self._waiting:
            self._plain_draw = draw
        else:
            self.last_draw = draw
        return draw.sample

    def attach(self, loss: Tensor, draw: Any = None, *, baseline: Tensor | None = None) -> Tensor:
        """Add the score-function term to the per-sample loss of a draw.

        Args:
            loss: ``[*rows]`` per-sample loss (``[K, *batch]`` with ``samples=K``)
                being minimised; it may carry its own graph (decoder parameters). A
                loss over a prefix of the rows (e.g. ``[B]`` for categorical edge
                types ``[B, E, C]``) is shared by the rows it covers: their
                structures are independent parts of one sample. With
                ``samples=K`` the sample dim must stay; shapes cannot tell a loss
                averaged over the samples (``[B]``) from a ``[K]`` one when ``B == K``.
            draw: the :class:`Draw` (from :meth:`draw`) or the sample tensor
                returned by :meth:`forward`; ``None``: :attr:`last_draw`. A
                forward's draw is attached once (``last_draw`` is cleared); a
                :class:`Draw` passed here may take several losses.
            baseline: a learned baseline ``[*batch]`` (``baseline="nvil"`` only).

        Returns:
            ``loss`` (same value) whose gradient w.r.t. the logits is the estimator.

        Raises:
            ValueError: no draw, a sample that is not the last draw's, a loss of
                the wrong shape, or a baseline the estimator does not take.

        Warns:
            UserWarning: ``draw=None`` after a later forward with gradients
                replaced a draw that was never attached (eager mode).
        """
        self.check_baseline(baseline)
        d = self._resolve(draw)
        if not isinstance(loss, Tensor) or not loss.is_floating_point():
            got = loss.dtype if isinstance(loss, Tensor) else type(loss).__name__
            raise ValueError(f"loss must be a floating torch.Tensor, got {got}")
        rows = d.rows
        extra = len(rows) - loss.ndim
        # With samples=K the loss keeps the sample dim: the K losses make the
        # baselines (leave-one-out, E/T-REINFORCE); a mean over them would not.
        kept = self.samples is None or loss.ndim >= 1
        if kept and extra > 0 and tuple(rows[: loss.ndim]) == tuple(loss.shape):
            # Several independent rows per loss (e.g. one categorical per edge of a
            # graph): log p of the whole is the sum over its rows, so every row gets
            # the loss; the zero-valued surrogates are summed back per loss entry.
            def spread(t: Tensor) -> Tensor:
                return t.reshape(*t.shape, *([1] * extra)).expand(rows)

            wide = spread(loss)
            out = self.estimate(wide, d, None if baseline is None else spread(baseline))
            return self._release(d, (out - wide).flatten(loss.ndim).sum(-1) + loss)
        if loss.shape != rows:
            want = "[K, *batch]" if self.samples is not None else "[*batch]"
            raise ValueError(
                f"attach takes the per-sample loss of shape {want} = {tuple(rows)}, got "
                f"{tuple(loss.shape)}: reduce over the event dims only, not over samples or batch"
            )
        return self._release(d, self.estimate(loss, d, baseline))

    def _release(self, draw: Draw, out: Tensor) -> Tensor:
        """``out``, once a forward's draw is attached: the layer lets go of it."""
        if draw is self.last_draw:
            self.last_draw, self._waiting, self._replaced = None, False, False
        elif draw is self._plain_draw:
            self._plain_draw = None
        return out

    def _resolve(self, draw: Any) -> Draw:
        if isinstance(draw, Draw):
            return draw
        plain = self._plain_draw
        if draw is not None and plain is not None and draw is plain.sample:
            return plain
        if draw is None and plain is not None and not torch.is_grad_enabled():
            return plain  # evaluation: the no_grad draw (no gradient to give)
        last = self.last_draw
        name = type(self).__name__
        if last is None:
            raise ValueError(
                f"{name}.attach needs a draw: call the layer on the logits "
                "first (each forward's draw is attached once), or pass the Draw from "
                "layer.draw(...)"
            )
        if draw is not None and draw is not last.sample:
            raise ValueError(
                "attach got a sample that is not this layer's last draw: pass the Draw from "
                "layer.draw(...) to attach losses of earlier draws"
            )
        if draw is None and self._replaced and not torch.compiler.is_compiling():
            # The loss may be of either draw: scored against the wrong one, its
            # gradient would be zero-mean noise on the wrong logits. The newest
            # is meant in the common case (an evaluation pass with gradients on,
            # a skipped batch), so it is taken, once, with a warning.
            warnings.warn(
                f"{name}.attach(loss): a draw with gradients was replaced by a later "
                "forward before it was attached; the loss goes to the latest draw. Pass "
                "the sample, layer.attach(loss, z), to say which draw it is of, and draw "
                "evaluation samples under torch.no_grad()",
                UserWarning,
                stacklevel=3,
            )
        return last

    def check_baseline(self, baseline: Tensor | None) -> None:
        """Raise ``ValueError`` for a baseline tensor the estimator does not take."""
        if baseline is not None:
            raise ValueError(f"{type(self).__name__} takes no baseline tensor")

    def estimate(self, loss: Tensor, draw: Draw, baseline: Tensor | None) -> Tensor:
        """The estimator: ``loss`` plus its zero-valued surrogate (subclasses)."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        options = "".join(f", {k}={v!r}" for k, v in self.structure_options.items())
        return f"structure={self.traced.name!r}, samples={self.samples}{options}"
