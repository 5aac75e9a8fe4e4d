""":class:`SolverLayer`: the one perturbation-based layer, configured by its presets.

Output shapes: with scores ``[*batch, *event]``,

- ``samples=None`` (default): one perturbed solution, ``[*batch, *event]``;
- ``samples=S``: ``S`` solutions stacked in front, ``[S, *batch, *event]``; a
  loss written for ``[*batch, *event]`` broadcasts over the sample dim, so
  targets never need repeating. Gradients of the ``S`` samples add up, as for
  any ``expand`` in autograd: average the loss over dim 0 to get the Monte
  Carlo mean;
- ``reduce="mean"``: the average of the ``S`` solutions, ``[*batch, *event]``
  (an estimate of the marginals); every sample then gets the whole incoming
  gradient and the estimates are averaged.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from structgrad.distributions import LatentLayer, Structure, structure
from structgrad.distributions.checks import (
    check_real,
    check_tensor,
    check_values,
    lengths_mask,
    validation_enabled,
)

from ._bind import bind_solver
from ._core import FiniteDifference, GradientRule, Identity, NoiseScore, Plan, perturb_and_map
from ._noise import NoiseDistribution, SumOfGamma, resolve_noise
from ._solver import BoundSolver, Solver, check_count, sog_k

__all__ = ["SolverLayer"]

_REDUCTIONS = ("none", "mean")


def _structure_of(bound: BoundSolver) -> Structure | None:
    """The Structure a layer bound to a structure name samples (``None`` for a callable)."""
    return structure(bound.name) if bound.trusted else None


class SolverLayer(LatentLayer):
    """Perturb-and-MAP through a solver: ``MAP(θ + τε)`` forward, ``gradient``'s backward.

    Build it with a preset (:func:`~structgrad.estimators.imle`, ``aimle``,
    ``blackbox``, ``straight_through``, ``perturbed``) or directly with a rule.

    Args:
        solver: structure name or batched solver callable (see
            :func:`structgrad.estimators.bind_solver`), or a bound solver.
        gradient: the backward rule: :class:`FiniteDifference`,
            :class:`Identity` or :class:`NoiseScore`.
        noise: ``"gumbel"``, ``"sog"``, ``"normal"``, ``None`` or a
            :class:`NoiseDistribution`.
        tau: noise scale τ ≥ 0 on the scores.
        samples: number ``S`` of perturbed solutions; ``None`` for one without
            a sample dim.
        reduce: ``"none"`` or ``"mean"`` (see the module docstring).
        solver_options: ``k``, ``root``, ``minimize``, ``event_dims``.

    Raises:
        ValueError: for a bad option value (the presets also reject unknown names);
            while value checks are on (eager mode), in the backward pass for a NaN
            or infinite dL/dz on an entry the solver reads, and for a user's
            solver that returns NaN or an infinity.
    """

    def __init__(
        self,
        solver: str | Solver | BoundSolver,
        *,
        gradient: GradientRule,
        noise: NoiseDistribution | str | None = "gumbel",
        tau: float = 1.0,
        samples: int | None = None,
        reduce: str = "none",
        solver_options: dict[str, Any] | None = None,
    ) -> None:
        bound = bind_solver(solver, **(solver_options or {}))
        own = {k: v for k, v in (solver_options or {}).items() if k in ("k", "root")}
        super().__init__(_structure_of(bound), own)
        self.solver = bound
        self.noise = resolve_noise(noise)
        self.tau = check_real(tau, "tau", lo=0.0)
        self.n_samples = check_count(samples, "samples")
        self.sample_dim = samples is not None
        if reduce not in _REDUCTIONS:
            raise ValueError(f"reduce must be one of {_REDUCTIONS}, got {reduce!r}")
        self.reduce = reduce
        self.gradient = gradient
        self._check_rule(gradient)

    def _check_rule(self, rule: GradientRule) -> None:
        if isinstance(rule, FiniteDifference):
            # The target is a submodule: AIMLE's adaptive state is in state_dict().
            self.target = rule.target
            if rule.tau_target is not None:
                check_real(rule.tau_target, "tau_target", lo=0.0)
            check_count(rule.marginal_samples, "marginal_samples")
            if rule.marginal_samples > 1 and self.noise is None:
                raise ValueError("marginal_samples > 1 needs noise")
        elif isinstance(rule, NoiseScore):
            if self.noise is None or not self.tau > 0:
                raise ValueError("the perturbed optimizer needs noise and tau > 0")
            self.noise.score(torch.zeros(()))  # fail early on noise without a density gradient
            if self.reduce != "mean":
                raise ValueError("the perturbed optimizer returns the mean: reduce='mean'")
            if rule.baseline and self.n_samples < 2:
                raise ValueError("baseline=True needs samples >= 2")
        elif not isinstance(rule, Identity):
            raise ValueError(
                f"gradient must be a FiniteDifference, Identity or NoiseScore rule, got {rule!r}"
            )

    @property
    def input_name(self) -> str:
        """What the layer takes: ``"costs"`` around a minimising solver, else ``"scores"``."""
        return "costs" if self.solver.minimize else "scores"

    def noise_for(self, event_shape: tuple[int, ...]) -> NoiseDistribution | None:
        """The noise to draw for problems of this event shape (``None``: no noise)."""
        if self.noise is None:
            return None
        if isinstance(self.noise, SumOfGamma) and self.noise.k is None:
            return self.noise.with_k(sog_k(self.solver, event_shape))
        return self.noise

    def prepare(self, scores: Tensor, lengths: Any) -> tuple[Tensor, int, Tensor | None]:
        """Maximisation-form scores, event dims and validated lengths.

        Args:
            scores: ``[*batch, *event]`` scores (costs if the solver minimises).
            lengths: optional ``[*batch]`` problem sizes.

        Returns:
            ``(theta, event_ndim, lengths)`` with ``theta = -scores`` for a
            minimisation solver (autograd flips the gradient back).
        """
        check_tensor(scores, self.input_name)
        ev = self.solver.event_dims(scores)
        if self.structure is not None:
            self._check_structure_input(scores, ev)
        elif scores.numel():  # a user's solver: NaN and +inf (-inf costs) refused here
            check_values(scores, self.input_name, costs=self.solver.minimize)
        theta = -scores if self.solver.minimize else scores
        if lengths is None:
            return theta, ev, None
        if not self.solver.lengths:
            raise ValueError(f"{self.solver.name} does not take lengths")
        batch = tuple(scores.shape[: scores.ndim - ev])
        # integers in [1, n] that broadcast to the batch (a ValueError naming lengths)
        lengths_mask(lengths, batch, scores.shape[-1], scores.device)
        lens = torch.as_tensor(lengths, device=scores.device).expand(batch)
        return theta, ev, lens

    def _check_structure_input(self, scores: Tensor, ev: int) -> None:
        """Shape and values of scores for one of our structures (its solver is not re-checked)."""
        s = self.structure
        assert s is not None
        n = scores.shape[-1]
        if n < s.min_size:
            raise ValueError(f"{s.name}: scores need n >= {s.min_size}, got n = {n}")
        if s.square and scores.shape[-2] != n:
            raise ValueError(
                f"{s.name}: scores must be square [..., n, n], got {tuple(scores.shape)}"
            )
        # Solver-backed structures check values themselves (in the kernel's
        # input pass); reading them here too would cost a reduction per call.
        # The solvers' CUDA kernels read no values: on CUDA the check is here.
        if not scores.numel() or not validation_enabled():
            return
        # Minimising, the solver reads -costs (its check named -inf costs "+inf
        # scores"); a structure without forbidden values (grid_path) refuses every
        # non-finite one in its own check below.
        if s.forbids and (not s.map_checks_values or scores.is_cuda or self.solver.minimize):
            check_values(scores, self.input_name, costs=self.solver.minimize)
        # the structure's own value checks (all -inf rows, fewer than k finite
        # scores, negative costs, k <= n), which no solver makes
        s._check_options(scores, {**s.defaults, **self.structure_options})

    def plan(self, theta: Tensor, event_ndim: int, lengths: Tensor | None, generator: Any) -> Plan:
        """The autograd function's plan for one call on ``theta``."""
        rule = self.gradient
        tau_target = self.tau
        marginal = 1
        if isinstance(rule, FiniteDifference):
            tau_target = self.tau if rule.tau_target is None else float(rule.tau_target)
            marginal = rule.marginal_samples
        noise = None
        if self.noise is not None and (self.tau > 0 or tau_target > 0):
            noise = self.noise_for(tuple(theta.shape[theta.ndim - event_ndim :]))
        return Plan(
            solver=self.solver,
            rule=rule,
            event_ndim=event_ndim,
            noise=noise,
            tau=self.tau if noise is not None else 0.0,
            tau_target=tau_target if noise is not None else 0.0,
            samples=self.n_samples,
            marginal=marginal if noise is not None else 1,
            mean=self.reduce == "mean",
            generator=generator,
            lengths=lengths,
            label=f"{self.method or type(self).__name__}({self.solver.name!r})",
        )

    def _sample(self, scores: Tensor, lengths: Any, generator: torch.Generator | None) -> Tensor:
        """Perturbed MAP solutions (module docstring's shapes) with the rule's backward.

        ``scores`` are costs for a minimisation solver.
        """
        theta, ev, lens = self.prepare(scores, lengths)
        plan = self.plan(theta, ev, lens, generator)
        out = perturb_and_map(theta, plan)
        if plan.single:
            # [*batch, *event]: the sample dim of samples=1 goes back in front
            return out[None] if self.sample_dim and not plan.mean else out
        if self.reduce == "none" and not self.sample_dim:
            return out.squeeze(0)
        return out

    def _sample_hard(
        self, logits: Tensor, lengths: Any, generator: torch.Generator | None, noise: bool
    ) -> Tensor:
        """``MAP(θ + G)`` of the structure; around a user's solver, its own noise at its τ."""
        if self.structure is not None:
            # minimize=True on a maximising structure: the layer takes costs c, MAP(-c)
            flip = self.solver.minimize and not self.structure.minimize
            return super()._sample_hard(-logits if flip else logits, lengths, generator, noise)
        with torch.no_grad():
            theta, ev, lens = self.prepare(logits.detach(), lengths)
            x = theta
            if noise and self.noise is not None and self.tau > 0:
                eps = self.noise_for(tuple(theta.shape[theta.ndim - ev :]))
                assert eps is not None
                draw = eps.sample(
                    tuple(theta.shape), dtype=theta.dtype, device=theta.device, generator=generator
                )
                x = theta + self.tau * draw
            return self.solver.solve(x, ev, lens)

    def extra_repr(self) -> str:
        samples = self.n_samples if self.sample_dim else None
        return (
            f"solver={self.solver.name}, gradient={self.gradient}, noise={self.noise}, "
            f"tau={self.tau}, samples={samples}, reduce={self.reduce!r}"
        )
