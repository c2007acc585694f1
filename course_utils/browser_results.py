"""A browser run's pages and results: what each page runs, what it may post, how Python reads it.

Covers: :class:`PageConfig` (a page's provider, WebAssembly threads and
cross-origin isolation), :func:`parse_result`, the check of a body a page posts
before anything of it is kept (JSON only, bounded depth and lengths, the
harness's fields and types, finite numbers, one output row per input, the run's
token), and :class:`BrowserRun` / :class:`BrowserResults`, the results as Python
reads them (outputs as float32 arrays, timings, what the page found, a table).
Does not cover: serving the pages (``browser_page.py``) or driving a browser
(``browser_run.py``).
"""
from __future__ import annotations

import json
import math
import re
import secrets
import statistics
from dataclasses import dataclass, field

import numpy as np

from .errors import InvalidArgumentError
from .formatting import format_table
from .web_runtime import BUNDLES

__all__ = ["PageConfig", "parse_result", "BadResult", "BrowserRun", "BrowserResults"]

#: Limits of a result body: nesting, rounds, strings, console lines, info entries.
_MAX_DEPTH = 3  # {"outputs": [[1.0, ...], ...]}
_MAX_ROUNDS = 1000
_MAX_TEXT = 2000
_MAX_CONSOLE = 50
_MAX_INFO = 32


@dataclass(frozen=True)
class PageConfig:
    """One page of a run: which provider, how many WebAssembly threads, isolated or not.

    Attributes:
        provider: ``"wasm"`` or ``"webgpu"`` (onnxruntime-web's execution providers).
        threads: WebAssembly threads (``ort.env.wasm.numThreads``); more than one needs
            a cross-origin isolated page.
        isolated: send the cross-origin isolation headers (None: when ``threads > 1``).
    """

    provider: str = "wasm"
    threads: int = 1
    isolated: bool | None = None

    def __post_init__(self) -> None:
        if self.provider not in BUNDLES:
            raise InvalidArgumentError(f"provider must be one of {sorted(BUNDLES)}, got "
                                       f"{self.provider!r}")
        if not isinstance(self.threads, int) or not 1 <= self.threads <= 64:
            raise InvalidArgumentError(f"threads must be an int from 1 to 64, got {self.threads!r}")

    @property
    def cross_origin_isolated(self) -> bool:
        """Whether the page is sent the isolation headers."""
        return self.threads > 1 if self.isolated is None else bool(self.isolated)

    def describe(self) -> str:
        """A row label, e.g. ``"wasm, 2 threads, isolated"``."""
        threads = f"{self.threads} thread{'s' if self.threads > 1 else ''}"
        return (f"{self.provider}, {threads}"
                + (", isolated" if self.cross_origin_isolated else ""))


class BadResult(Exception):
    """A result body that is refused; ``status`` is the HTTP status the page gets."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _refuse_constant(name: str):
    raise BadResult(422, f"the result holds {name}, which JSON does not allow; send finite numbers")


def _depth(text: str) -> int:
    """How deep arrays and objects nest (strings skipped), without parsing."""
    depth = deepest = 0
    for token in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[\]{}]', text):
        mark = token.group()
        if mark in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif mark in "]}":
            depth -= 1
    return deepest


def _number(value, where: str) -> float:
    if type(value) not in (int, float) or not math.isfinite(value):
        raise BadResult(422, f"{where} must be a finite number, got {type(value).__name__}")
    return float(value)


def _text(value, where: str) -> str:
    if not isinstance(value, str):
        raise BadResult(422, f"{where} must be a string, got {type(value).__name__}")
    return value[:_MAX_TEXT]


def parse_result(body: bytes, *, token: str, pages: int, max_items: int,
                 max_values: int) -> dict:
    """The result a page posted, checked field by field; anything else is refused.

    The harness posts ``{"token", "index", "status", "error", "outputs",
    "first_pass_ms", "load_ms", "round_ms", "clock_ms", "info", "console"}``; only
    ``token``, ``index`` and ``status`` are required.

    Args:
        body: the request body (UTF-8 JSON).
        token: this run's token (a page of another run is refused).
        pages: how many pages the run has (``index`` is below it).
        max_items: the most output rows (the number of inputs).
        max_values: the most numbers in one output row.

    Returns:
        The result as a dict of plain values (``outputs`` a list of lists of floats).

    Raises:
        BadResult: with the HTTP status and what is wrong.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadResult(400, "the result is not UTF-8 text") from None
    if _depth(text) > _MAX_DEPTH:
        raise BadResult(422, f"the result nests deeper than {_MAX_DEPTH} levels")
    try:
        data = json.loads(text, parse_constant=_refuse_constant, parse_int=float)
    except (ValueError, RecursionError) as error:
        if isinstance(error, BadResult):
            raise
        raise BadResult(400, f"the result is not JSON ({str(error)[:80]})") from None
    if not isinstance(data, dict):
        raise BadResult(422, f"the result must be a JSON object, got {type(data).__name__}")
    allowed = {"token", "index", "status", "error", "outputs", "first_pass_ms", "load_ms",
               "round_ms", "clock_ms", "info", "console"}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise BadResult(422, f"unknown fields {[k[:40] for k in unknown[:5]]}")
    if not isinstance(data.get("token"), str) or not secrets.compare_digest(
            data["token"].encode(), token.encode()):
        raise BadResult(403, "this result belongs to another run")
    index = data.get("index")
    if type(index) is not float or not index.is_integer() or not 0 <= index < pages:
        raise BadResult(422, f"index must be a page of this run (0 to {pages - 1})")
    if data.get("status") not in ("ok", "error", "skipped"):
        raise BadResult(422, "status must be 'ok', 'error' or 'skipped'")
    result = {"index": int(index), "status": data["status"]}
    if "error" in data:
        result["error"] = _text(data["error"], "error")
    for key in ("first_pass_ms", "load_ms", "clock_ms"):
        if key in data:
            result[key] = _number(data[key], key)
    if "round_ms" in data:
        rounds = data["round_ms"]
        if not isinstance(rounds, list) or len(rounds) > _MAX_ROUNDS:
            raise BadResult(422, f"round_ms must be a list of at most {_MAX_ROUNDS} numbers")
        result["round_ms"] = [_number(v, "round_ms[]") for v in rounds]
    if "outputs" in data:
        result["outputs"] = _outputs(data["outputs"], max_items, max_values)
    if result["status"] == "ok" and len(result.get("outputs", ())) != max_items:
        raise BadResult(422, f"a result with status 'ok' carries one output row per input "
                             f"({max_items})")
    info = data.get("info", {})
    if not isinstance(info, dict) or len(info) > _MAX_INFO:
        raise BadResult(422, f"info must be an object of at most {_MAX_INFO} entries")
    result["info"] = {}
    for key, value in info.items():
        if value is not None and type(value) not in (str, bool, float):
            raise BadResult(422, f"info[{key[:40]!r}] must be a string, number, bool or null")
        result["info"][key[:80]] = value[:_MAX_TEXT] if isinstance(value, str) else value
    lines = data.get("console", [])
    if not isinstance(lines, list) or len(lines) > _MAX_CONSOLE:
        raise BadResult(422, f"console must be a list of at most {_MAX_CONSOLE} strings")
    result["console"] = [_text(line, "console[]") for line in lines]
    return result


def _outputs(rows, max_items: int, max_values: int) -> list[list[float]]:
    if not isinstance(rows, list) or len(rows) > max_items:
        raise BadResult(422, f"outputs must be a list of at most {max_items} rows (one per input)")
    width = None
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) > max_values:
            raise BadResult(422, f"outputs[{i}] must be a list of at most {max_values} numbers")
        if width is not None and len(row) != width:
            raise BadResult(422, f"outputs[{i}] has {len(row)} numbers, outputs[0] {width}")
        width = len(row)
        for value in row:
            if type(value) is not float or not math.isfinite(value):
                raise BadResult(422, f"outputs[{i}] holds {type(value).__name__}; numbers only")
    return rows


@dataclass
class BrowserRun:
    """What one page of a run did.

    Attributes:
        config: the page's provider, threads and isolation.
        status: ``"ok"``, ``"error"`` (the script, the model or an output failed) or
            ``"skipped"`` (no browser, or no WebGPU adapter).
        reason: the error or why it was skipped, in the browser's words where it gave some.
        outputs: one row per input item, float32 (``None`` unless ``status == "ok"``).
        load_ms: creating the session (reading the model, compiling its kernels).
        first_pass_ms: the first pass over every item (warm-up; its outputs are kept).
        round_ms: each timed pass over every item.
        clock_ms: the smallest step of the page's clock (0.1 ms when not isolated).
        info: the browser's user agent, whether the page was cross-origin isolated,
            the threads onnxruntime-web could use, the WebGPU adapter.
        console: what the page printed (onnxruntime-web's warnings, the script's logs).
    """

    config: PageConfig
    status: str
    reason: str = ""
    outputs: np.ndarray | None = None
    load_ms: float | None = None
    first_pass_ms: float | None = None
    round_ms: list = field(default_factory=list)
    clock_ms: float | None = None
    info: dict = field(default_factory=dict)
    console: list = field(default_factory=list)

    @property
    def per_item_ms(self) -> float | None:
        """The median timed pass divided by the number of items (None without timed passes)."""
        if not self.round_ms or self.outputs is None or not len(self.outputs):
            return None
        return statistics.median(self.round_ms) / len(self.outputs)

    @property
    def threads_used(self) -> int | None:
        """The WebAssembly threads onnxruntime-web could use (1 on a page that is not isolated)."""
        value = self.info.get("threads_used")
        return int(value) if isinstance(value, float) else None

    @classmethod
    def from_posted(cls, config: PageConfig, posted: dict | None, missing: str) -> "BrowserRun":
        """The run a page posted (checked by :func:`parse_result`); ``missing``: why there is none."""
        if posted is None:
            return cls(config, "error", missing)
        outputs = posted.get("outputs")
        return cls(
            config, posted["status"], posted.get("error", ""),
            None if outputs is None else np.array(outputs, dtype=np.float64).astype(np.float32),
            posted.get("load_ms"), posted.get("first_pass_ms"), posted.get("round_ms", []),
            posted.get("clock_ms"), posted.get("info", {}), posted.get("console", []))


@dataclass
class BrowserResults:
    """Every page of one run; ``print()`` it for a table.

    Attributes:
        runs: one :class:`BrowserRun` per page, in order.
        browser: which browser ran the pages.
        blocked: the requests beyond 127.0.0.1 that were refused (headless Chromium
            only; ``None`` where the student's browser ran the page).
        skipped: why nothing ran (one line), else ``None``.
        notes: what happened on the way (e.g. the frame was not loaded, headless instead).
    """

    runs: list
    browser: str = ""
    blocked: list | None = None
    skipped: str | None = None
    notes: list = field(default_factory=list)

    def __getitem__(self, index: int) -> BrowserRun:
        return self.runs[index]

    def __len__(self) -> int:
        return len(self.runs)

    def __str__(self) -> str:
        if self.skipped:
            return f"browser run skipped: {self.skipped}"
        rows = []
        for run in self.runs:
            per_item = run.per_item_ms
            threads = run.threads_used if run.status == "ok" else None
            rows.append([run.config.describe(), run.status,
                         "-" if per_item is None else f"{per_item:.3f}",
                         "-" if run.load_ms is None else f"{run.load_ms:.0f}",
                         "-" if threads is None else str(threads),
                         run.reason or str(run.info.get("adapter", ""))])
        lines = [f"browser: {self.browser}"]
        lines += format_table(["page", "status", "ms/item", "load ms", "threads", "note"], rows,
                              align="<<>>><")
        return "\n".join(lines + [f"note: {note}" for note in self.notes])

    __repr__ = __str__
