"""Students' own correct answers for notebook 01 (see README.md)."""
ANSWERS = {
    "01.2": '''priority = ("CUDAExecutionProvider", "CPUExecutionProvider")
session = ort.InferenceSession(str(Path("artifacts") / "small.onnx"), providers=list(priority))''',
    "01.3": '''used = [name for name in session.get_providers()]''',
    "01.4": '''def choose_providers(wanted, available):
    valid = set(ort.get_all_providers())
    bad = [name for name in wanted if name not in valid]
    if bad:
        raise ValueError(f"unknown provider(s): {bad}")
    keep = [name for name in dict.fromkeys(wanted) if name in set(available)]
    return [name for name in keep if name != "CPUExecutionProvider"] + ["CPUExecutionProvider"]''',
}
