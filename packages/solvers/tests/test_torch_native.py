"""The device-resident twins (the CUDA kernels) against the compiled kernels.

The twins are plain torch, so they run on CPU tensors here and on CUDA where
there is a GPU (``@pytest.mark.cuda``).
"""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

import structgrad.solvers as solvers  # noqa: E402
from structgrad.solvers import _torch_assignment as assignment  # noqa: E402
from structgrad.solvers import _torch_native as native  # noqa: E402
from structgrad.solvers import _torch_ops as ops  # noqa: E402
from structgrad.solvers._validate import forbid_neg_inf  # noqa: E402

SEEDS = range(40)


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _size(g: torch.Generator, lo: int, hi: int) -> int:
    return int(torch.randint(lo, hi + 1, (1,), generator=g))


@pytest.mark.parametrize("seed", SEEDS)
def test_top_k_matches_kernel(seed: int) -> None:
    g = _gen(seed)
    n = _size(g, 1, 12)
    x = torch.randn(7, n, generator=g, dtype=torch.float64)
    if seed % 2:
        x = x.round()  # ties: to the lower index in both
    if seed % 5 == 0:
        x[0, 0] = -torch.inf
    for k in range(n + 1):
        assert torch.equal(native.top_k(x, k), solvers.top_k(x, k))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("seed", SEEDS)
def test_spanning_tree_matches_kernel(seed: int, dtype: torch.dtype) -> None:
    g = _gen(seed)
    n = _size(g, 2, 11)
    w = torch.randn(6, n, n, generator=g, dtype=torch.float64).to(dtype)
    if seed % 2:
        w = (2 * w).round()  # many ties: the strict order decides
    if seed % 7 == 0:
        w[0, 0, 1:] = -torch.inf  # vertex 0 reached only by -inf edges
        w[1] = -torch.inf
    lengths = torch.randint(1, n + 1, (6,), generator=g)
    assert torch.equal(native.max_spanning_tree(w), solvers.max_spanning_tree(w))
    want = solvers.max_spanning_tree(w, lengths=lengths)
    assert torch.equal(native.max_spanning_tree(w, lengths), want)


@pytest.mark.parametrize("seed", SEEDS)
def test_assignment_matches_kernel(seed: int) -> None:
    g = _gen(seed)
    n = _size(g, 1, 13)
    x = torch.randn(8, n, n, generator=g, dtype=torch.float64)
    cases = [x, x.float(), (1.5 * x).round(), torch.zeros_like(x)]  # ties: the kernel's fallback
    odd = x.clone()
    odd[0, 0] = -torch.inf  # a row with -inf entries only
    odd[1] = -torch.inf  # an item with no finite score
    odd[2, :, -1] = -torch.inf  # a column with -inf entries only
    odd[3, torch.rand(n, n, generator=g) < 0.5] = -torch.inf  # a perfect matching may avoid them
    odd[4] = odd[4] * 1e307  # near the float64 limit, with a -inf: scaled before the sentinel
    odd[4, 0, 0] = -torch.inf
    odd[5] = odd[5] * 1e-300  # tiny scores
    cases.append(odd)
    for c in cases:
        assert torch.equal(assignment.linear_assignment(c), solvers.linear_assignment(c))


@pytest.mark.parametrize("seed", range(10))
def test_assignment_sentinel_matches_numpy(seed: int) -> None:
    g = _gen(seed)
    x = torch.randn(4, 5, 5, generator=g, dtype=torch.float64) * 10.0 ** (seed * 60 - 300)
    x[torch.rand(4, 5, 5, generator=g) < 0.3] = -torch.inf
    x[0] = -torch.inf
    want = forbid_neg_inf(x.numpy(), terms=5)
    assert torch.equal(assignment.forbid_neg_inf(x, 5), torch.from_numpy(want))


def _is_path(mask: torch.Tensor) -> bool:
    """Whether the 1-cells of ``mask`` [H, W] join the corners through 8-neighbours."""
    h, w = mask.shape
    if not (mask[0, 0] and mask[-1, -1]):
        return False
    seen, todo = {(0, 0)}, [(0, 0)]
    while todo:
        i, j = todo.pop()
        for a in range(max(i - 1, 0), min(i + 2, h)):
            for b in range(max(j - 1, 0), min(j + 2, w)):
                if mask[a, b] and (a, b) not in seen:
                    seen.add((a, b))
                    todo.append((a, b))
    return (h - 1, w - 1) in seen


@pytest.mark.parametrize("seed", SEEDS)
def test_grid_path_matches_kernel(seed: int) -> None:
    g = _gen(seed)
    h, w = _size(g, 1, 9), _size(g, 1, 9)
    costs = torch.rand(5, h, w, generator=g, dtype=torch.float64)
    positive = (3 * costs).round() + 1  # ties among positive costs: Dijkstra's choice
    for c in (costs, positive, costs.float()):
        assert torch.equal(native.grid_shortest_path(c), solvers.grid_shortest_path(c))
    # Zero-cost cells: an equally cheap path, perhaps another one.
    zeros = (3 * costs).round()
    got, want = native.grid_shortest_path(zeros), solvers.grid_shortest_path(zeros)
    torch.testing.assert_close((got * zeros).sum((-2, -1)), (want * zeros).sum((-2, -1)))
    assert all(_is_path(m) for m in got)


def test_cuda_tree_kernel_checks_and_broadcasts_lengths() -> None:
    """The CUDA spanning tree takes lengths as the host does: broadcast, then range-checked."""
    x = torch.randn(2, 3, 4, 4, generator=_gen(0), dtype=torch.float64)
    lengths = torch.tensor([2, 3, 4])  # broadcast over the leading batch dim
    got = ops._cuda_max_spanning_tree(x, lengths)
    assert torch.equal(got, solvers.max_spanning_tree(x, lengths=lengths))
    for bad, match in ((torch.tensor(9), "lengths must lie"), (torch.tensor([2, 3]), "batch")):
        with pytest.raises(ValueError, match=match):
            ops._cuda_max_spanning_tree(x, bad)


def test_cuda_kernels_check_shapes_without_reading_values() -> None:
    with pytest.raises(ValueError, match=r"k must lie in \[0, 3\]"):
        ops._cuda_top_k(torch.zeros(2, 3), 4)
    with pytest.raises(ValueError, match="floating"):
        ops._cuda_grid_shortest_path(torch.zeros(2, 3, 4, dtype=torch.long))
    # The host's shape rules and messages, word for word.
    cases = [
        (ops._cuda_max_spanning_tree, solvers.max_spanning_tree, torch.zeros(2, 3, 4), (None,)),
        (ops._cuda_max_spanning_tree, solvers.max_spanning_tree, torch.zeros(2, 1, 1), (None,)),
        (ops._cuda_linear_assignment, solvers.linear_assignment, torch.zeros(2, 3, 4), ()),
        (ops._cuda_linear_assignment, solvers.linear_assignment, torch.zeros(3), ()),
        (ops._cuda_grid_shortest_path, solvers.grid_shortest_path, torch.zeros(3), ()),
        (ops._cuda_grid_shortest_path, solvers.grid_shortest_path, torch.zeros(2, 0, 3), ()),
        (ops._cuda_top_k, solvers.top_k, torch.zeros(()), (0,)),
    ]
    for cuda_kernel, host, x, extra in cases:
        with pytest.raises(ValueError) as want:
            host(x.numpy(), *(e for e in extra if e is not None))
        with pytest.raises(ValueError) as got:
            cuda_kernel(x, *extra)
        assert str(got.value) == str(want.value)


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("seed", range(5))
def test_cuda_solvers_match_cpu(seed: int) -> None:
    g = _gen(seed)
    x = torch.randn(1024, 50, generator=g).round()
    w = torch.randn(1024, 10, 10, generator=g).round()
    c = torch.rand(64, 12, 12, generator=g) + 0.5
    for solve, arg in (
        (lambda t: solvers.top_k(t, 10), x),
        (solvers.max_spanning_tree, w),
        (solvers.max_arborescence, w),
        (solvers.linear_assignment, w),
        (solvers.grid_shortest_path, c),
    ):
        got = solve(arg.cuda())
        assert got.device.type == "cuda"
        assert torch.equal(got.cpu(), solve(arg))
