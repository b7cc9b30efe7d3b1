"""``python -m graphsel`` runs the command line."""

import sys

from graphsel.cli import main

if __name__ == "__main__":  # not when pytest imports this module to collect its doctests
    sys.exit(main())
