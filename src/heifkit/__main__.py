"""``python -m heifkit``: the ``heifkit`` command line (see :mod:`heifkit.cli`)."""

import sys

from .cli import main

# Guarded: worker processes (forkserver, spawn) import the main module again and must not run the command.
if __name__ == "__main__":
    sys.exit(main())
