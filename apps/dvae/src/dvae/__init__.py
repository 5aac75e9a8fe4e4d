"""Discrete VAEs: the SGA tutorial's categorical VAE and the AIMLE paper's k-subset VAE.

Subcommands of ``python -m dvae``: ``train`` (one method, per-epoch JSONL,
PNG grids, checkpoints with ``--resume``) and ``sweep`` (random search over
lr / τ with several seeds through joblib). Latent layers come from
``structgrad.models.latent``; data are scikit-learn's bundled 8×8 digits
(binarised) or MNIST from local files.

References:
    Jang, Gu and Poole, "Categorical Reparameterization with Gumbel-Softmax",
    ICLR 2017, https://arxiv.org/abs/1611.01144.
    Minervini, Franceschi, Niepert, "Adaptive Perturbation-Based Gradient
    Estimation for Discrete Latent Variable Models", AAAI 2023,
    https://arxiv.org/abs/2209.04862.
"""

__all__: list[str] = []
