"""``python -m semsim`` runs the ``semsim`` command."""

import sys

from semsim.cli.main import main

sys.exit(main())
