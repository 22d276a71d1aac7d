"""On-disk checks of a validated job: do the files it names exist and fit together?

The schema checks a job's shape; these checks need the file system, the checkpoint's header
and the OCIO config. They stop at the first problem and name the job file, line and key.
Frame-by-frame checks (which plate and trimap frames are missing) are the pipeline's plan.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from vfxmatte.errors import CheckpointError, ColorError, ImageReadError, JobError, SequenceError
from vfxmatte.io.sequence import FrameSequence
from vfxmatte.jobs.lines import where
from vfxmatte.jobs.schema import Job, MaskTrimap, SequenceTrimap, has_frame_token

__all__ = ["check_job", "job_views", "view_jobs"]


def check_job(job: Job) -> None:
    """Check that what the job names exists: checkpoint (its tensors fit the architecture its
    metadata describes), OCIO config and colourspace, plate frames on disk, still trimap files.

    Frame-by-frame checks (which plate and trimap frames are missing) are the pipeline's plan.

    Raises:
        JobError: naming the job file, line and key of the first problem.
    """
    # Imported on use: they pull in torch and OCIO, which parsing a job does not need.
    from vfxmatte import color
    from vfxmatte.checkpoint import check_checkpoint

    def at(path: tuple[str, ...]) -> str:
        return where(job.source, job.lines, path)

    try:
        arch = check_checkpoint(job.model.checkpoint)  # tensors fit the architecture: as run loads it
    except CheckpointError as exc:
        raise JobError(f"{at(('model', 'checkpoint'))}: {exc}") from None
    if job.model.tile_size % arch.stride:
        raise JobError(
            f"{at(('model', 'tile_size'))}: {job.model.tile_size} is not a multiple of {arch.stride}, "
            f"the stride of {job.model.checkpoint} ({arch.name})"
        )
    if job.model.tile_size and job.model.tile_size - job.model.overlap < arch.stride:
        # tiles start on the stride, so neighbours lie at least one stride apart (tiling.plan_tiles)
        raise JobError(
            f"{at(('model', 'overlap'))}: {job.model.overlap} leaves tiles of {job.model.tile_size} no step of "
            f"{arch.stride} (the stride of {job.model.checkpoint}) between them; overlap must be at most "
            f"tile_size - {arch.stride}"
        )
    try:
        config = color.load_config(job.color.config)
    except ColorError as exc:
        raise JobError(f"{at(('color', 'config'))}: {exc}") from None
    try:
        color.resolve_colorspace(config, job.plate.colorspace)
    except ColorError as exc:
        raise JobError(f"{at(('plate', 'colorspace'))}: {exc}") from None
    if job.output.rgb_colorspace is not None:
        if not job.output.rgba:
            raise JobError(f"{at(('output', 'rgb_colorspace'))}: needs output.rgba: true (no RGB is written)")
        try:
            color.ColorConverter(config, job.plate.colorspace, job.output.rgb_colorspace)
        except ColorError as exc:
            raise JobError(f"{at(('output', 'rgb_colorspace'))}: {exc}") from None
    if job.plate.multi_view:
        for one in view_jobs(job).values():  # each view's plates and trimaps, as its own job names them
            _check_files(one, at)
    else:
        _check_files(job, at)


def job_views(job: Job) -> list[str]:
    """The views a job of several (``plate.view`` a list, or ``all``) mattes, in order: the
    list, or the views of the first plate file on disk (default view first).

    Raises:
        JobError: ``all``, and no plate file on disk, or the first one names no views.
    """
    from vfxmatte.io.image import file_views  # imported on use: OpenImageIO

    view = job.plate.view
    if isinstance(view, list):
        return list(view)
    at = where(job.source, job.lines, ("plate", "view"))
    try:
        plates = FrameSequence(job.plate.path)
        first = plates.discover()[:1]
    except SequenceError as exc:
        raise JobError(f"{where(job.source, job.lines, ('plate', 'path'))}: {exc}") from None
    if not first:
        raise JobError(f"{at}: all: no frames of {job.plate.path} exist on disk to read the views from")
    path = plates.path(first[0])
    try:
        views = file_views(path)
    except ImageReadError as exc:
        raise JobError(f"{at}: all: cannot read the views of {path}: {exc}") from None
    if not views:
        raise JobError(f"{at}: all: {path} names no views (no multiView or part view attributes)")
    return views


def view_jobs(job: Job) -> dict[str, Job]:
    """view -> that view's job (:meth:`Job.for_view`) for a job of several views, in order
    (:func:`job_views`).

    Raises:
        JobError: as :func:`job_views`, or a view's paths are not a valid job (``all`` only:
            listed views are checked at load), naming the key.
    """
    jobs = {}
    for view in job_views(job):
        try:
            jobs[view] = job.for_view(view)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = tuple(str(k) for k in err["loc"])
            raise JobError(f"{where(job.source, job.lines, key)}: view {view!r}: "
                           f"{err['msg'].removeprefix('Value error, ')}") from None
    return jobs


def _check_files(job: Job, at) -> None:  # noqa: ANN001 - at: key path -> "file:line"
    """The plate frames and the trimaps or keyframes of ``job`` (one view's) exist."""
    try:
        if not FrameSequence(job.plate.path).discover():
            raise JobError(f"{at(('plate', 'path'))}: no frames of {job.plate.path} exist on disk")
    except SequenceError as exc:
        raise JobError(f"{at(('plate', 'path'))}: {exc}") from None
    tri = job.trimap
    if tri.propagated:
        keys = FrameSequence(tri.path)
        listed = tri.keyframe_list
        if listed is None and not keys.discover():
            raise JobError(f"{at(('trimap', 'path'))}: no keyframes of {tri.path} exist on disk")
        for f in listed or ():
            if not keys.path(f).is_file():
                raise JobError(f"{at(('trimap', 'frames'))}: keyframe {f} missing: {keys.path(f)}")
    elif isinstance(tri, (SequenceTrimap, MaskTrimap)) and not has_frame_token(tri.path):
        if not Path(tri.path).is_file():
            raise JobError(f"{at(('trimap', 'path'))}: {tri.path}: no such file")
