"""``python -m training``: see :mod:`training.cli`."""

import sys

from training.cli import main

# Guarded: spawned data loader workers import this module as __mp_main__.
if __name__ == "__main__":
    sys.exit(main())
