"""Grades files for the tests of feedback, report and gradebook: honest rows and hostile strings.

``class_rows()`` is a small class as ``grade --json`` writes it; ``HOSTILE`` are the
strings a student can make the grader repeat (an exception message, a file name, a
folder name): markup, script, terminal escapes, a lone surrogate and a 1 MB string.
"""
from __future__ import annotations

import functools
import http.server
import threading
from contextlib import contextmanager
from pathlib import Path

ONE_MB = "A" * 2**20
HOSTILE = {
    "script": "<script>window.__pwned = 1; alert(1)</script>",
    "img": "<img src=x onerror=\"window.__pwned = 2\">",
    "attribute": "\"><iframe src=\"http://example.com/\"></iframe>",
    "style": "<style>body { background: url(http://example.com/track.png) }</style>",
    "link": "<link rel=\"stylesheet\" href=\"http://example.com/x.css\">",
    "escape": "red \x1b[31mALERT\x1b[0m \x07 bell \u202e reversed",
    "surrogate": "lone \ud800 surrogate",
    "markdown": "[click](javascript:alert(1)) **bold** | pipe `code` <b>b</b>",
    "huge": ONE_MB,
    "formula": "=HYPERLINK(\"http://example.com\",\"x\")",
}


def _exercise(points, max_points, passed, feedback):
    return {"points": points, "max_points": max_points, "passed": passed, "feedback": feedback}


def class_rows() -> list[dict]:
    """Five students, two notebooks, one notebook that could not be graded; some hostile feedback."""
    rows = []

    def add(student, notebook, exercises, error=None, notes=()):
        rows.append({"path": f"submissions/{student}/{notebook}.ipynb", "student": student,
                     "notebook": notebook if not error else None, "error": error,
                     "seconds": 12.5, "notes": list(notes),
                     "points": sum(e["points"] for e in exercises.values()),
                     "max_points": sum(e["max_points"] for e in exercises.values()),
                     "exercises": exercises})

    ok = "all checks passed"
    na = "not attempted: the cell still raises NotImplementedError"
    add("ann", "00-install-check", {"00.1": _exercise(1, 1, True, ok), "00.2": _exercise(2, 2, True, ok)})
    add("ben", "00-install-check", {"00.1": _exercise(0, 1, False, na), "00.2": _exercise(0, 2, False, na)})
    add("cho", "00-install-check", {"00.1": _exercise(0, 1, False, "the cell ran longer than 30 s and was "
                                                      "stopped (an endless loop?)"),
                                    "00.2": _exercise(2, 2, True, ok)})
    add("dan", "00-install-check", {"00.1": _exercise(0, 1, False, na),
                                    "00.2": _exercise(0, 2, False, "the cell raised ValueError: "
                                                      + HOSTILE["script"])})
    add("ann", "01-execution-providers", {"01.1": _exercise(2, 2, True, ok), "01.2": _exercise(0, 2, False,
                                          HOSTILE["escape"]), "01.3": _exercise(2, 2, True, ok)},
        notes=[HOSTILE["img"]])
    add("ben", "01-execution-providers", {"01.1": _exercise(0, 2, False, na), "01.2": _exercise(0, 2, False,
                                          HOSTILE["escape"]), "01.3": _exercise(0, 2, False, na)})
    add("cho", "01-execution-providers", {"01.1": _exercise(2, 2, True, ok), "01.2": _exercise(2, 2, True, ok),
                                          "01.3": _exercise(2, 2, True, ok)})
    add(HOSTILE["attribute"], "01-execution-providers", {
        "01.1": _exercise(0, 2, False, HOSTILE["huge"]), "01.2": _exercise(0, 2, False, HOSTILE["surrogate"]),
        "01.3": _exercise(0, 2, False, HOSTILE["markdown"] + HOSTILE["style"] + HOSTILE["link"])},
        notes=[HOSTILE["formula"]])
    add("eve", "02-export-and-verify", {}, error="not a readable Jupyter notebook " + HOSTILE["script"])
    return rows


@contextmanager
def serve_folder(folder: Path):
    """An HTTP server for ``folder`` on 127.0.0.1; yields (base URL, the paths it was asked for)."""
    asked: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            asked.append(self.path)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0),
                                             functools.partial(Handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", asked
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@functools.lru_cache(maxsize=None)
def bar_heights(png: bytes, color: str) -> list[int]:
    """Heights in pixels of the bars of one colour in a PNG, left to right (one per run of columns)."""
    import io

    import matplotlib.image
    import numpy as np

    image = matplotlib.image.imread(io.BytesIO(png), format="png")[..., :3]
    target = np.array([int(color[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    mask = np.all(np.abs(image - target) < 1.5 / 255, axis=2)
    columns = mask.sum(axis=0)
    heights, current = [], []
    for count in list(columns) + [0]:
        if count:
            current.append(count)
        elif current:
            heights.append(int(np.median(current)))
            current = []
    return heights
