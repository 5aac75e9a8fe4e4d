"""The estimator shootout: every gradient estimator on every structure, against exact gradients.

For tiny instances of each structure (where the recursive Gumbel-max traces can be
enumerated), every applicable estimator of structgrad is measured on one fixed
non-linear objective: bias (cosine similarity and relative error of its mean to
the exact gradient of ``E[f(X)]`` under the law its samples follow), variance of
one estimate, and time per call. ``python -m shootout --help`` lists the flags.

Modules: :mod:`shootout.problems` (instances, objectives, reference gradients),
:mod:`shootout.estimators` (the contestants as conformance draws),
:mod:`shootout.run` (evaluation and table), :mod:`shootout.plots` (heat-maps),
:mod:`shootout.cli`.

References:
    Struminsky, Gadetsky, Rakitin, Karpushkin and Vetrov, "Leveraging Recursive
    Gumbel-Max Trick for Approximate Inference in Combinatorial Spaces", NeurIPS
    2021, https://arxiv.org/abs/2110.15072.
    Mohamed, Rosca, Figurnov and Mnih, "Monte Carlo Gradient Estimation in Machine
    Learning", JMLR 2020, https://arxiv.org/abs/1906.10652.
"""

__all__: list[str] = []
