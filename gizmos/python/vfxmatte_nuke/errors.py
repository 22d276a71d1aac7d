"""The one error the gizmo's logic raises: a problem the compositor can fix, in one line."""

__all__ = ["GizmoError"]


class GizmoError(Exception):
    """A setting or input that stops the gizmo, with a message naming the node or knob to fix.

    The Nuke layer shows ``str(error)`` as it is; nothing here prints.
    """
