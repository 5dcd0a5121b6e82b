"""Raw-file handling: data root, verified downloads (from a real HTTP server on loopback), errors."""
import functools
import http.server
import threading
import warnings
from dataclasses import replace

import pytest

from beltrami.datasets import files as F
from beltrami.paths import data_root

from tests.fixtures import arxiv_members, arxiv_zip


@pytest.fixture
def http_root(tmp_path):
    """Serve ``tmp_path/www`` on 127.0.0.1 for the duration of a test; yields (folder, base URL)."""
    www = tmp_path / "www"
    www.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    handler.log_message = lambda *a, **k: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield www, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_data_root_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("BELTRAMI_DATA", str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv("BELTRAMI_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data_root() == tmp_path / "xdg" / "beltrami" / "data"


def test_download_verifies_and_renames(tmp_path, http_root, monkeypatch):
    www, url = http_root
    payload = b"planetoid bytes" * 100
    (www / "ind.pubmed.allx").write_bytes(payload)
    rel = "planetoid/ind.pubmed.allx"
    monkeypatch.setitem(F.FILES, rel, replace(F.FILES[rel], url=f"{url}/ind.pubmed.allx",
                                              sha256=__import__("hashlib").sha256(payload).hexdigest()))
    root = tmp_path / "root"
    path = F.fetch(rel, root)
    assert path == root / rel and path.read_bytes() == payload
    assert [p.name for p in path.parent.iterdir()] == ["ind.pubmed.allx"]  # no temporary left
    assert F.status(rel, root) == "verified"


def test_download_with_wrong_checksum_writes_nothing(tmp_path, http_root, monkeypatch):
    www, url = http_root
    (www / "ind.pubmed.allx").write_bytes(b"tampered")
    rel = "planetoid/ind.pubmed.allx"
    monkeypatch.setitem(F.FILES, rel, replace(F.FILES[rel], url=f"{url}/ind.pubmed.allx"))
    root = tmp_path / "root"
    with pytest.raises(F.ChecksumError, match="nothing was written"):
        F.fetch(rel, root)
    assert list((root / "planetoid").iterdir()) == []


def test_http_error_is_a_missing_file_error(tmp_path, http_root, monkeypatch):
    _, url = http_root
    rel = "npz/ms_academic_cs.npz"
    monkeypatch.setitem(F.FILES, rel, replace(F.FILES[rel], url=f"{url}/absent.npz"))
    with pytest.raises(F.MissingFileError, match=r"ms_academic_cs\.npz.*404"):
        F.fetch(rel, tmp_path)


def test_offline_error_names_file_url_and_root(tmp_path, offline):
    rel = "npz/amazon_electronics_photo.npz"
    with pytest.raises(F.MissingFileError) as err:
        F.fetch(rel, tmp_path)
    msg = str(err.value)
    assert rel in msg and F.FILES[rel].url in msg and str(tmp_path) in msg
    assert isinstance(err.value, FileNotFoundError)


def test_no_download_flag(tmp_path):
    with pytest.raises(F.MissingFileError, match="download=False"):
        F.fetch("npz/ms_academic_cs.npz", tmp_path, download=False)


def test_unknown_relpath():
    with pytest.raises(KeyError, match="no raw file"):
        F.fetch("planetoid/ind.nope.x")


def test_zip_members_extracted_and_unpublished_hashes_recorded(tmp_path, http_root, monkeypatch):
    """ogbn-arxiv comes as one zip: every member is extracted; edge/feature files, which have no
    published sha256, get a recorded one, and a later change to them is caught."""
    www, url = http_root
    members = arxiv_members()
    (www / "arxiv.zip").write_bytes(arxiv_zip(members))
    for rel, spec in list(F.FILES.items()):
        if spec.member:
            sha = None if spec.sha256 is None else __import__("hashlib").sha256(members[spec.member.split("/")[-1]]).hexdigest()
            monkeypatch.setitem(F.FILES, rel, replace(spec, url=f"{url}/arxiv.zip", sha256=sha))
    root = tmp_path / "root"
    with pytest.warns(UserWarning, match="no published sha256"):
        path = F.fetch("ogbn_arxiv/raw/edge.csv.gz", root)
    assert path.read_bytes() == members["edge.csv.gz"]
    for name, data in members.items():
        assert (root / "ogbn_arxiv" / "raw" / name).read_bytes() == data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        F.fetch("ogbn_arxiv/raw/edge.csv.gz", root)  # sidecar exists now: verified, no warning
    path.write_bytes(members["edge.csv.gz"][:-4])
    with pytest.raises(F.ChecksumError, match="edge.csv.gz"):
        F.fetch("ogbn_arxiv/raw/edge.csv.gz", root)


def test_status_reports_corrupt_and_missing(tmp_path):
    rel = "planetoid/ind.cora.x"
    assert F.status(rel, tmp_path) == "embedded"
    (tmp_path / "planetoid").mkdir()
    (tmp_path / rel).write_bytes(b"junk")
    assert F.status(rel, tmp_path).startswith("corrupt")
    assert F.status("npz/ms_academic_cs.npz", tmp_path) == "missing"
