"""The student's path in a real browser: `make lab`, notebook 00, Run All, an answer typed in.

JupyterLab runs as `make lab` starts it, on a copy of exercises/ in a temporary
folder (the repository's exercises are never touched), and headless Chromium
uses it the way a student does: menus, the keyboard, the outputs on screen.
Nothing but 127.0.0.1 is reachable from the page (see ``browser_support``), and
the test checks that JupyterLab asked for nothing else either.
"""
import re
import shutil
import subprocess
import time
import urllib.request

import pytest

from browser_support import keep_screenshot, offline_browser, screenshot_on_failure
from conftest import stop_process_group

TOKEN = "course-browser-test"
TIMEOUT_MS = 120_000  # a cold kernel start and check_install on a shared 2-core machine
RIGHT = ('from packaging.version import Version\nfrom course_utils import check\n\n'
         'def pin_status(installed, pinned):\n'
         '    if installed is None:\n'
         '        return "missing"\n'
         '    found, pin = Version(Version(installed).public), Version(pinned)\n'
         '    return "ok" if found == pin else "newer" if found > pin else "too old"\n'
         'check("00.1", pin_status)')
# Versions compared as text: "1.10.0" < "1.9.0"
AS_TEXT = RIGHT.replace("Version(Version(installed).public), Version(pinned)",
                        'installed.split("+")[0], pinned')


@pytest.fixture
def lab(root, free_port, tmp_path):
    """`make lab` serving a copy of exercises/; yields the copy and the notebook URL prefix."""
    folder = tmp_path / "exercises"
    shutil.copytree(root / "exercises", folder, ignore=shutil.ignore_patterns("artifacts"))
    log_path = tmp_path / "lab.log"  # a file, not a pipe: a full pipe would stall JupyterLab
    with open(log_path, "w") as log_file:
        process = subprocess.Popen(
            ["make", "-s", "lab", f"PORT={free_port}", f"LAB_DIR={folder}",
             f"LAB_ARGS=--no-browser --IdentityProvider.token={TOKEN} --ServerApp.port_retries=0"],
            cwd=root, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True)  # its own process group: the kernel is stopped with it
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{free_port}/api/status?token={TOKEN}",
                                       timeout=5).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("make lab did not answer within 120 s:\n"
                                         + log_path.read_text())
                time.sleep(0.3)
        yield folder, f"http://127.0.0.1:{free_port}/lab/tree"
    finally:
        stop_process_group(process)
    log = log_path.read_text()
    # Kernel starts must not warn about plain-text transport: make lab encrypts it
    # wherever pyzmq can (its wheels can).
    import zmq

    if zmq.has("curve"):
        assert "without encryption" not in log


def _cell_index(page, text: str) -> int:
    cells = page.locator(".jp-Notebook .jp-Cell")
    for index in range(cells.count()):
        if text in (cells.nth(index).text_content() or ""):
            return index
    raise AssertionError(f"no cell contains {text!r}")


def _run_cell_with(page, cell, source: str) -> None:
    editor = cell.locator(".cm-content")
    editor.click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text(source)  # no auto-closed brackets, unlike typing key by key
    page.keyboard.press("Shift+Enter")


def test_run_all_then_solve_the_first_exercise(lab, root):
    """Run All stops at 00.1's NotImplementedError; a typed answer passes, one that compares versions as text gets the hint."""
    folder, base = lab
    original = (root / "exercises" / "00-install-check.ipynb").read_bytes()
    started = time.monotonic()
    with offline_browser() as browser:
        page = browser.new_page()
        with screenshot_on_failure(page, "student-path"):
            page.goto(f"{base}/00-install-check.ipynb?token={TOKEN}", timeout=TIMEOUT_MS)
            # The kernel's state in the status bar: "Python 3 (ipykernel) | Idle".
            page.get_by_text(re.compile(r"\| Idle$")).wait_for(timeout=TIMEOUT_MS)
            # The first cell says what to do when Run All stops at an exercise.
            (page.locator(".jp-Cell").first.locator(".jp-RenderedMarkdown")
                .get_by_text("Run Selected Cell and All Below").wait_for())

            page.get_by_role("menuitem", name="Run", exact=True).click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            index = _cell_index(page, 'raise NotImplementedError("Exercise 00.1')
            cell = page.locator(".jp-Notebook .jp-Cell").nth(index)
            cell.locator(".jp-OutputArea-output", has_text="NotImplementedError").wait_for(
                timeout=TIMEOUT_MS)
            keep_screenshot(page, "student-path-run-all")

            _run_cell_with(page, cell, RIGHT)
            cell.locator(".jp-OutputArea-output", has_text="[pass] Exercise 00.1").wait_for(
                timeout=TIMEOUT_MS)

            keep_screenshot(page, "student-path-pass")
            _run_cell_with(page, cell, AS_TEXT)
            hint = cell.locator(".jp-OutputArea-output", has_text="[try again] Exercise 00.1")
            hint.wait_for(timeout=TIMEOUT_MS)
            assert "as numbers" in hint.inner_text()
            keep_screenshot(page, "student-path-hint")
            assert "Jupyter news" not in page.locator("body").inner_text()  # no news pop-up
    print(f"student path in the browser: {time.monotonic() - started:.1f} s")
    assert browser.blocked == [], f"JupyterLab asked for outside addresses: {browser.blocked}"
    assert (root / "exercises" / "00-install-check.ipynb").read_bytes() == original
