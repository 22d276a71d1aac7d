"""Render-farm runs of a job: chunks, and submission to OpenCue, Deadline or local workers.

A farm runs ``vfxmatte run`` (and, for keyframe jobs, ``vfxmatte propagate``) once per chunk
of the job's frames, on whichever machines it picks; every frame's files depend only on the
job and the inputs on disk, so however a shot is split the frames are byte-identical.

- :mod:`vfxmatte.farm.chunks`: the job's frame list, ``--chunk N/M`` splits and the frame
  range a farm task passes to ``--frames``;
- :mod:`vfxmatte.farm.commands`: the per-chunk command lines, quoted for the shell or
  process launcher that runs them;
- :mod:`vfxmatte.farm.opencue`: an OpenCue job built with pyoutline (job spec XML, pycue);
- :mod:`vfxmatte.farm.deadline`: Deadline CommandLine-plugin job and plugin info files;
- :mod:`vfxmatte.farm.local`: the chunks run in parallel worker processes on this machine.
"""
