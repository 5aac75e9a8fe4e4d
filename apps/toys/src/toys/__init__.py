"""Recursive Gumbel-max toys and the IMLE synthetic top-k problem (structgrad app).

``python -m toys run --structure arborescence --estimator t-reinforce+`` trains
one estimator on one toy; ``python -m toys all`` runs every structure ×
estimator through the joblib sweep runner and writes the comparison table.

Modules: :mod:`~toys.problems` (structures, losses, optima),
:mod:`~toys.methods` (estimator names, applicability, layers),
:mod:`~toys.evaluation` (training step, expected loss and gradient std),
:mod:`~toys.train` (one run with checkpoints and resume), :mod:`~toys.sweep`
(``all`` and the table), :mod:`~toys.reference` (the reference numbers),
:mod:`~toys.plots`, :mod:`~toys.cli`.
"""
