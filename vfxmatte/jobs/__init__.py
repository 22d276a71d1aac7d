"""Shot job files: YAML -> validated :class:`Job` (the schema and loader: :mod:`vfxmatte.jobs.schema`)."""

from vfxmatte.jobs.schema import *  # noqa: F401,F403
from vfxmatte.jobs.schema import __all__  # noqa: F401
