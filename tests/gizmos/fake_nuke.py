"""A minimal stand-in for Nuke's ``nuke`` module: only what vfxmatte_nuke.nodes calls.

It holds nodes and knobs as plain objects and records what would have happened in Nuke (Write
nodes executed, messages shown, progress set). It is loaded as ``nuke`` by the ``fake_nuke``
fixture for the tests of the Nuke layer only; the plain-Python modules are tested without it.
The gizmo's knobs come from the real .gizmo file (:func:`create_gizmo`), so a knob the Python
uses but the gizmo lacks fails here as it would in Nuke.
"""

import re
import threading

_state = {}


def reset():
    _state.clear()
    _state.update(nodes=[], executed=[], plugin_paths=[], menus={}, messages=[], main_thread_calls=[], progress=[], this=None,
                  cancel=threading.Event(), on_execute=None, root=RootNode("Root", "Root"))
    _state["root"].add("name", "Root")
    for name, value in (("colorManagement", "Nuke"), ("OCIO_config", "nuke-default"), ("customOCIOConfigPath", "")):
        _state["root"].add(name, value)


class Knob(object):
    def __init__(self, name, value=None, label=""):
        self._name, self._value, self.label, self.visible = name, value, label, True

    def name(self):
        return self._name

    def value(self):
        return self._value

    def setValue(self, value):
        self._value = value

    def setVisible(self, visible):
        self.visible = bool(visible)


def String_Knob(name, label=""):
    return Knob(name, "", label)


class Format(object):
    def __init__(self, width, height):
        self._w, self._h = width, height

    def width(self):
        return self._w

    def height(self):
        return self._h


class Node(object):
    def __init__(self, node_class, name):
        self._class, self._name = node_class, name
        self._knobs, self._inputs = {}, {}
        self._x = self._y = 0
        self._format, self._bbox = Format(2048, 1556), [0, 0, 2048, 1556]

    def add(self, name, value):
        self._knobs[name] = Knob(name, value)
        return self._knobs[name]

    def Class(self):
        return self._class

    def name(self):
        return self._name

    def fullName(self):
        return self._name

    def setName(self, name, uncollide=True, updateExpressions=False):
        taken = set(n.name() for n in _state["nodes"] if n is not self)
        base, i = name, 1
        while uncollide and name in taken:
            name, i = "%s%d" % (base, i), i + 1
        self._name = name

    def knob(self, name):
        return self._knobs.get(name)

    def __getitem__(self, name):
        if name not in self._knobs:
            raise NameError("knob %s does not exist" % name)
        return self._knobs[name]

    def addKnob(self, knob):
        self._knobs[knob.name()] = knob

    def input(self, i):
        return self._inputs.get(i)

    def setInput(self, i, node):
        self._inputs[i] = node
        return True

    def xpos(self):
        return self._x

    def ypos(self):
        return self._y

    def setXYpos(self, x, y):
        self._x, self._y = x, y

    def format(self):
        return self._format

    def bbox(self):
        return list(self._bbox)


class RootNode(Node):
    """``nuke.root()``: its ``name()`` is the script's path (``Root`` while unsaved)."""

    def name(self):
        return self["name"].value()


# Knobs a freshly made node of Nuke's own classes has (the ones the package touches).
_CLASS_KNOBS = {
    "Read": {"file": "", "first": 1, "last": 1, "origfirst": 1, "origlast": 1, "frame_mode": "expression",
             "frame": "", "colorspace": "default", "raw": False, "on_error": "error", "before": "hold",
             "after": "hold"},
    "Write": {"file": "", "file_type": "", "channels": "rgb", "raw": False},
    "Copy": {"from0": "rgba.alpha", "to0": "rgba.alpha"},
}


def _make(node_class, name=None, **knobs):
    count = sum(1 for n in _state["nodes"] if n.Class() == node_class) + 1
    node = Node(node_class, name or "%s%d" % (node_class, count))
    for k, v in _CLASS_KNOBS.get(node_class, {}).items():
        node.add(k, v)
    for k, v in knobs.items():
        node[k].setValue(v)
    _state["nodes"].append(node)
    return node


class _Nodes(object):
    def __getattr__(self, node_class):
        return lambda **knobs: _make(node_class, **knobs)


nodes = _Nodes()


def create_gizmo(gizmo_file, name="VfxMatte1"):
    """A node of the gizmo's class with the knobs (and defaults) its .gizmo file declares."""
    import gizmo_tcl  # the test's TCL reader, beside this file

    spec = gizmo_tcl.read_gizmo(gizmo_file)
    node = Node(spec.class_name, name)
    for knob in spec.knobs:
        node.add(knob.name, spec.defaults.get(knob.name, knob.default))
    _state["nodes"].append(node)
    return node


def root():
    return _state["root"]


def toNode(name):
    for node in _state["nodes"]:
        if node.fullName() == name:
            return node
    return None


def allNodes(filter=None, group=None, recurseGroups=False):
    return [n for n in _state["nodes"] if filter is None or n.Class() == filter]


def delete(node):
    _state["nodes"].remove(node)


def filename(node):
    """As Nuke's: TCL evaluated (nothing to evaluate here), ``####`` given as ``%04d``."""
    return re.sub(r"#+", lambda m: "%%0%dd" % len(m.group(0)), node["file"].value())


def execute(node, first, last, incr=1):
    _state["executed"].append((node.name(), first, last, dict((k, v.value()) for k, v in node._knobs.items())))
    if _state["on_execute"] is not None:
        _state["on_execute"](node, first)


def thisNode():
    return _state["this"]


def thisKnob():
    return _state["this_knob"]


def message(text):
    _state["messages"].append(text)


def executeInMainThread(call, args=(), kwargs={}):
    _state["main_thread_calls"].append(getattr(call, "__name__", str(call)))
    call(*args, **kwargs)


class ProgressTask(object):
    def __init__(self, title):
        self.title = title
        _state["progress"].append((title, None, None))

    def setProgress(self, value):
        _state["progress"].append((self.title, "progress", value))

    def setMessage(self, text):
        _state["progress"].append((self.title, "message", text))

    def isCancelled(self):
        return _state["cancel"].is_set()


def pluginAddPath(path, addToSysPath=True):
    _state["plugin_paths"].append((path, addToSysPath))


class Menu(object):
    def __init__(self, path):
        self.path = path

    def addMenu(self, name):
        return Menu(self.path + "/" + name)

    def addCommand(self, name, command):
        _state["menus"][self.path + "/" + name] = command


def menu(name):
    return Menu(name)


def state():
    return _state


reset()
