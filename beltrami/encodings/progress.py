"""Rich progress bars for long computations, silenceable."""
from __future__ import annotations

from typing import Iterable, Iterator, Sized, TypeVar

T = TypeVar("T")


def progress(items: Iterable[T], description: str, show: bool = True) -> Iterator[T]:
    """Iterate over ``items`` with a rich progress bar (transient; nothing shown when ``show`` is False)."""
    if not show:
        yield from items
        return
    from rich.progress import track

    total = len(items) if isinstance(items, Sized) else None
    yield from track(items, description=description, total=total, transient=True)
