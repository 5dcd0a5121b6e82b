"""``python -m beltrami.bench``: the same as the ``beltrami-bench`` command."""
import sys

from .cli import main

sys.exit(main())
