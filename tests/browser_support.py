"""What the real-browser tests share: Debian's Chromium driven by playwright, kept offline.

The ``playwright`` Python package drives the ``chromium`` found on the PATH through
``executable_path``: playwright never downloads a browser here. Every request
that is not to 127.0.0.1 is aborted *and counted*, so a test can assert that a
page asked for nothing outside this machine. In CI (``CI=true``) a missing
browser or package fails the test; elsewhere it skips, naming the install step.

Screenshots of failed steps go to ``artifacts/browser/`` in the repository.
"""
from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "artifacts" / "browser"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--disable-dev-shm-usage"]
LOOPBACK = ("http://127.0.0.1:", "ws://127.0.0.1:", "data:", "blob:", "about:")


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _missing(message: str):
    if _in_ci():
        pytest.fail(message)
    pytest.skip(message)


def chromium_path() -> str:
    """Debian's Chromium, or skip (fail in CI) with the install command."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").exists():
        path = "/usr/bin/chromium"
    if path is None:
        _missing("Chromium is not installed; install it to run the browser tests: "
                 "sudo apt-get install chromium (Debian/Ubuntu; .ci/run does this in CI)")
    return path


def sync_playwright():
    """playwright's sync API, or skip (fail in CI) with the install command."""
    try:
        from playwright.sync_api import sync_playwright as start
    except ImportError:
        _missing("the playwright package is missing: pip install -e '.[dev]'")
    return start


def web_runtime_ready() -> None:
    """onnxruntime-web where setup puts it, or skip (fail in CI) with what to run."""
    from course_utils.web_runtime import WebRuntimeMissing, find_web_runtime

    try:
        find_web_runtime()
    except WebRuntimeMissing as missing:
        _missing(str(missing))


def browser_ready() -> None:
    """Chromium, playwright and onnxruntime-web all here, or skip (fail in CI)."""
    chromium_path(), sync_playwright()
    web_runtime_ready()


class OfflineBrowser:
    """A headless Chromium whose pages reach 127.0.0.1 only; ``blocked`` lists the rest."""

    def __init__(self, playwright) -> None:
        self.blocked: list[str] = []
        self.browser = playwright.chromium.launch(executable_path=chromium_path(),
                                                  args=CHROMIUM_ARGS)

    def new_page(self, width: int = 1280, height: int = 900):
        context = self.browser.new_context(viewport={"width": width, "height": height})
        context.route("**/*", self._route)
        return context.new_page()

    def _route(self, route) -> None:
        url = route.request.url
        if url.startswith(LOOPBACK):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()  # e.g. an analytics service: the browser stays offline

    def close(self) -> None:
        self.browser.close()


@contextlib.contextmanager
def offline_browser():
    """Yield an :class:`OfflineBrowser`; it is closed afterwards."""
    start = sync_playwright()
    with start() as playwright:
        browser = OfflineBrowser(playwright)
        try:
            yield browser
        finally:
            browser.close()


@contextlib.contextmanager
def screenshot_on_failure(page, name: str):
    """On an exception inside the block, save ``artifacts/browser/NAME.png`` and re-raise."""
    try:
        yield
    except BaseException:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
        raise


def keep_screenshot(page, name: str) -> None:
    """With ``BROWSER_SCREENSHOTS=1``, save ``artifacts/browser/NAME.png`` to look at."""
    if os.environ.get("BROWSER_SCREENSHOTS"):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"))
