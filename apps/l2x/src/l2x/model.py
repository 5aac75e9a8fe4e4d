"""Explainer and predictor networks of L2X (Chen et al. 2018), after the reference code.

- Synthetic tasks: explainer MLP 10 → 100 → 100 → 10 logits; predictor on the
  masked input ``x ⊙ z``: 200 → BatchNorm → 200 → BatchNorm → 2 class logits
  (ReLU for xor and orange skin, SELU otherwise, as the reference).
- BeerAdvocate: frozen embeddings; explainer Conv1d(D→100, k) + ReLU, a global
  branch (max-pool → Linear(100, 100) + ReLU) and a local branch (two
  Conv1d(100→100, k) + ReLU), concatenated, Dropout 0.2, Conv1d(200→100, 1) +
  ReLU, Conv1d(100→1, 1) = one logit per token; predictor on the selected
  embeddings ``Σ_t z_t e_t / k`` → Linear(D, H) + ReLU → Linear(H, 1) + sigmoid.

The predictors accept samples with extra leading dims (``[S, B, n]`` from
``samples=S`` estimators) and return predictions with those dims.

References:
    Chen, Song, Wainwright and Jordan, "Learning to Explain", ICML 2018,
    https://arxiv.org/abs/1802.07814.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from l2x.methods import Selector

__all__ = ["BeerModel", "L2XModel", "SyntheticModel"]


class L2XModel(nn.Module):
    """Explainer → k-subset selector → predictor.

    Subclasses define :meth:`explain` (inputs → logits ``[B, n]``) and
    :meth:`predict` (inputs and a selection ``[*S, B, n]`` → predictions).
    """

    def __init__(self, selector: Selector) -> None:
        super().__init__()
        self.selector = selector

    def explain(self, x: Tensor) -> Tensor:
        """Selection logits ``[B, n]``."""
        raise NotImplementedError

    def predict(self, x: Tensor, z: Tensor) -> Tensor:
        """Predictions from the selected features."""
        raise NotImplementedError

    def forward(
        self, x: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Return ``(prediction, selection z, logits)``."""
        logits = self.explain(x)  # [B, n]
        z = self.selector(logits, generator=generator)  # [*S, B, n]
        return self.predict(x, z), z, logits


class SyntheticModel(L2XModel):
    """The L2X networks of the synthetic tasks.

    Args:
        selector: the k-subset selector.
        n_features: input size (10).
        activation: ``relu`` or ``selu``.
        explainer_hidden: explainer width (100).
        predictor_hidden: predictor width (200).
    """

    def __init__(
        self,
        selector: Selector,
        n_features: int = 10,
        *,
        activation: str = "relu",
        explainer_hidden: int = 100,
        predictor_hidden: int = 200,
    ) -> None:
        super().__init__(selector)
        act = {"relu": nn.ReLU, "selu": nn.SELU}[activation]
        h, p = explainer_hidden, predictor_hidden
        self.explainer = nn.Sequential(
            nn.Linear(n_features, h), act(), nn.Linear(h, h), act(), nn.Linear(h, n_features)
        )
        self.predictor = nn.Sequential(
            nn.Linear(n_features, p),
            act(),
            nn.BatchNorm1d(p),
            nn.Linear(p, p),
            act(),
            nn.BatchNorm1d(p),
            nn.Linear(p, 2),
        )

    def explain(self, x: Tensor) -> Tensor:
        """Logits ``[B, 10]`` from inputs ``[B, 10]``."""
        return self.explainer(x)

    def predict(self, x: Tensor, z: Tensor) -> Tensor:
        """Class logits ``[*S, B, 2]`` from ``x`` ``[B, 10]`` masked by ``z`` ``[*S, B, 10]``."""
        masked = x * z  # [*S, B, 10]
        out = self.predictor(masked.reshape(-1, masked.shape[-1]))  # BatchNorm needs 2-d
        return out.reshape(*masked.shape[:-1], 2)


class BeerModel(L2XModel):
    """The L2X networks of BeerAdvocate.

    Args:
        selector: the k-subset selector over the ``L`` token positions.
        embeddings: ``[V, D]`` frozen word vectors.
        k: subset size (the predictor averages the ``k`` selected embeddings).
        filters: explainer channels (100).
        kernel_size: explainer convolution width (3).
        hidden: predictor width H (250).
    """

    def __init__(
        self,
        selector: Selector,
        embeddings: Tensor,
        *,
        k: int,
        filters: int = 100,
        kernel_size: int = 3,
        hidden: int = 250,
    ) -> None:
        super().__init__(selector)
        self.embedding = nn.Embedding.from_pretrained(embeddings.float(), freeze=True)
        d, f, ks = embeddings.shape[1], filters, kernel_size
        self.k = k
        self.first = nn.Conv1d(d, f, ks, padding="same")
        self.global_fc = nn.Linear(f, f)
        self.local = nn.Sequential(
            nn.Conv1d(f, f, ks, padding="same"), nn.ReLU(), nn.Conv1d(f, f, ks, padding="same")
        )
        self.head = nn.Sequential(
            nn.Dropout(0.2), nn.Conv1d(2 * f, f, 1), nn.ReLU(), nn.Conv1d(f, 1, 1)
        )
        self.predictor = nn.Sequential(nn.Linear(d, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        for m in self.modules():  # Xavier-uniform with the ReLU gain, zero biases (reference)
            if isinstance(m, nn.Linear | nn.Conv1d):
                nn.init.xavier_uniform_(m.weight, gain=nn.init.calculate_gain("relu"))
                assert m.bias is not None  # every layer here is built with a bias
                nn.init.zeros_(m.bias)

    def explain(self, x: Tensor) -> Tensor:
        """Token logits ``[B, L]`` from token ids ``[B, L]``."""
        e = self.embedding(x).transpose(1, 2)  # [B, D, L]
        h = torch.relu(self.first(e))  # [B, F, L]
        g = torch.relu(self.global_fc(h.amax(dim=-1)))  # [B, F]
        loc = torch.relu(self.local(h))  # [B, F, L]
        both = torch.cat([g.unsqueeze(-1).expand_as(loc), loc], dim=1)  # [B, 2F, L]
        return self.head(both).squeeze(1)

    def predict(self, x: Tensor, z: Tensor) -> Tensor:
        """Ratings in (0, 1) ``[*S, B]`` from the selected embeddings."""
        e = self.embedding(x)  # [B, L, D]
        mean = (z.unsqueeze(-1) * e).sum(dim=-2) / self.k  # [*S, B, D]
        return torch.sigmoid(self.predictor(mean)).squeeze(-1)
