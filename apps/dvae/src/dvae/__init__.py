"""Discrete VAEs: the SGA tutorial's categorical VAE and the AIMLE paper's k-subset VAE.

Subcommands of ``python -m dvae``: ``train`` (one method, per-epoch JSONL,
PNG grids, checkpoints with ``--resume``) and ``sweep`` (random search over
lr / τ with several seeds through joblib). Latent layers come from
``structgrad.models.latent``; data are scikit-learn's bundled 8×8 digits
(binarised) or MNIST from local files. The papers are cited in
:mod:`dvae.model`.
"""

__all__: list[str] = []
