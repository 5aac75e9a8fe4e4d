"""Learning to explain (L2X) with the k-subset methods of structgrad.

Subcommands of ``python -m l2x``: ``train`` (one task, method and seed),
``eval`` (score a trained run) and ``sweep`` (random search and seeds through
joblib). Tasks: the four synthetic tasks of Chen et al. (generated from a
seed) and BeerAdvocate (local files in the reference's format).

References:
    Chen, Song, Wainwright and Jordan, "Learning to Explain: An
    Information-Theoretic Perspective on Model Interpretation", ICML 2018,
    https://arxiv.org/abs/1802.07814.
    Niepert, Minervini and Franceschi, "Implicit MLE", NeurIPS 2021,
    https://arxiv.org/abs/2106.01798; Minervini, Franceschi and Niepert,
    "Adaptive Perturbation-Based Gradient Estimation for Discrete Latent
    Variable Models", AAAI 2023, https://arxiv.org/abs/2209.04862.
"""

__all__: list[str] = []
