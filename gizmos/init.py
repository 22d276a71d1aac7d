# vfxmatte for Nuke: runs for every Nuke session (GUI, command line, farm renders) that has this
# folder on NUKE_PATH. It only registers paths: the VfxMatte gizmo is found in this folder, and
# the gizmo's Python package (vfxmatte_nuke) in python/. Nothing here imports vfxmatte or torch.
import nuke

nuke.pluginAddPath("./python")
