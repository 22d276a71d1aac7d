"""vfxmatte's JSON log -> progress, messages and the outcome the gizmo reports.

``vfxmatte --log-format json`` prints one JSON object per line on stdout: a ``started`` event
per frame, then ``done``, ``skipped`` or ``failed`` (each with ``frame``, ``index``, ``total``;
``output``, ``seconds`` and ``reason`` where they apply), ``retried`` between tries, and a
``summary`` last (``shot``, ``output``, ``done``, ``skipped`` and ``failed`` as frame -> reason).
A whole-run problem is an ``error`` event whose ``message`` is the tool's own one-line message
(exit code 2); a bug is ``internal_error`` (70); Ctrl-C or SIGTERM is ``interrupted`` (130).
``validate`` prints one ``validate`` object (``failed`` runs of frames with their reasons);
``submit`` prints ``submit`` (and ``submitted`` when sent). Logs go to stderr, as JSON objects
with ``event: log``; anything else on stderr (a usage error from argparse) is kept as text.
"""

import json

from vfxmatte_nuke.frames import parse_frames

__all__ = ["EXIT_MESSAGES", "RunLog"]

#: vfxmatte's exit codes.
EXIT_OK, EXIT_FRAMES_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 70, 130
EXIT_MESSAGES = {
    EXIT_OK: "done",
    EXIT_FRAMES_FAILED: "some frames failed",
    EXIT_USAGE: "the job or its setup is wrong",
    EXIT_INTERNAL: "internal error in vfxmatte (a bug)",
    EXIT_INTERRUPTED: "interrupted",
}


class RunLog(object):
    """What one vfxmatte command said, fed line by line.

    Attributes:
        progress: 0-100, from the last finished frame's ``index`` / ``total``.
        current: the frame being worked on (from ``started``), or None.
        failures: frame -> reason, from ``failed`` events (and the summary).
        error: the one-line message of an ``error`` / ``internal_error`` event, or None.
        summary, validate, submit: the last such event, or None.
        events: every JSON event of stdout, in order.
        stderr: the non-JSON lines of stderr, stripped.
        cancelled: set by the runner when the user cancelled.
        exit_code: set by the runner when the process ended.
    """

    def __init__(self):
        self.progress = 0
        self.current = None
        self.total = None
        self.failures = {}
        self.error = None
        self.summary = self.validate = self.submit = None
        self.events = []
        self.stderr = []
        self.warnings = []
        self.cancelled = False
        self.exit_code = None

    def feed_stdout(self, line):
        """One stdout line; returns True if it was an event."""
        event = _json(line)
        if event is None:
            return False
        self.events.append(event)
        kind = event.get("event")
        if kind == "started":
            self.current, self.total = event.get("frame"), event.get("total")
        elif kind in ("done", "skipped", "failed"):
            total = event.get("total") or 0
            self.total = total or self.total
            if total:
                self.progress = int(100 * int(event.get("index", 0)) / total)
            if kind == "failed":
                self.failures[int(event["frame"])] = event.get("reason") or "failed"
            self.current = None
        elif kind == "summary":
            self.summary = event
            for frame, reason in (event.get("failed") or {}).items():
                self.failures.setdefault(int(frame), reason)
        elif kind in ("error", "internal_error"):
            self.error = event.get("message") or event.get("type")
        elif kind == "validate":
            self.validate = event
        elif kind in ("submit", "submitted"):
            self.submit = dict(self.submit or {}, **event)
        return True

    def feed_stderr(self, line):
        """One stderr line: a JSON log record is kept when it is a warning or worse."""
        event = _json(line)
        if event is None:
            text = line.strip()
            if text:
                self.stderr.append(text)
        elif event.get("event") == "log" and event.get("level") in ("warning", "error", "critical"):
            self.warnings.append(event.get("message", ""))

    @property
    def ok(self):
        return self.exit_code == EXIT_OK and not self.cancelled

    def message(self):
        """The status line to show: the progress while running, the outcome once ended, with
        the tool's own one-line message for a failure."""
        if self.exit_code is None:
            if self.current is not None and self.total:
                return "frame %s (%d%% of %d frames)" % (self.current, self.progress, self.total)
            return "starting vfxmatte"
        if self.cancelled:
            return "cancelled: finished frames are kept, the frame in progress was abandoned"
        if self.exit_code == EXIT_OK:
            return self._ok_message()
        if self.exit_code == EXIT_FRAMES_FAILED:
            return self._failed_message()
        if self.error:
            return self.error
        if self.stderr:
            return _strip_prog(self.stderr[-1])
        return "vfxmatte exited with %s: %s" % (self.exit_code, EXIT_MESSAGES.get(self.exit_code, "unknown exit code"))

    def _ok_message(self):
        if self.summary is not None:
            done = _count(self.summary.get("done"))
            skipped = len(self.summary.get("skipped") or {})
            text = "%d frames done" % done + (", %d skipped" % skipped if skipped else "")
            out = self.summary.get("output")
            return text + (" -> %s" % out if out else "")
        if self.validate is not None:
            return "job OK: %s frames, headers of %s checked" % (self.validate.get("frames"), self.validate.get("headers_checked"))
        if self.submit is not None:
            sub = self.submit
            where = sub.get("spec") or sub.get("job_info") or ""
            sent = sub.get("jobs") or sub.get("output")
            return "%s job %s%s" % (sub.get("farm", "farm"), "submitted" if sent else "written", (": " + where) if where else "")
        return "done"

    def _failed_message(self):
        if self.failures:
            frame = min(self.failures)
            more = len(self.failures) - 1
            return "%d frame(s) failed; frame %d: %s%s" % (
                len(self.failures), frame, self.failures[frame], " (and %d more)" % more if more else "")
        if self.validate is not None and self.validate.get("failed"):
            run = self.validate["failed"][0]
            return "frames %s would fail: %s" % (run.get("frames"), run.get("reason"))
        return EXIT_MESSAGES[EXIT_FRAMES_FAILED]


def _json(line):
    text = line.strip()
    if not text.startswith("{"):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) and "event" in obj else None


def _count(frames):
    """Frames in a summary's ``done`` text (``1001-1003,1005``)."""
    if not frames:
        return 0
    return sum((last - first) // step + 1 for first, last, step in parse_frames(frames))


def _strip_prog(text):
    for prefix in ("vfxmatte: error: ", "vfxmatte: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text
