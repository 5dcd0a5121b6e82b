"""Positional encodings (personalised PageRank, DeepWalk, hyperbolic) and graph rewiring (DIGL, kNN)."""
from .deepwalk import deepwalk_embeddings
from .hyperbolic import poincare_embeddings
from .knn import knn_graph
from .ppr import PPRResult, ppr, ppr_graph

__all__ = ["ppr", "ppr_graph", "PPRResult", "knn_graph", "deepwalk_embeddings", "poincare_embeddings"]
