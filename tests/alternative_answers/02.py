"""Students' own correct answers for notebook 02 (see README.md)."""
ANSWERS = {
    "02.2": '''torchscript_path = "artifacts/resnet18_torchscript.onnx"
axes = {name: {0: "batch"} for name in ("x", "logits")}
torch.onnx.export(resnet, (example,), torchscript_path, dynamo=False, input_names=["x"],
                  output_names=["logits"], dynamic_axes=axes)''',
    "02.3": '''digits_path = str(ARTIFACTS / "digits_cnn.onnx")
n = torch.export.Dim("batch")
torch.onnx.export(cnn, (x_train[:8],), digits_path, dynamic_shapes=({0: n},), external_data=False,
                  verbose=False)''',
    "02.4": '''def outputs_match(expected, actual, rtol, atol):
    e, a = np.asarray(expected), np.asarray(actual)
    return e.shape == a.shape and bool(np.isclose(a, e, rtol=rtol, atol=atol).all())''',
    "02.5": '''ref = ReferenceEvaluator(onnx.load(digits_path))
(reference_logits,) = ref.run(None, {ref.input_names[0]: x_test[:64].numpy()})''',
    "02.6": '''graph = digits_onnx.graph
counts = {}
for node in graph.node:
    counts[node.op_type] = counts.get(node.op_type, 0) + 1
weights = 0
for tensor in graph.initializer:
    if tensor.data_type == onnx.TensorProto.FLOAT:
        weights += int(np.prod(tensor.dims))
model_facts = dict(input_name=graph.input[0].name,
                   batch_dim=graph.input[0].type.tensor_type.shape.dim[0].dim_param,
                   opset=[o.version for o in digits_onnx.opset_import if o.domain == ""][0],
                   ir_version=int(digits_onnx.ir_version), parameters=weights, op_counts=counts)''',
    "02.7": '''answers["exported_method"] = "B"
answers["dynamic_axes"] = "d "
answers["opset"] = "a"''',
    "02.8": '''any_size_path = Path("artifacts/resnet18_any_size.onnx")
sizes = (torch.export.Dim("batch"), torch.export.Dim("height"), torch.export.Dim("width"))
torch.onnx.export(resnet, (example,), any_size_path,
                  dynamic_shapes=({0: sizes[0], 2: sizes[1], 3: sizes[2]},), external_data=False,
                  verbose=False)''',
}
