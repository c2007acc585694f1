"""A model run by onnxruntime-web in a browser: the student's own in JupyterLab, or headless Chromium.

Covers: :func:`run_in_browser`, which serves one run (``browser_page.PageServer``),
lets a browser go through its pages, waits for every page's result, stops the
server and returns ``browser_results.BrowserResults`` (outputs as arrays, timings,
what the page found); which browser runs it; the skip, with a one-line reason, where no
browser can be driven; and :func:`run_script_in_browser`, the grader's entry: a
student's script given as a string, run headless under strict limits, answered
as plain data. Does not cover: the server's rules (``browser_page.py``), getting
onnxruntime-web (``web_runtime.py``), or comparing with Python ONNX Runtime (the
lesson does that, e.g. with ``parity.compare_outputs``).

Which browser (the ``browser`` argument, else ``ONNX_COURSE_BROWSER``):

* ``"notebook"`` (the default in a kernel that JupyterLab or VS Code started): the
  page is shown in the cell's output as a frame; the browser that shows the
  notebook runs it and posts the results back while the cell waits. If no browser
  asks for the page within ``page_timeout_s`` (a browser that cannot reach the
  kernel's 127.0.0.1, as on JupyterHub), headless Chromium runs it instead.
* ``"headless"`` (the default elsewhere, nbval and the build included; ``make
  test`` sets it): Debian's Chromium through playwright, launched once per process and
  kept while runs follow (each run in a browser context of its own, with its own page
  server). Every request beyond the run's own server (other ports of 127.0.0.1 included)
  is refused and counted, and names other than 127.0.0.1 and localhost do not resolve.
* ``"none"``: nothing runs; every page is skipped with that reason.
"""
from __future__ import annotations

import atexit
import contextlib
import html
import logging
import os
import queue
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from .browser_page import PageServer
from .browser_results import BrowserResults, BrowserRun, PageConfig
from .errors import CourseError, InvalidArgumentError, MissingDependencyError
from .web_runtime import find_web_runtime

__all__ = ["run_in_browser", "run_script_in_browser", "BrowserResults", "BrowserRun",
           "BrowserUnavailable", "PageConfig", "find_chromium"]

logger = logging.getLogger(__name__)

BROWSER_VARIABLE = "ONNX_COURSE_BROWSER"
CHROMIUM_VARIABLE = "ONNX_COURSE_CHROMIUM"
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_CHROMIUM_ARGS = ["--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--disable-extensions",
                  "--disable-default-apps", "--no-first-run", "--disable-dev-shm-usage",
                  # no name but the server's resolves: nothing is looked up off this machine
                  "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
                  # an address written as numbers needs no lookup: every request that is not to
                  # loopback (which Chromium never sends through a proxy) goes to a proxy on a
                  # closed loopback port and fails, WebSockets included; WebRTC sends no UDP
                  # outside a proxy
                  "--proxy-server=http://127.0.0.1:9",
                  "--force-webrtc-ip-handling-policy=disable_non_proxied_udp"]

#: The grader's limits on one student script (characters, model bytes, input bytes, seconds).
GRADING_LIMITS = {"script_chars": 65_536, "model_bytes": 64 << 20, "input_bytes": 16 << 20,
                  "timeout_s": 60.0}


class BrowserUnavailable(CourseError, RuntimeError):
    """No browser can be driven here; ``reason`` is the one line that says why and the fix."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def find_chromium() -> str | None:
    """The Chromium (or Chrome) to drive: ``$ONNX_COURSE_CHROMIUM``, else one on the PATH."""
    chosen = os.environ.get(CHROMIUM_VARIABLE)
    if chosen:
        return chosen if Path(chosen).is_file() and os.access(chosen, os.X_OK) else None
    for name in _CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").is_file() else None


def _headless_ready() -> str:
    """The Chromium path, or BrowserUnavailable with what to install."""
    try:
        import playwright.sync_api  # noqa: F401 (only whether it imports)
    except ImportError:
        raise BrowserUnavailable("no browser can be driven here: the playwright package is "
                                 "missing (pip install -e '.[dev]', which make setup does)") from None
    path = find_chromium()
    if path is None:
        where = os.environ.get(CHROMIUM_VARIABLE)
        raise BrowserUnavailable(
            f"no browser can be driven here: {CHROMIUM_VARIABLE}={where} is not a program"
            if where else "no browser can be driven here: Chromium is not installed "
            "(sudo apt-get install chromium, or set ONNX_COURSE_CHROMIUM to a Chrome binary)")
    return path


class _SharedChromium:
    """One headless Chromium for this process, launched at the first run and reused by the next.

    A launch costs seconds (4-5 s on a busy 2-core machine) and a run of the checks' small
    model well under one, so the runs of one process (a kernel's cells, the public and hidden
    checks of one answer, a test module) share the browser; each run still gets a browser
    context of its own (no cache, storage or service worker of another run) and its own page
    server. playwright's sync API refuses a thread with an asyncio loop (a kernel's), and its
    objects belong to the thread that made them: one thread of its own drives the browser and
    takes runs from a queue. The browser closes after ``KEEP_ALIVE_S`` idle seconds, when it
    disconnects (a crash: the next run launches another), and at the process's exit.
    """

    KEEP_ALIVE_S = 120.0

    def __init__(self, chromium: str, args: list) -> None:
        self.key = (chromium, tuple(args))
        self.jobs: queue.Queue = queue.Queue()
        self.lock = threading.Lock()
        self.accepting = True
        self.thread = threading.Thread(target=self._serve, name="headless-chromium", daemon=True)
        self.thread.start()

    def submit(self, job) -> bool:
        """Queue ``job(browser, error)``; False once this browser stopped taking runs."""
        with self.lock:
            if self.accepting:
                self.jobs.put(job)
            return self.accepting

    def close(self, wait_s: float = 10.0) -> None:
        with self.lock:
            self.accepting = False
            self.jobs.put(None)
        self.thread.join(wait_s)

    def _stop_taking(self) -> bool:
        with self.lock:
            if self.jobs.empty():
                self.accepting = False
            return not self.accepting

    def _serve(self) -> None:
        from playwright.sync_api import sync_playwright

        error = "the browser closed"
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=self.key[0],
                                                     args=list(self.key[1]), timeout=60_000)
                try:
                    while browser.is_connected():
                        try:
                            job = self.jobs.get(timeout=self.KEEP_ALIVE_S)
                        except queue.Empty:
                            if self._stop_taking():
                                break
                            continue
                        if job is None:
                            break
                        job(browser, None)
                finally:
                    with self.lock:
                        self.accepting = False
                    with contextlib.suppress(Exception):
                        browser.close()
        except Exception as failed:  # reported to every waiting run, never lost in this thread
            error = str(failed).strip().splitlines()[0][:300] if str(failed).strip() else \
                type(failed).__name__
        finally:
            with self.lock:
                self.accepting = False
            while True:  # runs queued while it failed or closed: each told why
                try:
                    job = self.jobs.get_nowait()
                except queue.Empty:
                    break
                if job is not None:
                    job(None, error)


_shared: dict = {"browser": None}
_shared_lock = threading.Lock()


def _shared_chromium(chromium: str, args: list) -> _SharedChromium:
    """This process's browser for these switches (a new one if it closed or they differ)."""
    with _shared_lock:
        current = _shared["browser"]
        if current is not None and (current.key != (chromium, tuple(args))
                                    or not current.accepting):
            current.close(wait_s=0)
            current = None
        if current is None:
            current = _shared["browser"] = _SharedChromium(chromium, args)
        return current


@atexit.register
def _close_shared_chromium() -> None:
    with _shared_lock:
        current, _shared["browser"] = _shared["browser"], None
    if current is not None:
        current.close()


def _drive_headless(server: PageServer, deadline: float, chromium: str, extra_args,
                    blocked: list, cancel: threading.Event, outcome: dict) -> None:
    """Have this process's headless Chromium go through the server's pages in a new context:
    open the first page and keep playwright's events flowing until every page has posted,
    the deadline passes or the caller gives up (``cancel``); returns when the context is closed."""
    from playwright.sync_api import Error as PlaywrightError

    # This server's origin only: not even another port of 127.0.0.1 (a local service).
    allowed = (server.url, f"http://localhost:{server.port}/", "data:", "blob:", "about:")
    done = threading.Event()

    def route(route) -> None:
        if route.request.url.startswith(allowed):
            route.continue_()
        else:
            blocked.append(route.request.url[:200])
            route.abort()

    def run(browser, error) -> None:
        try:
            if browser is None:
                outcome["error"] = error
                return
            outcome["browser"] = f"headless Chromium {browser.version}"
            context = browser.new_context(service_workers="block", accept_downloads=False)
            try:
                context.route("**/*", route)
                page = context.new_page()
                page.on("crash", lambda _: outcome.setdefault("crash", "the page crashed"))
                page.goto(server.page_url(0), wait_until="commit",
                          timeout=max(1.0, deadline - time.monotonic()) * 1e3)
                while (len(server.results) < len(server.pages) and not cancel.is_set()
                       and time.monotonic() < deadline and "crash" not in outcome):
                    page.wait_for_timeout(50)  # lets the route handler above answer
            finally:
                context.close()
        except PlaywrightError as failed:
            outcome["error"] = str(failed).strip().splitlines()[0][:300]
        except Exception as failed:  # reported to the caller's thread, never lost in this one
            outcome["error"] = f"{type(failed).__name__}: {failed}"[:300]
        finally:
            done.set()

    args = _CHROMIUM_ARGS + list(extra_args)
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")  # Chromium refuses root otherwise
    for _ in range(2):  # a browser that closed between the look and the queue: launch another
        if _shared_chromium(chromium, args).submit(run):
            break
    else:
        outcome["error"] = "the browser closed"
        return
    while not done.wait(0.2):
        pass


def _frame_html(server: PageServer) -> str:
    url = html.escape(server.page_url(0))
    return (f'<iframe src="{url}" style="width:100%;height:70px;border:1px solid #ccc"></iframe>'
            f'<div style="font-size:small">onnxruntime-web runs in this browser; the cell waits '
            f'for its results. <a href="{url}" target="_blank">Open in a new tab</a> if the frame '
            "stays empty (a browser that cannot isolate a frame runs one thread in it).</div>")


def _front_end_likely() -> bool:
    """A kernel that a notebook front-end started: Jupyter Server names the notebook in
    ``JPY_SESSION_NAME`` (JupyterLab, Notebook 7, JupyterHub), VS Code leaves
    ``__vsc_ipynb_file__``; kernels that nbclient starts (nbval, the build, selfcheck, the
    grader) have neither, and nothing would ever show their frame."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or type(shell).__name__ != "ZMQInteractiveShell":
        return False
    return bool(os.environ.get("JPY_SESSION_NAME")) or "__vsc_ipynb_file__" in shell.user_ns


def _choose_browser(browser: str | None) -> str:
    choice = browser or os.environ.get(BROWSER_VARIABLE) or (
        "notebook" if _front_end_likely() else "headless")
    if choice not in ("notebook", "headless", "none"):
        raise InvalidArgumentError(f"browser must be 'notebook', 'headless' or 'none' (also as "
                                   f"{BROWSER_VARIABLE}), got {choice!r}")
    return choice


def _as_inputs(inputs) -> np.ndarray:
    array = np.ascontiguousarray(inputs.numpy() if hasattr(inputs, "numpy") else inputs)
    if array.dtype not in (np.float32, np.uint8) or array.ndim < 2 or not len(array):
        raise InvalidArgumentError(f"inputs must be a float32 or uint8 array of shape (items, ...) "
                                   f"with at least one item, got {array.dtype} {array.shape}; "
                                   "e.g. x_test.numpy() or images.astype(np.uint8)")
    return array


def _skipped(pages, reason: str, browser: str = "") -> BrowserResults:
    return BrowserResults([BrowserRun(c, "skipped", reason) for c in pages], browser,
                          skipped=reason)


def run_in_browser(model, script: str, inputs, *, pages=(PageConfig(),), warmup: int = 2,
                   rounds: int = 5,
                   browser: str | None = None, timeout_s: float = 180.0,
                   page_timeout_s: float = 20.0, files: dict | None = None,
                   chromium_args=(), strict: bool = False) -> BrowserResults:
    """Run ``script`` on every input in a browser with onnxruntime-web, one page per config.

    The page loads onnxruntime-web, creates a session for ``model`` (with the
    script's ``createSession(modelUrl, options)`` if it defines one), calls the
    script's ``predict(session, item)`` on each item (``item.data``: a
    Float32Array, or Uint8ClampedArray for uint8 inputs; ``item.dims``: the item's
    shape), keeps what it returns, makes ``warmup`` more passes untimed (V8 runs
    WebAssembly from its fast baseline compiler first and swaps in optimised code
    for the hot functions as it runs; on the course's busy 2-core machine a page's
    first timed passes were up to 7x slower than its last), times ``rounds``
    passes, and posts it all back. The server is stopped when this returns, whatever happened.

    Args:
        model: the ``.onnx`` file (path) or its bytes; served as ``/model.onnx``.
        script: JavaScript that defines ``predict`` (and maybe ``createSession``).
        inputs: float32 or uint8 array of shape ``(items, ...)``.
        pages: one :class:`PageConfig` per page (provider, threads, isolation).
        warmup: untimed passes over every item after the first.
        rounds: timed passes over every item after those.
        browser: ``"notebook"``, ``"headless"`` or ``"none"`` (default: see the module).
        timeout_s: the most seconds for the whole run.
        page_timeout_s: in a notebook, how long to wait for the browser to ask for the page.
        files: more files the page may fetch as ``/files/NAME`` (name -> bytes).
        chromium_args: more command-line switches for headless Chromium.
        strict: raise :class:`BrowserUnavailable` instead of returning skipped results.

    Returns:
        :class:`BrowserResults`: a :class:`BrowserRun` per page, or every page skipped
        with the one-line reason where no browser can be driven.

    Example:
        >>> script = '''
        ... async function predict(session, item) {
        ...   const x = new ort.Tensor("float32", item.data, [1, ...item.dims]);
        ...   const out = await session.run({[session.inputNames[0]]: x});
        ...   return out[session.outputNames[0]].data;
        ... }'''
        >>> results = run_in_browser("artifacts/digits.onnx", script, x_test.numpy())  # doctest: +SKIP
        >>> results[0].outputs.shape  # doctest: +SKIP
        (450, 10)
    """
    pages, array = list(pages), _as_inputs(inputs)
    for name, value in (("warmup", warmup), ("rounds", rounds)):
        if not isinstance(value, int) or not 0 <= value <= 1000:
            raise InvalidArgumentError(f"{name} must be an int from 0 to 1000, got {value!r}")
    if not timeout_s > 0 or not page_timeout_s > 0:
        raise InvalidArgumentError("timeout_s and page_timeout_s must be positive seconds")
    if not isinstance(script, str):
        raise InvalidArgumentError(f"script must be JavaScript as a str, got {type(script).__name__}")
    if isinstance(model, (bytes, bytearray)):
        model_bytes = bytes(model)
    else:
        path = Path(model)
        if not path.is_file():
            raise InvalidArgumentError(f"no model file at {model}; export it first")
        model_bytes = path.read_bytes()
    choice = _choose_browser(browser)
    try:
        if choice == "none":
            raise BrowserUnavailable(f"no browser is driven here ({BROWSER_VARIABLE}=none)")
        runtime = find_web_runtime()
        chromium = _headless_ready() if choice == "headless" else None
    except (BrowserUnavailable, MissingDependencyError) as missing:
        if strict:
            raise BrowserUnavailable(str(missing)) from None
        return _skipped(pages, str(missing))
    with PageServer(pages, script=script, model=model_bytes, inputs=array.tobytes(),
                    dtype=str(array.dtype), item_shape=array.shape[1:], count=len(array),
                    runtime=runtime, files=files, warmup=warmup, rounds=rounds) as server:
        return _run_pages(server, choice, chromium, time.monotonic() + timeout_s, page_timeout_s,
                          chromium_args, strict)


def _run_pages(server: PageServer, choice: str, chromium, deadline: float, page_timeout_s,
               chromium_args, strict: bool) -> BrowserResults:
    notes, blocked, outcome, browser = [], [], {}, ""
    if choice == "notebook":
        from IPython.display import HTML, display

        display(HTML(_frame_html(server)))
        if server.page_requested.wait(min(page_timeout_s, max(0.0, deadline - time.monotonic()))):
            browser, blocked = "this notebook's browser", None
            with server.changed:
                server.changed.wait_for(lambda: len(server.results) == len(server.pages),
                                        max(0.0, deadline - time.monotonic()))
        else:
            try:
                chromium = _headless_ready()
            except BrowserUnavailable as missing:
                reason = (f"no browser asked for the page within {page_timeout_s:g} s, and "
                          f"{missing.reason.removeprefix('no browser can be driven here: ')}")
                if strict:
                    raise BrowserUnavailable(reason) from None
                return _skipped(server.pages, reason)
            notes.append(f"no browser asked for the page within {page_timeout_s:g} s (a kernel "
                         "without a front-end, or a browser that cannot reach this machine's "
                         "127.0.0.1): headless Chromium ran it")
            choice = "headless"
    if choice == "headless":
        cancel = threading.Event()
        driver = threading.Thread(target=_drive_headless, name="browser-run", daemon=True,
                                  args=(server, deadline, chromium, chromium_args, blocked,
                                        cancel, outcome))
        driver.start()
        try:
            while driver.is_alive():
                driver.join(0.2)
        finally:
            cancel.set()  # a KeyboardInterrupt stops the page too
            driver.join(30)
        browser = outcome.get("browser", "headless Chromium")
        if "browser" not in outcome and "error" in outcome:
            reason = f"headless Chromium did not start: {outcome['error']}"
            if strict:
                raise BrowserUnavailable(reason)
            return _skipped(server.pages, reason, browser)
    with server.changed:
        posted = dict(server.results)
    why = outcome.get("crash") or outcome.get("error") or (
        "the page sent no result in time (timeout_s); a script that never returns, or a "
        "browser that stopped the page")
    runs = [BrowserRun.from_posted(config, posted.get(i), why) for i, config in enumerate(server.pages)]
    return BrowserResults(runs, browser, blocked, None, notes)


def run_script_in_browser(script: str, model: bytes, inputs, *, provider: str = "wasm",
                          threads: int = 1, timeout_s: float = GRADING_LIMITS["timeout_s"]) -> dict:
    """The grader's entry: a student's script run headless on the check's model and inputs.

    Takes and returns plain data only, so a check can call it in a limited child
    process: the script as a string, the model as bytes. Headless Chromium only
    (never a frame), no timed rounds, every request beyond 127.0.0.1 refused, the
    page stopped after ``timeout_s``; sizes are capped by :data:`GRADING_LIMITS`.

    Args:
        script: the student's JavaScript (``predict`` and maybe ``createSession``).
        model: the ``.onnx`` bytes the check provides.
        inputs: float32 or uint8 array of shape ``(items, ...)``.
        provider: ``"wasm"`` or ``"webgpu"``.
        threads: WebAssembly threads (the page is isolated when above 1).
        timeout_s: the most seconds for the page.

    Returns:
        ``{"status": "ok" | "error" | "skipped", "error": str, "outputs": list of
        lists of float (empty unless ok), "console": list of str, "browser": str,
        "blocked": int}``; ``error`` is the browser's or the harness's words.

    Raises:
        BrowserUnavailable: no browser can be driven here (or ``ONNX_COURSE_BROWSER=none``);
            the grader reports the exercise as "needs a browser to grade", never as 0.
        InvalidArgumentError: the script or the data is over the limits.
    """
    limits = GRADING_LIMITS
    if os.environ.get(BROWSER_VARIABLE) == "none":  # e.g. a grader's sandbox: no browser there
        raise BrowserUnavailable(f"no browser is driven here ({BROWSER_VARIABLE}=none)")
    if not isinstance(script, str) or len(script) > limits["script_chars"]:
        raise InvalidArgumentError(f"the script must be a str of at most "
                                   f"{limits['script_chars']:,} characters")
    array = _as_inputs(inputs)
    if len(model) > limits["model_bytes"] or array.nbytes > limits["input_bytes"]:
        raise InvalidArgumentError("the model or the inputs are over the grading limits")
    results = run_in_browser(bytes(model), script, array,
                             pages=[PageConfig(provider, threads)], warmup=0, rounds=0,
                             browser="headless",
                             timeout_s=min(timeout_s, limits["timeout_s"]), strict=True)
    run = results[0]
    return {"status": run.status, "error": run.reason,
            "outputs": [] if run.outputs is None else run.outputs.astype(float).tolist(),
            "console": list(run.console), "browser": results.browser,
            "blocked": len(results.blocked or [])}
