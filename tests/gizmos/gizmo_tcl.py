"""A reader for Nuke's TCL script format, strict enough to check a .gizmo file's structure.

A script is a list of commands, one per line; a command is words separated by blanks; a word
is bare, ``"quoted"`` (backslash escapes, may span lines) or ``{braced}`` (nested braces, taken
literally, may span lines). A node is a command of two words, its class and a braced body that
is itself a script of knob lines. A gizmo file holds a ``Gizmo { ... }`` node (the group's own
knobs, ``addUserKnob {TYPE name [l label] ...}`` declaring each user knob), then the group's
nodes, then ``end_group``.
"""

import re

#: addUserKnob type ids (Foundry NDK, "Knob Types: Knobs by ID") used by gizmos.
KNOB_TYPES = {1: "String_Knob", 2: "File_Knob", 3: "Int_Knob", 4: "Enumeration_Knob", 6: "Boolean_Knob",
              7: "Double_Knob", 20: "Tab_Knob", 22: "PyScript_Knob", 26: "Text_Knob", 41: "Link_Knob"}
#: defaults of knobs with no value line, by type
_TYPE_DEFAULT = {1: "", 2: "", 3: 0, 4: None, 6: False, 7: 0.0, 22: None, 26: "", 20: None, 41: None}
#: knobs every node has, which a node body may set without declaring
NODE_KNOBS = {"name", "tile_color", "knobChanged", "onCreate", "xpos", "ypos", "inputs", "number", "label",
              "selected", "note_font", "note_font_size", "note_font_color", "help", "gl_color", "disable"}


class TclError(ValueError):
    pass


def tokenize(text):
    """Commands of ``text``: a list of ``(line, [words])``; braced words keep their text."""
    commands, words, i, line, start = [], [], 0, 1, 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\n":
            if words:
                commands.append((start, words))
                words = []
            line += 1
            i += 1
        elif c in " \t\r":
            i += 1
        elif c == "#" and not words:
            while i < n and text[i] != "\n":
                i += 1
        elif c == "{":
            depth, j = 1, i + 1
            while j < n and depth:
                if text[j] == "\\":
                    j += 1
                elif text[j] == "{":
                    depth += 1
                elif text[j] == "}":
                    depth -= 1
                j += 1
            if depth:
                raise TclError("line %d: unbalanced '{'" % line)
            if not words:
                start = line
            words.append(("brace", text[i + 1:j - 1]))
            line += text.count("\n", i, j)
            i = j
        elif c == "}":
            raise TclError("line %d: '}' without its '{'" % line)
        elif c == '"':
            j, out = i + 1, []
            while j < n and text[j] != '"':
                if text[j] == "\\" and j + 1 < n:
                    nxt = text[j + 1]
                    out.append({"n": "\n", "t": "\t"}.get(nxt, nxt))
                    j += 2
                    continue
                out.append(text[j])
                j += 1
            if j >= n:
                raise TclError("line %d: unterminated quoted string" % line)
            if not words:
                start = line
            words.append(("quote", "".join(out)))
            line += text.count("\n", i, j)
            i = j + 1
        else:
            j = i
            while j < n and text[j] not in " \t\r\n{}\"":
                j += 1
            if not words:
                start = line
            words.append(("bare", text[i:j]))
            i = j
    if words:
        commands.append((start, words))
    return commands


class UserKnob(object):
    def __init__(self, type_id, name, label, flags, attrs, line):
        self.type_id, self.name, self.label = type_id, name, label
        self.flags, self.attrs, self.line = flags, attrs, line

    @property
    def default(self):
        if self.type_id == 4:
            return self.attrs.get("M", [""])[0]
        return _TYPE_DEFAULT.get(self.type_id)


def parse_user_knob(spec, line):
    """``{TYPE name [l label] [t tooltip] [M {items}] [T text] [+FLAG -FLAG]}`` -> UserKnob."""
    words = [w for _, ws in tokenize(spec) for w in ws]
    if len(words) < 2 or words[0][0] != "bare" or not words[0][1].isdigit():
        raise TclError("line %d: addUserKnob needs {TYPE name ...}, got {%s}" % (line, spec))
    type_id = int(words[0][1])
    if type_id not in KNOB_TYPES:
        raise TclError("line %d: unknown knob type %d" % (line, type_id))
    name = words[1][1]
    flags, attrs, label, i = [], {}, None, 2
    while i < len(words):
        kind, value = words[i]
        if kind == "bare" and value[:1] in "+-" and len(value) > 1:
            flags.append(value)
            i += 1
        elif kind == "bare" and value in ("l", "t", "T", "M", "R") and i + 1 < len(words):
            arg = words[i + 1][1]
            if value == "l":
                label = arg
            elif value == "M":
                attrs["M"] = [w[1] for _, ws in tokenize(arg) for w in ws]
            elif value == "R":
                attrs["R"] = arg.split()
                i += 1  # R takes two numbers
            else:
                attrs[value] = arg
            i += 2
        else:
            raise TclError("line %d: knob %s: unexpected %r" % (line, name, value))
    return UserKnob(type_id, name, label, flags, attrs, line)


class GizmoSpec(object):
    def __init__(self, class_name, knobs, defaults, nodes, body):
        self.class_name, self.knobs, self.defaults, self.nodes, self.body = class_name, knobs, defaults, nodes, body

    def knob(self, name):
        for knob in self.knobs:
            if knob.name == name:
                return knob
        return None

    @property
    def names(self):
        return [k.name for k in self.knobs]


def _node_body(body, line):
    """A node body's knob lines: ``{knob: [words...]}`` in order, with addUserKnob lines apart."""
    knobs, user = [], []
    for cline, words in tokenize(body):
        key = words[0][1]
        if key == "addUserKnob":
            if len(words) != 2 or words[1][0] != "brace":
                raise TclError("line %d: addUserKnob takes one {...} spec" % (line + cline - 1))
            user.append(parse_user_knob(words[1][1], line + cline - 1))
        else:
            knobs.append((line + cline - 1, key, [w[1] for w in words[1:]]))
    return knobs, user


def read_gizmo(path):
    """Parse and check a .gizmo file; return its :class:`GizmoSpec` or raise TclError."""
    with open(path) as f:
        text = f.read()
    commands = tokenize(text)
    nodes, gizmo, ended = [], None, False
    for line, words in commands:
        head = words[0][1]
        if ended:
            raise TclError("line %d: %s after end_group" % (line, head))
        if head == "version":
            continue
        if head == "end_group":
            if len(words) != 1:
                raise TclError("line %d: end_group takes no arguments" % line)
            ended = True
            continue
        if head in ("push", "set"):
            continue
        if len(words) != 2 or words[1][0] != "brace" or not re.match(r"^[A-Z][A-Za-z0-9_]*$", head):
            raise TclError("line %d: expected a node block `Class { ... }`, got %r" % (line, head))
        knobs, user = _node_body(words[1][1], line)
        if gizmo is None:
            if head != "Gizmo":
                raise TclError("line %d: a gizmo file starts with its Gizmo { ... } block, not %s" % (line, head))
            gizmo = (knobs, user)
            continue
        if user:
            raise TclError("line %d: user knobs belong on the Gizmo block" % line)
        names = [k for _, k, _ in knobs]
        if "name" not in names:
            raise TclError("line %d: %s node without a name" % (line, head))
        nodes.append((head, dict((k, v) for _, k, v in knobs)))
    if gizmo is None:
        raise TclError("no Gizmo block")
    if not ended:
        raise TclError("the group is not closed with end_group")
    knobs, user = gizmo
    seen = set()
    for knob in user:
        if knob.name in seen:
            raise TclError("line %d: knob %s declared twice" % (knob.line, knob.name))
        seen.add(knob.name)
    defaults = {}
    for line, key, values in knobs:
        if key in seen:
            defaults[key] = _typed(user, key, values[0] if values else "")
        elif key not in NODE_KNOBS:
            raise TclError("line %d: %s is set but neither declared nor a node knob" % (line, key))
    class_name = dict((k, v) for _, k, v in knobs).get("name", ["Gizmo"])[0]
    inputs = [int(k.get("number", ["0"])[0]) for c, k in nodes if c == "Input"]
    if sorted(inputs) != list(range(len(inputs))):
        raise TclError("Input numbers must be 0..N-1 once each, got %s" % inputs)
    if [c for c, _ in nodes].count("Output") != 1:
        raise TclError("a gizmo has exactly one Output node")
    return GizmoSpec(class_name, user, defaults, nodes, knobs)


def _typed(user, name, text):
    knob = next(k for k in user if k.name == name)
    if knob.type_id == 3:
        return int(text)
    if knob.type_id == 7:
        return float(text)
    if knob.type_id == 6:
        return text in ("true", "1")
    return text
