"""Where the gizmo's files are, for the tests (imported by name: this folder is on sys.path)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GIZMOS = ROOT / "gizmos"
GIZMO_FILE = GIZMOS / "VfxMatte.gizmo"
