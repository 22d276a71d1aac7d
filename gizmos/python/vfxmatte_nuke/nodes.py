"""The gizmo's Nuke side: knob callbacks, buttons, background runs and the nodes they leave.

The only module of the package that imports ``nuke``; everything it decides comes from the
plain-Python modules beside it. It reads knobs in Nuke's main thread, runs vfxmatte in a
background thread with a ``nuke.ProgressTask`` (cancellable), and hands the outcome back with
``nuke.executeInMainThread``, where the Read and Copy nodes are created or updated. Each node it
creates carries a hidden ``vfxmatte_tag`` knob naming its gizmo's ``vfxmatte_id`` and its role,
so a re-run finds and updates it instead of adding another.
"""

import os
import threading
import uuid

import nuke

from vfxmatte_nuke import command, result
from vfxmatte_nuke.colorspace import ColorState
from vfxmatte_nuke.errors import GizmoError
from vfxmatte_nuke.job import KNOBS, ReadState, build_job, job_yaml

__all__ = ["knob_changed", "plan", "propagate_trimaps", "render_trimaps", "run_background",
           "submit_farm", "update_result_nodes", "write_job"]

#: knobs shown only in some trimap modes
_MODE_KNOBS = {"keyframes": ("keyframes", "mask"), "edge_width": ("mask",)}


def knob_changed():
    """The gizmo's ``knobChanged`` callback: show the trimap knobs the chosen mode uses."""
    gizmo, knob = nuke.thisNode(), nuke.thisKnob()
    if knob.name() not in ("trimap_mode", "showPanel"):
        return
    mode = gizmo["trimap_mode"].value()
    for name, modes in _MODE_KNOBS.items():
        gizmo[name].setVisible(mode in modes)


def _settings(gizmo):
    return dict((name, gizmo[name].value()) for name in KNOBS)


def _plate_read(gizmo):
    """The Read node feeding the gizmo's plate input, through Dots and other one-input nodes."""
    node = gizmo.input(0)
    while node is not None and node.Class() != "Read":
        node = node.input(0)
    if node is None:
        raise GizmoError("%s: connect its plate input to a Read node (through Dots if you like)" % gizmo.name())
    return node


def _read_state(read):
    fmt = read.format()
    box = read.bbox()  # x, y, w, h
    return ReadState(
        file=nuke.filename(read) or "",
        first=read["first"].value(), last=read["last"].value(),
        frame_mode=read["frame_mode"].value(), frame=read["frame"].value(),
        colorspace=read["colorspace"].value(), raw=read["raw"].value(),
        on_error=read["on_error"].value(),
        format=(fmt.width(), fmt.height()),
        bbox=(box[0], box[1], box[0] + box[2], box[1] + box[3]),
        name=read.name(),
    )


def _color_state():
    root = nuke.root()

    def value(name):
        knob = root.knob(name)
        return knob.value() if knob is not None else ""

    return ColorState(value("colorManagement"), value("OCIO_config"), value("customOCIOConfigPath"),
                      os.environ.get("OCIO", ""))


def _script_dir():
    name = nuke.root().name()
    return "" if not name or name == "Root" else os.path.dirname(name)


def plan(gizmo):
    """The :class:`~vfxmatte_nuke.job.JobPlan` of ``gizmo`` as its knobs and inputs stand."""
    settings = _settings(gizmo)
    write_file = ""
    if settings["output_write"].strip():
        write = nuke.toNode(settings["output_write"].strip())
        if write is None or write.Class() != "Write":
            raise GizmoError("%s: output from Write names %r, which is not a Write node" % (gizmo.name(), settings["output_write"]))
        write_file = nuke.filename(write) or ""
    return build_job(settings, _read_state(_plate_read(gizmo)), _color_state(), _script_dir(), write_file)


def _gizmo_id(gizmo):
    """The gizmo's tag. A copy-pasted gizmo shares its original's id: the one whose Copy node
    (B input) it is keeps the id, the other gets its own, so each updates its own nodes."""
    knob, me = gizmo["vfxmatte_id"], gizmo.fullName()  # Nuke hands out new wrappers: compare names
    if knob.value():
        others = [n.fullName() for n in nuke.allNodes(gizmo.Class(), recurseGroups=True)
                  if n.fullName() != me and n.knob("vfxmatte_id") is not None and n["vfxmatte_id"].value() == knob.value()]
        copy = _find_tagged("%s/copy" % knob.value())
        owner = copy.input(0).fullName() if copy is not None and copy.input(0) is not None else None
        if others and owner != me and (owner is not None or me > min(others)):
            knob.setValue("")
    if not knob.value():
        knob.setValue(uuid.uuid4().hex[:12])
    return knob.value()


def _status(gizmo, text):
    gizmo["status"].setValue(text)


def _render(gizmo, job_plan):
    """Render the trimap input on the frames the job needs (nothing when it names files)."""
    if not job_plan.render:
        return 0
    source = gizmo.input(1)
    if source is None:
        raise GizmoError("%s: connect the trimap input (a painted trimap, or a Roto for mask mode) "
                         "or set trimap files" % gizmo.name())
    write = nuke.nodes.Write()
    try:
        write.setInput(0, source)
        for frame, path in job_plan.render:
            folder = os.path.dirname(path)
            if folder and not os.path.isdir(folder):
                os.makedirs(folder)
            for name, value in result.write_settings(job_plan.render_kind, path).items():
                write[name].setValue(value)
            nuke.execute(write, frame, frame)
    finally:
        nuke.delete(write)
    return len(job_plan.render)


def _save(job_plan):
    folder = os.path.dirname(job_plan.path)
    if folder and not os.path.isdir(folder):
        os.makedirs(folder)
    tmp = job_plan.path + ".tmp"
    with open(tmp, "w") as f:
        f.write(job_yaml(job_plan.job))
    os.replace(tmp, job_plan.path)  # never a half-written job file
    return job_plan.path


def _prepare(gizmo):
    job_plan = plan(gizmo)
    _render(gizmo, job_plan)
    _save(job_plan)
    return job_plan, command.find_executable(gizmo["executable"].value())


def _background(gizmo, title, argv, finish):
    """Run ``argv`` in a thread under a ProgressTask; ``finish(gizmo, log)`` runs in the main thread."""
    name = gizmo.fullName()
    _status(gizmo, "running: " + command.display(argv))

    def work():
        task = nuke.ProgressTask(title)

        def update(log):
            task.setProgress(log.progress)
            task.setMessage(log.message())

        try:
            log = command.run_command(argv, on_update=update, is_cancelled=task.isCancelled)
        except Exception as exc:  # noqa: BLE001 - a thread's error must reach the user, not vanish
            nuke.executeInMainThread(_report, args=(name, str(exc) or type(exc).__name__, True))
            return
        finally:
            del task  # closes the progress window
        nuke.executeInMainThread(_finish, args=(name, log, finish))

    thread = threading.Thread(target=work, name="vfxmatte")
    thread.daemon = True
    thread.start()
    return thread


def _report(name, message, failed):
    gizmo = nuke.toNode(name)
    if gizmo is not None:
        _status(gizmo, message)
    if failed:
        nuke.message("vfxmatte: " + message)


def _finish(name, log, finish):
    gizmo = nuke.toNode(name)
    if gizmo is not None and finish is not None and log.exit_code in (0, 1) and not log.cancelled:
        finish(gizmo, log)
    _report(name, log.message(), not log.ok and not log.cancelled)  # a cancel needs no popup


def _guarded(action):
    def button(gizmo=None):
        gizmo = gizmo or nuke.thisNode()
        try:
            return action(gizmo)
        except GizmoError as exc:
            _report(gizmo.fullName(), str(exc), True)
            return None
    button.__name__ = action.__name__
    button.__doc__ = action.__doc__
    return button


@_guarded
def render_trimaps(gizmo):
    """*Render trimaps*: render the trimap input to the files the job reads."""
    count = _render(gizmo, plan(gizmo))
    _status(gizmo, "rendered %d trimap frame(s)" % count if count else "nothing to render: the job names trimap files")
    return count


@_guarded
def write_job(gizmo):
    """*Write job*: render the trimaps it needs, write the job file, check it with validate."""
    job_plan, exe = _prepare(gizmo)
    return _background(gizmo, "vfxmatte validate", command.validate_argv(exe, job_plan.path), None)


@_guarded
def run_background(gizmo):
    """*Run in background*: write the job, matte it, then wire the mattes into the comp."""
    job_plan, exe = _prepare(gizmo)

    def finish(node, log):
        update_result_nodes(node, job_plan)

    return _background(gizmo, "vfxmatte " + job_plan.job["shot"], command.run_argv(exe, job_plan.path), finish)


@_guarded
def propagate_trimaps(gizmo):
    """*Propagate trimaps*: write the propagated trimaps and read them back for review."""
    job_plan, exe = _prepare(gizmo)
    trimap = job_plan.job["trimap"]
    if trimap["mode"] != "keyframes" and trimap.get("missing") != "propagate":
        raise GizmoError("%s: propagation needs keyframe trimaps (or roto keyframes)" % gizmo.name())

    def finish(node, log):
        pattern = (log.summary or {}).get("output")
        if pattern:
            _tagged_node(node, "Read", "trimaps", result.trimap_read_settings(pattern, job_plan), 1)

    return _background(gizmo, "vfxmatte propagate", command.propagate_argv(exe, job_plan.path), finish)


@_guarded
def submit_farm(gizmo):
    """*Submit to farm*: ``vfxmatte submit`` with the gizmo's farm knobs."""
    job_plan, exe = _prepare(gizmo)
    argv = command.submit_argv(exe, job_plan.path, gizmo["farm"].value(), send=gizmo["farm_send"].value(),
                               chunk_size=gizmo["chunk_size"].value())
    return _background(gizmo, "vfxmatte submit", argv, None)


def _find_tagged(tag):
    for node in nuke.allNodes(recurseGroups=True):
        knob = node.knob(result.TAG_KNOB)
        if knob is not None and knob.value() == tag:
            return node
    return None


def _tagged_node(gizmo, node_class, role, settings, column):
    """The node of ``node_class`` tagged ``<gizmo id>/<role>``, created beside the gizmo if
    missing, with ``settings`` applied."""
    tag = "%s/%s" % (_gizmo_id(gizmo), role)
    node = _find_tagged(tag)
    if node is None:
        node = getattr(nuke.nodes, node_class)()
        knob = nuke.String_Knob(result.TAG_KNOB, "vfxmatte tag")
        node.addKnob(knob)
        knob.setValue(tag)
        knob.setVisible(False)
        node.setName("%s_%s" % (gizmo.name(), role), uncollide=True)
        node.setXYpos(gizmo.xpos() + 150 * column, gizmo.ypos() + 60)
    for name, value in settings.items():
        node[name].setValue(value)
    return node


def update_result_nodes(gizmo, job_plan):
    """Create or update the Read on the mattes and the Copy that puts the matte into the plate
    stream below the gizmo (B: the gizmo's output, the plate; A: the matte Read)."""
    read = _tagged_node(gizmo, "Read", "matte", result.matte_read_settings(job_plan), 1)
    copy = _tagged_node(gizmo, "Copy", "copy", result.copy_settings(job_plan.job["output"]["channel"]), 0)
    copy.setInput(0, gizmo)
    copy.setInput(1, read)
    return read, copy
