"""Dataset loading and graph preprocessing (asv)."""
import os

import beltrami
from beltrami.datasets import csbm

SMOKE = bool(os.environ.get("BELTRAMI_ASV_SMOKE"))  # the test suite's check that every benchmark runs


class DatasetLoad:
    params = ["cora", "citeseer"] + ([] if SMOKE else ["synthetic-arxiv"])
    param_names = ["dataset"]

    def setup(self, dataset):
        try:
            beltrami.load_dataset(dataset)
        except beltrami.DatasetFileError as err:
            raise NotImplementedError(str(err))  # asv skips a benchmark whose setup raises this

    def time_load(self, dataset):
        beltrami.load_dataset(dataset)

    def peakmem_load(self, dataset):
        beltrami.load_dataset(dataset)


class GraphPreprocess:
    params = [10_000] + ([] if SMOKE else [169_343])
    param_names = ["num_nodes"]

    def setup(self, num_nodes):
        raw = csbm(num_nodes=num_nodes, avg_degree=13.8, num_classes=40, num_features=8)
        self.graph = beltrami.Graph.from_edge_index(raw.edge_index, num_nodes)

    def time_symmetrize(self, num_nodes):
        self.graph.symmetrize()

    def time_largest_connected_component(self, num_nodes):
        self.graph.largest_connected_component()
