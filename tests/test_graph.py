import numpy as np
import pytest
import scipy.sparse as sp
import torch

from beltrami import Graph


def dense(g: Graph) -> np.ndarray:
    return g.to_scipy().toarray()


def random_edges(n=30, m=90, seed=0):
    rng = np.random.RandomState(seed)
    return torch.from_numpy(rng.randint(n, size=(2, m)))


def test_from_edge_index_matches_scipy_pattern():
    ei = random_edges()
    g = Graph.from_edge_index(ei, 30)
    ref = sp.coo_matrix((np.ones(ei.shape[1]), (ei[0].numpy(), ei[1].numpy())), shape=(30, 30)).toarray()
    np.testing.assert_array_equal(dense(g), ref)  # duplicates kept: entries count multiplicity
    assert g.num_edges == ei.shape[1]
    # CSR order: rows ascending, columns ascending within a row
    key = g.row * 30 + g.col
    assert bool((key[1:] >= key[:-1]).all())
    assert torch.equal(g.edge_index[0], g.row)


def test_num_nodes_inferred_and_isolated_nodes():
    g = Graph.from_edge_index(torch.tensor([[0, 2], [2, 0]]))
    assert g.num_nodes == 3
    assert g.degree().tolist() == [1, 0, 1]
    g = Graph.from_edge_index(torch.tensor([[0], [1]]), num_nodes=5)
    assert g.num_nodes == 5 and g.degree().tolist() == [1, 0, 0, 0, 0]


def test_empty_and_one_node_graphs():
    g = Graph.from_edge_index(torch.zeros(2, 0, dtype=torch.long), num_nodes=1)
    assert g.num_nodes == 1 and g.num_edges == 0
    assert g.symmetrize().num_edges == 0
    assert g.add_self_loops().num_edges == 1
    lcc, node_map = g.largest_connected_component()
    assert lcc.num_nodes == 1 and node_map.tolist() == [0]


def test_coalesce_symmetrize_self_loops_against_dense():
    ei = random_edges(seed=1)
    g = Graph.from_edge_index(ei, 30)
    a = dense(g)
    np.testing.assert_array_equal(dense(g.coalesce()), (a > 0).astype(float))
    np.testing.assert_array_equal(dense(g.symmetrize()), ((a + a.T) > 0).astype(float))
    no_loops = (a > 0).astype(float)
    np.fill_diagonal(no_loops, 0)
    np.testing.assert_array_equal(dense(g.coalesce().remove_self_loops()), no_loops)
    with_loops = no_loops.copy()
    np.fill_diagonal(with_loops, 1)
    np.testing.assert_array_equal(dense(g.coalesce().remove_self_loops().add_self_loops()), with_loops)
    # add_self_loops adds none where a loop exists already
    assert np.diag(a).any()  # the random edges hold self-loops already
    looped = g.coalesce().add_self_loops()
    assert looped.num_edges == int(with_loops.sum())
    assert int((looped.row == looped.col).sum()) == 30


def test_symmetric_and_undirected_count():
    g = Graph.from_edge_index(torch.tensor([[0, 1, 1, 2, 2], [1, 0, 2, 1, 2]]))
    assert g.is_symmetric()
    assert g.num_undirected_edges() == 2  # the self-loop does not count
    assert not Graph.from_edge_index(torch.tensor([[0], [1]])).is_symmetric()


def test_transpose_and_subgraph():
    ei = random_edges(seed=2)
    g = Graph.from_edge_index(ei, 30).coalesce()
    np.testing.assert_array_equal(dense(g.transpose()), dense(g).T)
    nodes = torch.tensor([5, 1, 7, 20])
    np.testing.assert_array_equal(dense(g.subgraph(nodes)), dense(g)[np.ix_(nodes.numpy(), nodes.numpy())])


def test_largest_connected_component_against_scipy():
    # two triangles and a path of four: the path is the largest
    ei = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 0, 4, 5, 3, 7, 8, 9]])
    g = Graph.from_edge_index(ei, 10).symmetrize()
    lcc, node_map = g.largest_connected_component()
    assert node_map.tolist() == [6, 7, 8, 9]
    assert lcc.num_nodes == 4 and lcc.num_undirected_edges() == 3
    # ties broken by the lowest component label: the first triangle wins over the second
    g2 = Graph.from_edge_index(ei[:, :6], 6).symmetrize()
    assert g2.largest_connected_component()[1].tolist() == [0, 1, 2]


def test_from_scipy_and_pyg_convention():
    m = sp.random(12, 12, density=0.3, format="coo", random_state=0)
    g = Graph.from_scipy(m)
    np.testing.assert_array_equal(dense(g), (m.toarray() != 0).astype(float))

    class Data:  # duck-typed PyG Data: edge_index is (source, target)
        edge_index = torch.tensor([[0, 0], [1, 2]])
        num_nodes = 4

    g = Graph.from_pyg(Data())
    # messages 0 -> 1 and 0 -> 2 are aggregated by rows 1 and 2
    assert g.row.tolist() == [1, 2] and g.col.tolist() == [0, 0] and g.num_nodes == 4


def test_to_sparse_csr_and_device():
    g = Graph.from_edge_index(random_edges(seed=3), 30).coalesce()
    a = g.to_sparse_csr(torch.arange(g.num_edges, dtype=torch.float64))
    np.testing.assert_array_equal(a.to_dense().numpy(), g.to_scipy(np.arange(g.num_edges)).toarray())
    h = g.to("cpu")
    assert h == g and h is not g


@pytest.mark.parametrize(
    "edge_index, num_nodes, error, match",
    [
        (torch.tensor([[0, -1], [1, 0]]), None, ValueError, "negative"),
        (torch.tensor([[0, 5], [1, 0]]), 3, ValueError, "out of range"),
        (torch.tensor([[0.0, 1.0], [1.0, 0.0]]), None, TypeError, "integers"),
        (torch.tensor([0, 1, 2]), None, ValueError, r"shape \[2, E\]"),
        (torch.tensor([[0, 1], [1, 0]]), -2, ValueError, "num_nodes"),
        # before: the allocator's "can't allocate memory: you tried to allocate 8000000000000 bytes"
        (torch.tensor([[0, 1], [1, 0]]), 10**12, ValueError, "more than a graph can have"),
        ([[0, 1], [1, 0]], None, TypeError, "torch.Tensor"),
    ],
)
def test_bad_edge_index(edge_index, num_nodes, error, match):
    with pytest.raises(error, match=match):
        Graph.from_edge_index(edge_index, num_nodes)


def test_node_count_beyond_memory(monkeypatch):
    pages = {"SC_PAGE_SIZE": 4096, "SC_PHYS_PAGES": 2**20}  # a 4 GiB machine
    monkeypatch.setattr("beltrami.graph.os.sysconf", pages.__getitem__)
    with pytest.raises(ValueError, match=r"num_nodes=300,000,000 needs 4.8 GB for its row pointers, more than "
                                         r"this machine's memory \(4.3 GB\)"):
        Graph.from_edge_index(torch.tensor([[0, 1], [1, 0]]), 300_000_000)
    assert Graph.from_edge_index(torch.tensor([[0, 1], [1, 0]]), 1000).num_nodes == 1000


def test_bad_csr_and_non_square():
    with pytest.raises(ValueError, match="crow\\[-1\\]"):
        Graph(torch.tensor([0, 1, 3]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="non-decreasing"):
        Graph(torch.tensor([0, 2, 1, 2]), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="out of range"):
        Graph(torch.tensor([0, 1]), torch.tensor([3]))
    with pytest.raises(ValueError, match="square"):
        Graph.from_scipy(sp.random(3, 4, density=0.5))


def test_no_dense_matrix_on_a_large_graph():
    """A graph with 10^6 nodes: a dense n x n matrix (4 TB) would fail; every operation stays O(E)."""
    n, m = 1_000_000, 3_000_000
    g = Graph.from_edge_index(torch.randint(n, (2, m), generator=torch.Generator().manual_seed(0)), n)
    s = g.symmetrize().remove_self_loops()
    assert s.is_symmetric()
    lcc, node_map = s.largest_connected_component()
    assert 0.9 * n < lcc.num_nodes <= n
