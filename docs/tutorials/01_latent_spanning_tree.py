"""Tutorial 1: a latent spanning tree in a VAE-style model.

An autoencoder whose code is a **spanning tree**: the encoder reads a pair of
snapshots of a small interacting system and scores every edge, the latent
layer turns the scores into a (relaxed) random spanning tree, and the decoder
predicts the second snapshot from the first by message passing along that
tree. Nobody tells the model which tree generated each example: it has to
discover it, and the only training signal is the reconstruction error.

The data (generated here, a few milliseconds):

- a uniformly random spanning tree `A` on `n = 6` nodes per example, drawn
  exactly by `structgrad.distributions.SpanningTree(zeros).sample()` (Wilson's
  algorithm);
- node states `x0 ~ N(0, I)` in `d = 8` dimensions, and the next state
  `x1 = A @ x0 + noise`: each node becomes the sum of its neighbours.

The latent layer comes from the one factory of `structgrad.models`:

```python
layer = structgrad.models.latent("spanning_tree", "sst", tau=0.5)
z = layer(logits)           # [B, n, n] relaxed tree: Matrix-Tree marginals of (θ + G) / τ
loss = layer.attach(nll)    # the identity for a pathwise method such as SST
```

Any other spanning-tree method (`structgrad.models.METHODS["spanning_tree"]`:
`"imle"`, `"aimle"`, `"t-reinforce+"`, ...) plugs into the same loop: only the
name and its options change (`tau` is the temperature of SST; score-function
methods have none, and need `attach`, which is why the loop calls it). The
script trains for a few dozen steps and prints the reconstruction error and
the precision of the MAP tree (the fraction of true edges recovered,
`sample_hard(logits, noise=False)`), then asserts that both improved.
"""

from __future__ import annotations

import torch
from torch import nn

import structgrad.models
from structgrad.distributions import SpanningTree

torch.manual_seed(0)
N_NODES, DIM, BATCH, STEPS = 6, 8, 64, 60
METHOD, OPTIONS = "sst", {"tau": 0.5}  # or "imle", {} / "aimle", {} / "t-reinforce+", {}


def make_batch(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Snapshots (x0, x1) of a system driven by a random tree, and that tree."""
    trees = SpanningTree(torch.zeros(batch, N_NODES, N_NODES)).sample()  # [B, n, n]
    x0 = torch.randn(batch, N_NODES, DIM, generator=generator)
    x1 = trees @ x0 + 0.1 * torch.randn(batch, N_NODES, DIM, generator=generator)
    return x0, x1, trees


class Encoder(nn.Module):
    """Edge scores θ_ij from the states of nodes i and j (symmetric in i, j)."""

    def __init__(self, dim: int, hidden: int = 64) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(4 * dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        """Scores ``[B, n, n]`` from the snapshots ``x0, x1`` (``[B, n, d]`` each)."""
        h = torch.cat([x0, x1], dim=-1)  # [B, n, 2d]
        n = h.shape[1]
        hi = h.unsqueeze(2).expand(-1, n, n, -1)
        hj = h.unsqueeze(1).expand(-1, n, n, -1)
        s = self.mlp(torch.cat([hi, hj], dim=-1)).squeeze(-1)  # [B, n, n]
        return s + s.transpose(1, 2)  # an undirected edge has one score


class Decoder(nn.Module):
    """x1 ≈ w · (z @ x0) + b: one round of message passing along the latent tree."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(0.1))
        self.b = nn.Parameter(torch.zeros(()))

    def forward(self, z: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """The predicted next state ``[..., n, d]`` from a (relaxed) tree ``z`` ``[..., n, n]``."""
        return self.w * (z @ x0) + self.b


def evaluate(encoder: Encoder, decoder: Decoder, layer: nn.Module, data: tuple) -> tuple:
    """Reconstruction error with the MAP tree, and the MAP tree's edge precision."""
    x0, x1, trees = data
    with torch.no_grad():
        logits = encoder(x0, x1)
        tree = layer.sample_hard(logits, noise=False)  # [B, n, n] 0/1, Kruskal on θ
        mse = ((decoder(tree, x0) - x1) ** 2).mean().item()
        precision = ((tree * trees).sum() / trees.sum()).item()
    return mse, precision


def main() -> None:
    """Train, print the metrics, and assert that they improved."""
    gen = torch.Generator().manual_seed(0)
    test = make_batch(256, gen)
    encoder, decoder = Encoder(DIM), Decoder()
    layer = structgrad.models.latent("spanning_tree", METHOD, **OPTIONS)
    params = [*encoder.parameters(), *decoder.parameters(), *layer.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2)

    mse0, prec0 = evaluate(encoder, decoder, layer, test)
    print(f"before training: reconstruction MSE {mse0:.3f}, tree precision {prec0:.2f}")
    for step in range(1, STEPS + 1):
        x0, x1, _ = make_batch(BATCH, gen)
        logits = encoder(x0, x1)
        z = layer(logits, generator=gen)  # [B, n, n], a relaxed random spanning tree
        nll = ((decoder(z, x0) - x1) ** 2).sum((-1, -2))  # per example: Gaussian NLL
        loss = layer.attach(nll).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 20 == 0:
            mse, prec = evaluate(encoder, decoder, layer, test)
            print(f"step {step:3d}: loss {loss.item():8.2f}, MSE {mse:.3f}, precision {prec:.2f}")

    mse, prec = evaluate(encoder, decoder, layer, test)
    print(f"after {STEPS} steps: reconstruction MSE {mse:.3f}, tree precision {prec:.2f}")
    # A random spanning tree on 6 nodes has 5 of 15 edges: precision ≈ 1/3 by chance.
    assert mse < mse0 / 4, f"reconstruction error did not fall 4-fold: {mse0:.3f} -> {mse:.3f}"
    assert prec > 0.8, f"tree precision {prec:.2f} is not above 0.8 (chance: 0.33)"


if __name__ == "__main__":
    main()
