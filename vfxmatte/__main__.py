"""``python -m vfxmatte``: the same command line as the ``vfxmatte`` script."""

import sys

from vfxmatte.cli import main

sys.exit(main())
