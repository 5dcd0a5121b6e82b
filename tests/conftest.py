import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# The data folder with the real Planetoid files: $BELTRAMI_DATA (as .ci/run sets it); tests that need it skip without it.
SHARED_DATA = Path(os.environ.get("BELTRAMI_DATA") or REPO / "no-data-folder")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own processed-tensor cache, so no test sees another's (or the user's) entries."""
    monkeypatch.setenv("BELTRAMI_CACHE", str(tmp_path_factory.mktemp("cache")))


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "planetoid" / "ind.citeseer.x").exists():
        pytest.skip(f"data folder not found at {SHARED_DATA}: set $BELTRAMI_DATA")
    return SHARED_DATA


@pytest.fixture
def offline(monkeypatch):
    """No network: any download attempt fails at once as it would on a machine without internet."""
    import urllib.error

    from beltrami.datasets import files

    def refuse(url, dest, timeout):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(files, "_download", refuse)


@pytest.fixture(scope="module")
def small():
    """A 300-node, 3-class synthetic graph whose features carry the classes: a few epochs train it."""
    import beltrami

    return beltrami.load_dataset("synthetic", num_nodes=300, num_classes=3, num_features=8, avg_degree=6,
                                 signal=2.0, seed=1)
