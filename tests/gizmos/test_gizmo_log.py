"""vfxmatte's JSON log, line by line, into the progress and the one-line outcome the gizmo shows."""

import json

from vfxmatte_nuke.log import RunLog


def fed(events, code, stderr=()):
    log = RunLog()
    for event in events:
        log.feed_stdout(json.dumps(event) + "\n")
    for line in stderr:
        log.feed_stderr(line + "\n")
    log.exit_code = code
    return log


def frame(kind, f, i, n=3, **kw):
    return dict({"event": kind, "frame": f, "index": i, "total": n, "shot": "sh010", "ts": 1.0}, **kw)


def test_progress_follows_finished_frames():
    log = RunLog()
    log.feed_stdout(json.dumps(frame("started", 1001, 1)))
    assert log.progress == 0 and log.message() == "frame 1001 (0% of 3 frames)"
    log.feed_stdout(json.dumps(frame("done", 1001, 1, output="/o/sh010.1001.exr", seconds=0.5)))
    log.feed_stdout(json.dumps(frame("skipped", 1002, 2, reason="exists")))
    assert log.progress == 66 and log.current is None
    assert not log.feed_stdout("Progress: 66%\n")  # a text line is not an event


def test_failed_frames_are_reported_with_the_tools_reason():
    log = fed([frame("done", 1001, 1), frame("failed", 1002, 2, reason="trimap frame missing: t/sh010.####.png"),
               frame("failed", 1003, 3, reason="plate unreadable"),
               {"event": "summary", "done": "1001", "failed": {"1002": "trimap frame missing: t/sh010.####.png",
                                                               "1003": "plate unreadable"}, "skipped": {}}], 1)
    assert log.failures == {1002: "trimap frame missing: t/sh010.####.png", 1003: "plate unreadable"}
    assert log.message() == "2 frame(s) failed; frame 1002: trimap frame missing: t/sh010.####.png (and 1 more)"
    assert not log.ok


def test_a_bad_job_is_the_error_event_s_one_line():
    message = "/j/sh010.yaml:6: plate.colorspace: unknown colourspace 'AlexaV3LogC'"
    log = fed([{"event": "error", "type": "JobError", "message": message, "errors": [message]}], 2,
              stderr=["vfxmatte: error: " + message])
    assert log.message() == message


def test_a_usage_error_without_json_is_read_from_stderr():
    log = fed([], 2, stderr=["usage: vfxmatte run [-h] ...", "vfxmatte: error: argument --frames: invalid range"])
    assert log.message() == "argument --frames: invalid range"


def test_internal_errors_and_interrupts_say_so():
    assert fed([{"event": "internal_error", "type": "ZeroDivisionError", "message": "division by zero"}], 70).message() == "division by zero"
    assert fed([{"event": "interrupted", "signal": "SIGTERM"}], 130).message() == "vfxmatte exited with 130: interrupted"


def test_warnings_from_the_json_log_on_stderr_are_kept():
    log = fed([], 0, stderr=[json.dumps({"event": "log", "level": "warning", "message": "no GPU: running on cpu"}),
                             json.dumps({"event": "log", "level": "debug", "message": "tile plan"})])
    assert log.warnings == ["no GPU: running on cpu"] and log.stderr == []


def test_validate_and_submit_outcomes():
    ok = fed([{"event": "validate", "job": "j.yaml", "frames": 3, "headers_checked": 3, "failed": [], "done": []}], 0)
    assert ok.message() == "job OK: 3 frames, headers of 3 checked"
    bad = fed([{"event": "validate", "frames": 3, "failed": [{"frames": "1002-1003", "count": 2, "reason": "plate frame missing"}]}], 1)
    assert bad.message() == "frames 1002-1003 would fail: plate frame missing"
    sub = fed([{"event": "submit", "farm": "opencue", "spec": "/o/farm/sh010.opencue.xml", "dry_run": True}], 0)
    assert sub.message() == "opencue job written: /o/farm/sh010.opencue.xml"
    sent = fed([{"event": "submit", "farm": "opencue", "spec": "/o/x.xml"}, {"event": "submitted", "farm": "opencue", "jobs": ["j1"]}], 0)
    assert sent.message() == "opencue job submitted: /o/x.xml"


def test_a_summary_counts_runs_and_steps():
    log = fed([{"event": "summary", "done": "1001-1010x3,1020", "skipped": {"1011": "exists"}, "failed": {}, "output": "/o"}], 0)
    assert log.message() == "5 frames done, 1 skipped -> /o"
