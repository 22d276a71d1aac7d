# vfxmatte for Nuke: the GUI's menus (runs after init.py, in interactive sessions only).
import nuke

nuke.menu("Nuke").addMenu("vfxmatte").addCommand("VfxMatte", "nuke.createNode('VfxMatte')")
nuke.menu("Nodes").addMenu("vfxmatte").addCommand("VfxMatte", "nuke.createNode('VfxMatte')")
