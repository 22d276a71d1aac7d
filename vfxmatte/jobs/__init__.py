"""Shot job files: YAML -> validated :class:`Job`.

A job file says which plate to matte, where its trimaps come from, which model runs it and
where the mattes go (schema: ``jobs/README.md``). Every error names the file, the line and the
key path::

    jobs/shot010.yaml:12: output.compression: Input should be 'zip', 'dwaa' or 'piz'

Before validation every string value has its environment variables expanded
(:func:`vfxmatte.env.expand_env`: ``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``$$`` for a literal
``$``; ``$F``/``$F4`` are Houdini frame tokens and stay as they are); an unset variable is an
error naming it. After validation relative paths resolve against the job file's folder, so a
job means the same thing from any working directory.

The package's parts, in the order a job goes through them:

- :mod:`vfxmatte.jobs.load`: reading, expansion, validation, error reports (:func:`load_job`,
  :func:`parse_job`)
- :mod:`vfxmatte.jobs.lines`: the YAML line mapper (key path -> line, pydantic error -> line)
- :mod:`vfxmatte.jobs.schema`: the pydantic models (:class:`Job` and its sections)
- :mod:`vfxmatte.jobs.checks`: the on-disk checks (:func:`check_job`)

Example:
    >>> job = load_job("jobs/shot010.yaml")  # doctest: +SKIP
    >>> job.plate.path, job.job_hash[:12]  # doctest: +SKIP
"""

from __future__ import annotations

from vfxmatte.jobs import schema as _schema
from vfxmatte.jobs.checks import check_job, job_views, view_jobs
from vfxmatte.jobs.load import load_job, parse_job
from vfxmatte.jobs.schema import *  # noqa: F403 - the schema's public names, listed once in schema.__all__

__all__ = [*_schema.__all__, "check_job", "job_views", "load_job", "parse_job", "view_jobs"]
