import networkx as nx
import numpy as np
import pytest
from nri_graph_layout import data as D
from structgrad_app_common import CLIError

SMALL = D.GenerateConfig(num_train=40, num_valid=8, num_test=8, num_vertices=7, num_timesteps=5)


@pytest.fixture(scope="module")
def arrays():
    return D.generate(SMALL)


def test_trees_are_spanning_trees(arrays):
    for split in D.SPLITS:
        edges = arrays[f"{split}_edges"]
        assert edges.dtype == np.uint8 and edges.shape[1:] == (7, 7)
        for adj in edges:
            assert (adj == adj.T).all() and (np.diag(adj) == 0).all()
            graph = nx.from_numpy_array(adj)
            assert graph.number_of_nodes() == 7 and nx.is_tree(graph)


def test_frames_in_unit_box_and_rescaled(arrays):
    x = arrays["train_trajectories"]
    assert x.dtype == np.float32 and x.shape == (40, 7, 5, 2)
    assert np.abs(x).max() <= 1.0 + 1e-6
    # Every frame is rescaled so its largest |coordinate| is 1 and centred.
    np.testing.assert_allclose(np.abs(x).max(axis=(1, 3)), 1.0, atol=1e-6)
    np.testing.assert_allclose(x.mean(axis=1), 0.0, atol=1e-6)


def test_spring_step_matches_networkx():
    rng = np.random.default_rng(3)
    adj = D.random_trees(4, 8, rng).astype(np.float64)
    pos = rng.standard_normal((4, 8, 2))
    ours = D.spring_step(pos, adj)
    for b in range(4):
        graph = nx.from_numpy_array(adj[b])
        ref = nx.spring_layout(
            graph, pos={i: pos[b, i] for i in range(8)}, iterations=1, threshold=1e-10, seed=0
        )
        np.testing.assert_allclose(np.array([ref[i] for i in range(8)]), ours[b], atol=1e-12)


def test_seeded_and_splits_independent():
    a = D.generate(SMALL)
    b = D.generate(D.GenerateConfig(**{**SMALL.__dict__, "num_train": 20}))
    np.testing.assert_array_equal(a["test_trajectories"], b["test_trajectories"])
    np.testing.assert_array_equal(a["train_edges"][:20], b["train_edges"])


def test_npz_round_trip(arrays, tmp_path):
    path = tmp_path / "d.npz"
    D.save(path, arrays)
    ds = D.load(path)
    assert (ds.num_vertices, ds.num_timesteps, ds.seed) == (7, 5, 42)
    for split in D.SPLITS:
        np.testing.assert_array_equal(ds.trajectories[split], arrays[f"{split}_trajectories"])
        np.testing.assert_array_equal(ds.edges[split], arrays[f"{split}_edges"])


def _forest(edges):
    """``edges`` with graph 1 replaced by a triangle and a path of 3 edges (6 edges, n = 7)."""
    edges = edges.copy()
    edges[1] = 0
    for i, j in ((0, 1), (1, 2), (0, 2), (3, 4), (4, 5), (5, 6)):
        edges[1, i, j] = edges[1, j, i] = 1
    return edges


def _one_line(err):
    text = str(err.value)
    assert "\n" not in text
    return text


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda a: a.pop("valid_edges"), "missing key 'valid_edges'"),
        (
            lambda a: a.update(train_trajectories=a["train_trajectories"].astype(np.float64)),
            "float32",
        ),
        (lambda a: a.update(test_edges=a["test_edges"][:, :3]), "uint8"),
        (lambda a: a.update(num_vertices=np.float64(7)), "integer scalar"),
        (lambda a: a.update(format_version=np.int64(99)), "format_version"),
        # Edge arrays were checked for dtype and shape only (an all-ones test set
        # scored precision 1.0):
        (lambda a: a.update(test_edges=np.ones_like(a["test_edges"])), "without self-loops"),
        (lambda a: a.update(test_edges=7 * a["test_edges"]), "0/1 adjacencies"),
        (lambda a: a.update(valid_edges=np.zeros_like(a["valid_edges"])), "has 0 edges, a tree"),
        (lambda a: a.update(num_vertices=np.int64(1)), "num_vertices >= 2"),
        # n - 1 edges were taken for a tree: a triangle beside four more edges on 7 vertices
        (lambda a: a.update(test_edges=_forest(a["test_edges"])), "graph 1 is not connected"),
    ],
)
def test_malformed_arrays(arrays, tmp_path, mutate, message):
    bad = dict(arrays)
    mutate(bad)
    path = tmp_path / "bad.npz"
    np.savez(path, **bad)
    with pytest.raises(CLIError) as err:
        D.load(path)
    assert message in _one_line(err)


def test_unreadable_files(tmp_path):
    with pytest.raises(CLIError) as err:
        D.load(tmp_path / "missing.npz")
    assert "not found" in _one_line(err)
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all")
    with pytest.raises(CLIError) as err:
        D.load(garbage)
    assert "not a structgrad data file (expected an .npz written by `generate`)" in _one_line(err)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, train_trajectories=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CLIError) as err:
        D.load(pickled)
    assert "not a structgrad data file (expected an .npz written by `generate`)" in _one_line(err)
    assert "pickled objects, which are never loaded" in _one_line(err)
    readme = tmp_path / "README.md"
    readme.write_text("# not data\n")
    with pytest.raises(CLIError) as err:
        D.load(readme)
    assert _one_line(err).endswith(
        "is not a structgrad data file (expected an .npz written by `generate`)"
    )
    import pickle

    raw = tmp_path / "raw.pkl"
    raw.write_bytes(pickle.dumps({"train_trajectories": [1, 2]}))
    with pytest.raises(CLIError) as err:
        D.load(raw)
    assert "not a structgrad data file" in _one_line(err)
