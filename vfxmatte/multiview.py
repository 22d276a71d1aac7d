"""Jobs of several views: each view matted as a job of that view alone, all in one file a frame.

With ``plate.view`` a list (``[left, right]``) or ``all`` (the views of each plate file),
:class:`MultiViewPipeline` runs one :class:`~vfxmatte.pipeline.ShotPipeline` per view, on that
view's own job (:meth:`~vfxmatte.jobs.Job.for_view`: its plate, trimaps or keyframes,
propagated trimaps and temporal window; one model session for all), and writes each frame's
views into one single-part EXR as OpenEXR's multi-view convention names them: ``multiView``
lists the views, the default (first) view's channels are unprefixed (``A``), every other
view's carry its name (``right.A``), and a layered channel has the view as its last layer
(``matte.left.A``, ``matte.right.A``). A multi-view reader (Nuke) so shows each eye's matte
as that eye; a reader knowing no views sees the default view's ``A``. Each view's alpha is
the one a job of that view alone writes, to the bit.

A frame is matted when every view can be: it fails, or else skips, with the first view that
fails or skips (the reason names the view). ``skip_existing`` keeps or redoes the whole file.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Iterable

import numpy as np

from vfxmatte.errors import InputError
from vfxmatte.io.image import ImageInfo, view_channel
from vfxmatte.io.sequence import FrameRanges, FrameSequence
from vfxmatte.jobs import Job, in_view, view_jobs
from vfxmatte.pipeline import (
    CheckReport,
    FrameEvent,
    FramePlan,
    Matter,
    Progress,
    RunReport,
    ShotPipeline,
    _pattern_reason,
    job_frames,
)

__all__ = ["MultiViewPipeline"]

#: A frame's outcome over its views is the first of these that any view has.
_OUTCOME_ORDER = ("failed", "skipped", "held", "done")


def _windows(info: ImageInfo) -> tuple[int, ...]:
    return (info.x, info.y, info.width, info.height, info.full_x, info.full_y, info.full_width, info.full_height)


class MultiViewPipeline(ShotPipeline):
    """Runs a job of several views (see the module docstring); used as a :class:`ShotPipeline`
    (:func:`~vfxmatte.pipeline.pipeline_for` picks it)."""

    def __init__(self, job: Job, device: str | None = None, session: Matter | None = None) -> None:
        super().__init__(job, device=device, session=session)
        self._views: dict[str, ShotPipeline] | None = None

    @property
    def views(self) -> dict[str, ShotPipeline]:
        """view -> the pipeline of that view's job, in the file's order (built on first use).

        Raises:
            JobError: ``all``, and the first plate file names no views (:func:`~vfxmatte.jobs.job_views`).
        """
        if self._views is None:
            self._views = {v: ShotPipeline(j, device=self.device, session=self._session) for v, j in view_jobs(self.job).items()}
        return self._views

    def open(self) -> None:
        """Load the model once and open every view's pipeline on it."""
        super().open()
        for pipe in self.views.values():
            if pipe._session is None:
                pipe._session, pipe._own_session = self._session, False
            pipe.open()

    def close(self) -> None:
        for pipe in (self._views or {}).values():
            pipe.close()
        super().close()

    # -- planning
    def plan(self, frames: Iterable[int] | None = None, outputs: bool = True) -> list[FramePlan]:
        """Each view's plan of each frame (:meth:`ShotPipeline.plan`), joined per frame; then
        ``skip_existing`` on the file of all views."""
        wanted = list(dict.fromkeys(int(f) for f in frames)) if frames is not None else job_frames(self.job)
        per_view = {v: pipe.plan(wanted, outputs=False) for v, pipe in self.views.items()}
        for v, plans in per_view.items():
            # A view the plates lack stops the run, even when each frame fails for it already
            # (its trimaps are missing too: the view is what is wrong).
            self.views[v].check_view(next((p.plate for p in plans if p.plate is not None), None))
        job_hash = self.job.job_hash
        return [self._joined(f, tuple((v, p[i]) for v, p in per_view.items()), job_hash, outputs)
                for i, f in enumerate(wanted)]

    def _joined(self, f: int, views: tuple[tuple[str, FramePlan], ...], job_hash: str, outputs: bool) -> FramePlan:
        out = self._output.path(f)
        first = views[0][1]
        for kind in ("fail_reason", "skip_reason"):
            for v, p in views:
                reason = getattr(p, kind)
                if reason is not None:
                    return FramePlan(f, out, p.plate, p.trimap, p.held_from, **{kind: f"view {v}: {reason}"})
        redo = None
        if outputs:
            kept, redo = self._existing_output(f, out, job_hash)
            if kept is not None:
                return FramePlan(f, out, first.plate, first.trimap, first.held_from, skip_reason=kept, views=views)
        return FramePlan(f, out, first.plate, first.trimap, first.held_from, redo_reason=redo, views=views)

    # -- checking without running
    def _prepare(self, first: FramePlan, dry_run: bool) -> None:
        for v, p in first.views:  # an unknown view stops the run before the model loads
            self.views[v].check_view(p.plate)
        if not dry_run:
            self.open()
        for v, p in first.views:
            self.views[v]._prepare(p, dry_run)

    def check_budget_of(self, frame: int) -> None:
        """Each view's :meth:`ShotPipeline.check_budget_of`."""
        for pipe in self.views.values():
            pipe.check_budget_of(frame)

    def check_frame(self, item: FramePlan) -> None:
        """Each view's :meth:`ShotPipeline.check_frame`."""
        for v, p in item.views:
            self.views[v].check_frame(p)

    def check(self, frames: Iterable[int] | FrameRanges | None = None, all_frames: bool = False) -> CheckReport:
        """Each view's :meth:`ShotPipeline.check`, joined frame by frame: a frame's outcome is
        the first of failed, skipped, held, done over its views (reasons naming the view), then
        ``skip_existing`` on the file of all views. Holds one outcome per frame while joining."""
        reports = {v: pipe.check(frames, all_frames) for v, pipe in self.views.items()}
        outcome: dict[int, tuple[str, str | None]] = {}
        for v, rep in reports.items():
            for kind, reason, runs in rep.runs():
                why = f"view {v}: {reason}" if kind in ("failed", "skipped") else reason
                for run in runs:
                    for f in run:
                        old = outcome.get(f)
                        if old is None or _OUTCOME_ORDER.index(kind) < _OUTCOME_ORDER.index(old[0]):
                            outcome[f] = (kind, why)
        if frames is not None:
            wanted = FrameRanges.of(frames)
        else:
            first = next(iter(self.views.values())).job
            wanted = first.plate.frame_ranges or FrameRanges.of(FrameSequence(first.plate.path).frames)
        job_hash = self.job.job_hash
        report = CheckReport(self.job.shot, job_hash, self.job.output.path, len(wanted),
                             headers_checked=sum(r.headers_checked for r in reports.values()))
        for run in wanted.runs:
            for f in run:
                kind, reason = outcome[f]
                if kind in ("done", "held"):
                    kept, redo = self._existing_output(f, self._output.path(f), job_hash)
                    if kept is not None:
                        kind, reason = "skipped", _pattern_reason(kept, f, self)
                    elif redo is not None:
                        reason = _pattern_reason(redo, f, self)
                report.add(kind, reason, range(f, f + run.step, run.step))
        return report

    # -- one frame
    def process(self, item: FramePlan) -> None:
        """Matte every view of ``item`` and write them into its one file.

        Raises:
            VfxMatteError: a view's files are unreadable or mismatched, the views' data or
                display windows differ (one part has one), or the file is unwritable.
        """
        if not item.views:
            raise InputError(f"frame {item.frame}: nothing to read ({item.fail_reason or item.skip_reason})")
        self.open()
        channels: dict[str, np.ndarray] = {}
        metadata: dict[str, Any] | None = None
        info: ImageInfo | None = None
        for i, (v, p) in enumerate(item.views):
            pipe = self.views[v]
            matted, alpha = pipe._alpha(p)
            if info is None:
                info = matted.info
            elif _windows(matted.info) != _windows(info):
                raise InputError(
                    f"frame {item.frame}: view {v!r} ({p.plate}) has other data or display windows than view "
                    f"{item.views[0][0]!r} ({item.plate}): one multi-view part holds one of each"
                )
            own, meta = pipe._channels(matted.info, matted.rgb, alpha)
            channels.update({view_channel(name, v, default=i == 0): px for name, px in own.items()})
            metadata = meta if metadata is None else metadata
        assert info is not None and metadata is not None
        self._write(item, info, channels, metadata, views=[v for v, _ in item.views])

    # -- propagated trimaps
    def propagate(
        self, frames: Iterable[int] | None = None, out: str | None = None, progress: Progress | None = None
    ) -> RunReport:
        """Each view's :meth:`ShotPipeline.propagate` in turn (``out`` must name the view:
        ``%V``); a frame is failed when a view failed, done when a view wrote its trimap."""
        if not self.propagated:
            return super().propagate(frames, out, progress)  # raises: nothing to propagate
        if out is not None and "%V" not in out and "%v" not in out:
            raise InputError(f"propagate --out {out}: each view's trimaps are its own: name the view in the pattern (%V)")
        pattern = out if out is not None else self.job.propagated_trimaps
        report = RunReport(self.job.shot, self.job.job_hash, pattern)
        offset, count = 0, len(self.views)
        done: set[int] = set()
        for v, pipe in self.views.items():

            def relay(ev: FrameEvent, start: int = offset) -> None:
                if progress is not None:
                    progress(dataclasses.replace(ev, index=start + ev.index, total=ev.total * count))

            own = pipe.propagate(frames, out=None if out is None else in_view(out, v), progress=relay)
            offset += len(own.done) + len(own.skipped) + len(own.failed)
            for f, reason in own.failed.items():
                report.failed.setdefault(f, f"view {v}: {reason}")
            for f, reason in own.skipped.items():
                report.skipped.setdefault(f, f"view {v}: {reason}")
            done.update(own.done)
            report.internal |= own.internal
            for f, dt in own.seconds.items():
                report.seconds[f] = report.seconds.get(f, 0.0) + dt
            report.total_seconds += own.total_seconds
        report.done = sorted(done - set(report.failed))
        report.skipped = {f: r for f, r in report.skipped.items() if f not in done and f not in report.failed}
        return report
