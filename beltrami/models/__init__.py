"""Models: BLEND (and BLEND-kNN / GRAND-l through its options) and the GCN, GAT baselines."""
from .blend import BLEND
from .encoders import FeatureEncoder, PositionalEncoder
from .gat import GAT
from .gcn import GCN

__all__ = ["BLEND", "GCN", "GAT", "PositionalEncoder", "FeatureEncoder"]
