"""vfxmatte in Nuke: the gizmo's Python, on Nuke's own interpreter (Python 3.7 to 3.11).

Everything here except :mod:`vfxmatte_nuke.nodes` is plain Python that never imports ``nuke``:
turning a Read node's knob values into a vfxmatte job (:mod:`~vfxmatte_nuke.job`), Nuke
colourspace names into OCIO ones (:mod:`~vfxmatte_nuke.colorspace`), frame patterns, offsets
and windows (:mod:`~vfxmatte_nuke.frames`), the command lines (:mod:`~vfxmatte_nuke.command`),
the JSON log (:mod:`~vfxmatte_nuke.log`) and the Read and Copy nodes a run leaves
(:mod:`~vfxmatte_nuke.result`). :mod:`~vfxmatte_nuke.nodes` is the thin layer that reads and
sets knobs. Nothing here imports vfxmatte or torch: the gizmo drives the ``vfxmatte`` command in
its own process, so Nuke's bundled libraries and vfxmatte's never meet.
"""

__all__ = ["colorspace", "command", "frames", "job", "log", "result"]
