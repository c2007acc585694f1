"""Students' own correct answers for notebook 00 (see README.md)."""
ANSWERS = {
    "00.2": '''out_file = Path("artifacts") / "tiny.onnx"
torch.onnx.export(tiny, (x,), out_file, input_names=["features"], dynamo=True, verbose=False)
sess = onnxruntime.InferenceSession(str(out_file), providers=["CPUExecutionProvider"])
with torch.no_grad():
    expected = tiny(x).detach().numpy()
(got,) = sess.run(None, {"features": x.numpy()})
outputs = [expected, got]''',
    "00.3": '''import importlib.metadata as md


def distributions_of(module):
    names = set()
    for dist in md.distributions():
        for file in dist.files or []:
            if file.parts and file.parts[0] in (module, module + ".py"):
                names.add(dist.metadata["Name"])
                break
    return sorted(names)''',
}
