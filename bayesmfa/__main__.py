"""``python -m bayesmfa``: the command line (:mod:`bayesmfa.drivers.cli`), as the ``bayesmfa`` script runs it."""

import sys

from bayesmfa.drivers.cli import main

sys.exit(main())
