"""Raw dataset files: where they live, their sha256, their canonical URLs, and verified downloads.

Data root, first that is set: the ``root`` argument, ``$BELTRAMI_DATA``, ``$XDG_CACHE_HOME/beltrami/data``
(``~/.cache/beltrami/data``). Files sit under the root in the layout of the published data files
(``planetoid/ind.cora.x``, ``npz/amazon_electronics_photo.npz``, ``ogbn_arxiv/raw/edge.csv.gz``).

Every file is checked against the sha256 in :data:`FILES` before it is used. A missing file is downloaded
from its canonical URL to a temporary name in the same folder, verified, then renamed into place (so a
crash never leaves a half-written file under the real name). Two ogbn-arxiv files (edges, features) have
no published checksum: they come out of OGB's zip (whose members are CRC-checked), and their sha256 is
recorded beside them on first use so later corruption is still caught.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, Optional, Tuple

from ..atomic import atomic_write_bytes
from ..paths import PathLike, data_root

EMBEDDED_ROOT = Path(__file__).parent / "raw"
"""Cora's eight raw files ship inside the package, so the default dataset works offline."""

_PLANETOID_URL = "https://github.com/kimiyoung/planetoid/raw/master/data/{}"
_NPZ_URL = "https://github.com/shchur/gnn-benchmark/raw/master/data/npz/{}"
OGB_ARXIV_ZIP = "http://snap.stanford.edu/ogb/data/nodeproppred/arxiv.zip"


class DatasetFileError(OSError):
    """A raw dataset file is missing, corrupt, or fails its checksum."""


class MissingFileError(DatasetFileError, FileNotFoundError):
    """A raw file is absent and could not be downloaded."""


class ChecksumError(DatasetFileError):
    """A raw file's sha256 differs from the published one."""


class CorruptFileError(DatasetFileError):
    """A raw file has the right name but cannot be parsed (truncated, wrong format)."""


@dataclass(frozen=True)
class RawFile:
    """One raw file: path under the data root, sha256 (None: none published), URL, zip member if any."""

    relpath: str
    sha256: Optional[str]
    url: str
    member: Optional[str] = None
    size: Optional[int] = None


def _planetoid(name: str, sha: str, size: int) -> RawFile:
    return RawFile(f"planetoid/{name}", sha, _PLANETOID_URL.format(name), size=size)


def _arxiv(name: str, sha: Optional[str], size: Optional[int] = None) -> RawFile:
    return RawFile(f"ogbn_arxiv/raw/{name}", sha, OGB_ARXIV_ZIP, member=f"arxiv/raw/{name}", size=size)


# Values from the verified raw files' SHA256 sums and the Git LFS pointers of
# D61-IA/FisherGCN for ind.pubmed.allx and the gnn-benchmark npz files).
FILES: Dict[str, RawFile] = {
    f.relpath: f
    for f in [
        _planetoid("ind.cora.x", "23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab", 22119),
        _planetoid("ind.cora.y", "94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1", 4054),
        _planetoid("ind.cora.tx", "b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a", 148025),
        _planetoid("ind.cora.ty", "41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad", 28135),
        _planetoid("ind.cora.allx", "9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543", 257305),
        _planetoid("ind.cora.ally", "2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71", 47959),
        _planetoid("ind.cora.graph", "58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d", 59847),
        _planetoid("ind.cora.test.index", "297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875", 5000),
        _planetoid("ind.citeseer.x", "d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6", 31087),
        _planetoid("ind.citeseer.y", "8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924", 3014),
        _planetoid("ind.citeseer.tx", "539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21", 260321),
        _planetoid("ind.citeseer.ty", "55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce", 24135),
        _planetoid("ind.citeseer.allx", "2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668", 595021),
        _planetoid("ind.citeseer.ally", "f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95", 55623),
        _planetoid("ind.citeseer.graph", "d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7", 61987),
        _planetoid("ind.citeseer.test.index", "2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4", 5000),
        _planetoid("ind.pubmed.x", "fbe9cb5c47200d1b7769a26e579be3b7130b556831f9d850e77c4c74f2599b33", 23172),
        _planetoid("ind.pubmed.y", "e6c807633307a07ed659249006536a147c7999c797f11a2560752990181b41b3", 854),
        _planetoid("ind.pubmed.tx", "4eb5f5d0f30f26497eb0ac6ac9719d09c67e284f1ed0385c93f3ef27a671da3d", 405505),
        _planetoid("ind.pubmed.ty", "ee2e0d4819d9fbcc403689c3bf2e49face401b605932f093bc58ab6461130fdd", 12135),
        _planetoid("ind.pubmed.allx", "508e538e2abdccdd54c4d3e9f49d638b4af7107d85845f66ddea5a5152658b7e", 7578385),
        _planetoid("ind.pubmed.ally", "0c37bbe3b5014ec365e9d393cf4791925e5ed94fb194305d74f064a8d7b50f0e", 224739),
        _planetoid("ind.pubmed.graph", "5b89f0036ca22909471f1e6558eb42fa06e0c730a577bde5b058b40638f81dc9", 471808),
        _planetoid("ind.pubmed.test.index", "b101d421688bbaecbd82e8a18f1e282378d6830f3a37666f28ebc47f844341b5", 6000),
        RawFile("npz/amazon_electronics_computers.npz",
                "736ba1d9fd85eac2da83a5ad25c463f04b0031a6ca01563f90a7099d9e8ffb2c",
                _NPZ_URL.format("amazon_electronics_computers.npz"), size=31921488),
        RawFile("npz/amazon_electronics_photo.npz",
                "bdb1feb8e6ff42ee44024b04479145029c563fd42fc31bff80af20887ba0439a",
                _NPZ_URL.format("amazon_electronics_photo.npz"), size=17113960),
        RawFile("npz/ms_academic_cs.npz",
                "933c745734e78908c7eb77172a673fee0503f30e26e5a99b36814d88534c42e3",
                _NPZ_URL.format("ms_academic_cs.npz"), size=12835626),
        _arxiv("node-label.csv.gz", "b06e7cf75d909de66ce49bc4188a6dc525224f85dd6dcb36137de3d9321830d1", 123505),
        _arxiv("node_year.csv.gz", "fb97e19d6003deb09197f6df6b10ea1ab86ee49d98885836c3c857ab58d897f3", 73612),
        _arxiv("num-node-list.csv.gz", "9aa60a342efd209408933ace51e6b0a814e81c2894a993c44f9b173e477e2e82", 51),
        _arxiv("num-edge-list.csv.gz", "430f1e00ae204bbb3208c5f494ab70170e9f2995fd3548d1754a74a8f59250d1", 52),
        _arxiv("edge.csv.gz", None),
        _arxiv("node-feat.csv.gz", None),
    ]
}


def sha256_of(path: PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _expected_sha(spec: RawFile, path: Path) -> Optional[str]:
    if spec.sha256 is not None:
        return spec.sha256
    side = _sidecar(path)
    return side.read_text().split()[0] if side.exists() else None


def verify(spec: RawFile, path: Path) -> str:
    """Check ``path`` against its expected sha256 and return the digest; raise ChecksumError on mismatch.

    For a file without a published checksum the digest is recorded in a ``.sha256`` sidecar the first time
    (trust on first use, with a warning) and checked against it afterwards.
    """
    digest = sha256_of(path)
    expected = _expected_sha(spec, path)
    if expected is None:
        warnings.warn(f"{path}: no published sha256 exists for this file; recording {digest[:12]}... "
                      "so that later corruption is detected", stacklevel=3)
        try:
            atomic_write_bytes(_sidecar(path), f"{digest}  {path.name}\n".encode())
        except OSError:
            pass  # read-only data root: nothing to record, the file is still usable
    elif digest != expected:
        size = path.stat().st_size
        hint = f" (size {size} bytes, expected {spec.size})" if spec.size and size != spec.size else ""
        raise ChecksumError(
            f"{path} is corrupt or not the expected file: sha256 {digest} != expected {expected}{hint}. "
            f"Delete it to download it again from {spec.url}"
        )
    return digest


def _download(url: str, dest: Path, timeout: float) -> None:
    """Stream ``url`` into ``dest`` (a temporary name the caller renames)."""
    with urllib.request.urlopen(url, timeout=timeout) as response, open(dest, "wb") as out:
        shutil.copyfileobj(response, out, length=1 << 20)


def fetch(relpath: str, root: Optional[PathLike] = None, *, download: bool = True,
          timeout: float = 60.0) -> Path:
    """Return the verified local path of raw file ``relpath``, downloading it if needed.

    Search order: the data root, then (Cora only) the copy embedded in the package, then the canonical
    URL. Raises :class:`MissingFileError` (naming the file, the URL and the root searched) when the file is
    absent and cannot be downloaded, :class:`ChecksumError` when a file does not match its sha256.
    """
    return _fetch(relpath, root, download, timeout)[0]


def fetch_many(relpaths: Iterable[str], root: Optional[PathLike] = None, *, download: bool = True,
               timeout: float = 60.0) -> Tuple[Dict[str, Path], Dict[str, str]]:
    """Fetch several raw files: ``(relpath -> verified path, relpath -> sha256)``.

    Every file is tried; if some are missing, one :class:`MissingFileError` lists them all."""
    found, missing = {}, []
    for r in relpaths:
        try:
            found[r] = _fetch(r, root, download, timeout)
        except MissingFileError as err:
            missing.append(str(err))
    if missing:
        raise MissingFileError("\n".join(missing) if len(missing) == 1 else
                               f"{len(missing)} files are missing:\n- " + "\n- ".join(missing))
    return {r: p for r, (p, _) in found.items()}, {r: d for r, (_, d) in found.items()}


def _fetch(relpath: str, root: Optional[PathLike], download: bool, timeout: float) -> Tuple[Path, str]:
    if relpath not in FILES:
        raise KeyError(f"no raw file {relpath!r} is known; known: {', '.join(sorted(FILES))}")
    spec = FILES[relpath]
    base = data_root(root)
    path = base / relpath
    if path.exists():
        return path, verify(spec, path)
    embedded = EMBEDDED_ROOT / relpath
    if embedded.exists():
        return embedded, verify(spec, embedded)
    if not download:
        raise MissingFileError(f"{relpath} is missing from data root {base} and download=False. "
                               f"Get it from {spec.url}{_member_note(spec)} and place it at {path}")
    try:
        _download_into(spec, base, timeout)
    except (urllib.error.URLError, OSError, zipfile.BadZipFile) as err:
        if isinstance(err, DatasetFileError):
            raise
        raise MissingFileError(
            f"{relpath} is missing from data root {base} and downloading {spec.url} failed ({err}). "
            f"On a machine with internet, download it{_member_note(spec)} and place it at {path}, "
            f"or point $BELTRAMI_DATA at a folder that has it"
        ) from err
    return path, verify(spec, path)


def _member_note(spec: RawFile) -> str:
    return f" (member {spec.member} of that zip)" if spec.member else ""


def _download_into(spec: RawFile, base: Path, timeout: float) -> None:
    target = base / spec.relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _download(spec.url, tmp, timeout)
        if spec.member is None:
            if spec.sha256 is not None and sha256_of(tmp) != spec.sha256:
                raise ChecksumError(f"download of {spec.url} does not match the sha256 of {spec.relpath} "
                                    f"({spec.sha256}); nothing was written to {target}")
            os.replace(tmp, target)
        else:
            _extract_members(tmp, spec.url, base)
    finally:
        tmp.unlink(missing_ok=True)


def _extract_members(archive: Path, url: str, base: Path) -> None:
    """Extract every registered file that comes from the zip at ``url`` (CRC-checked by zipfile)."""
    with zipfile.ZipFile(archive) as zf:
        for spec in FILES.values():
            if spec.url != url or spec.member is None:
                continue
            target = base / spec.relpath
            if target.exists():
                continue
            fd, part = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".part")
            try:
                with os.fdopen(fd, "wb") as out, zf.open(spec.member) as src:
                    shutil.copyfileobj(src, out, length=1 << 20)
                if spec.sha256 is not None and sha256_of(part) != spec.sha256:
                    raise ChecksumError(f"{spec.member} in {url} does not match the sha256 of {spec.relpath}")
                os.replace(part, target)
            finally:
                Path(part).unlink(missing_ok=True)


def status(relpath: str, root: Optional[PathLike] = None) -> str:
    """One-line status of a raw file without downloading: 'verified', 'embedded', 'missing' or 'corrupt'."""
    spec = FILES[relpath]
    path = data_root(root) / relpath
    for where, label in ((path, "verified"), (EMBEDDED_ROOT / relpath, "embedded")):
        if where.exists():
            try:
                verify(spec, where)
            except ChecksumError:
                return f"corrupt ({where})"
            return label
    return "missing"
