"""Notebook 03 solved as a student might: other names, a str path, other onnx calls."""

ANSWERS = {
    "03.1": '''
node = next(n for n in original.graph.node if n.op_type == "Conv")
attrs = {a.name: a.ints for a in node.attribute}
weight = next(t for t in original.graph.initializer if t.name == node.input[1])
first_conv = {"kernel_shape": list(attrs["kernel_shape"]), "strides": list(attrs["strides"]),
              "pads": list(attrs["pads"]), "weight_shape": list(weight.dims)}
''',
    "03.2": '''
opts = ort.SessionOptions()
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
optimized_path = "artifacts/resnet18.extended.onnx"
opts.optimized_model_filepath = optimized_path
ort.InferenceSession(str(onnx_path), sess_options=opts, providers=["CPUExecutionProvider"])
''',
    "03.3": '''
fused = {}
for n in extended.graph.node:
    if n.op_type.startswith("Fused"):
        act = next(a.s.decode() for a in n.attribute if a.name == "activation")
        key = n.op_type.removeprefix("Fused") + "+" + act
        fused[key] = fused.get(key, 0) + 1
''',
    "03.4": '''
typed = onnx.shape_inference.infer_shapes(original, strict_mode=True)
dims = {}
for info in typed.graph.value_info:
    dims[info.name] = tuple(max(d.dim_value, 1) for d in info.type.tensor_type.shape.dim)
kept = set()
for node in extended.graph.node:
    kept.update(node.output)
removed = {}
for node in original.graph.node:
    for out in node.output:
        if out not in kept:
            removed[out] = dims[out]
saved_bytes = int(sum(np.prod(s) for s in removed.values())) * np.dtype(np.float32).itemsize
''',
    "03.5": '''
conv = helper.make_node("Conv", inputs=["x", "conv.weight"], outputs=["c"], kernel_shape=[3, 3])
bn = helper.make_node("BatchNormalization", inputs=["c", "bn.scale", "bn.bias", "bn.mean", "bn.var"],
                      outputs=["b"], epsilon=1e-5)
relu = helper.make_node("Relu", inputs=["b"], outputs=["y"])
graph = helper.make_graph([conv, bn, relu], "hand", inputs=[x_info], outputs=[y_info],
                          initializer=initializers)
hand_model = helper.make_model(graph, opset_imports=[helper.make_operatorsetid("", 20)])
hand_model.ir_version = 10
''',
}
