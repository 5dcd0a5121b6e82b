import pytest

import beltrami


@pytest.fixture(scope="module")
def small():
    """A 300-node, 3-class synthetic graph whose features carry the classes: a few epochs train it."""
    return beltrami.load_dataset("synthetic", num_nodes=300, num_classes=3, num_features=8, avg_degree=6,
                                 signal=2.0, seed=1)
