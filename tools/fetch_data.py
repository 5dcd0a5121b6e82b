"""Download (or check) every raw dataset file into a data root, verifying each sha256.

    python tools/fetch_data.py --root ~/data/beltrami          # fetch what is missing, verify all
    python tools/fetch_data.py --root DATA_DIR --check   # report only, download nothing
"""
import argparse
import sys

from rich.console import Console
from rich.table import Table

from beltrami.datasets import files as F
from beltrami.paths import data_root


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", default=None, help="data root (default $BELTRAMI_DATA, then ~/.cache/beltrami/data)")
    p.add_argument("--check", action="store_true", help="only report each file's status")
    args = p.parse_args(argv)
    console = Console()
    table = Table(title=f"raw files under {data_root(args.root)}")
    for col in ("file", "status", "source"):
        table.add_column(col)
    failed = 0
    for rel, spec in F.FILES.items():
        if not args.check:
            try:
                F.fetch(rel, args.root)
            except F.DatasetFileError as err:
                failed += 1
                console.print(f"[red]{rel}[/red]: {err}")
        table.add_row(rel, F.status(rel, args.root), spec.url)
    console.print(table)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
