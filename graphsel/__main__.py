"""``python -m graphsel`` runs the command line."""

import sys

from graphsel.cli import main

sys.exit(main())
