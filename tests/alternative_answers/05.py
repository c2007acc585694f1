"""Notebook 05 solved as a student might: other names, ort.InferenceSession, a Path, chunks of 50."""

ANSWERS = {
    "05.1": '''
def onnx_loader(model_file, shape_per_item):
    def loader():
        sess = ort.InferenceSession(str(model_file), sess_options=serving_options,
                                    providers=["CPUExecutionProvider"])
        name = sess.get_inputs()[0].name
        def predict(images):
            images = np.asarray(images, dtype=np.float32)
            shaped = images.reshape((len(images),) + tuple(shape_per_item))
            return sess.run([sess.get_outputs()[0].name], {name: shaped})[0]
        return predict
    return loader


loader = onnx_loader(Path("artifacts") / "digits.onnx", (1, 8, 8))
digits_predict = loader()
''',
    "05.2": '''
import math

endpoint = server.url + "/models/digits-ort/predict"
images = x_test[:, 0].numpy()
http_labels = []
with httpx.Client() as client:
    for chunk in np.array_split(images, math.ceil(len(images) / 50)):
        reply = client.post(endpoint, json={"pixels": chunk.tolist()})
        assert reply.status_code == 200, reply.text
        http_labels.extend(int(v) for v in reply.json()["labels"])
''',
    "05.3": '''
gpu_names = {d.name for d in torch_fp.distributions
             if d.name.startswith("nvidia") or d.name.startswith("triton")}
cpu_only = sum(d.size_bytes for d in torch_fp.distributions if d.name not in gpu_names)
size_ratios = {}
size_ratios["as installed"] = torch_fp.total_mb / ort_fp.total_mb
size_ratios["without CUDA wheels"] = cpu_only / ort_fp.total_bytes
''',
    "05.4": '''
import onnx
from sklearn.linear_model import LogisticRegression

model_onnx = convert_sklearn(pipeline, initial_types=[("input", FloatTensorType([None, f_train.shape[1]]))],
                             options={LogisticRegression: {"zipmap": False}}, target_opset=17)
skl_onnx_path = Path("artifacts") / "digits-sklearn.onnx"
onnx.save(model_onnx, skl_onnx_path)
''',
}
