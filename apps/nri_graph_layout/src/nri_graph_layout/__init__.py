"""NRI graph layout with latent spanning trees (Paulus et al., NeurIPS 2020, §3 of the notes).

Subcommands of ``python -m nri_graph_layout``: ``generate`` (the data set),
``train`` (one method), ``sweep`` (random search with seeds through joblib) and
``quickstart`` (the main job). Model pieces come from ``structgrad.models``.

References:
    Paulus, Choi, Tarlow, Krause and Maddison, "Gradient Estimation with
    Stochastic Softmax Tricks", NeurIPS 2020, https://arxiv.org/abs/2006.08063.
    Kipf et al., "Neural Relational Inference for Interacting Systems", ICML
    2018, https://arxiv.org/abs/1802.04687.
"""

__all__: list[str] = []
