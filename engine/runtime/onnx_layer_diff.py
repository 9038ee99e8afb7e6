"""ONNX Runtime's half of `segqat-worker diff --runtime onnx` (compiled into
segqat-worker, run as `python -c SCRIPT DUMP_DIR`).

DUMP_DIR, as engine/runtime/layer_diff.cc writes it:
  model.onnx              the checkpoint's deploy graph, exported as `export` does
  tensors.json            {"tensors": [{"index", "name", "op", "onnx", "shape"}]} in
                          graph order; "onnx" is the Conv's output for a conv input,
                          the DequantizeLinear's output for an add output
  inputs/NNNNN.f32        one image, float32 1x3xHxW (shape in NNNNN.json)
  engine/NNNNN/K.i16      the engine's codes of tensor K for that image, int16
  engine/NNNNN.logits.f32 the engine's logits

For every tensor it finds where the graph carries its codes: the
DequantizeLinear behind it, whose output is exactly (code - zero point) x
scale, or the uint8 codes a ConvInteger reads (FREEZE.ONNX_FORM exact). One tensor at a time: a graph output
keeps ONNX Runtime from fusing the node that produces it into its consumer,
so each run exposes one tensor, computed as in deployment upstream of it, and
nothing downstream is read. Prints one JSON object: the tensors (codes,
differing, max_difference, runtime_op: the ops that made the codes), the
labels' agreement and the logits' largest difference of the unmodified
model. Exit 2 with a message on stderr on any error.
"""
import json
import os
import sys


def fail(message):
    sys.stderr.write("onnx layer diff: %s\n" % message)
    sys.exit(2)


def producer_chain(producers, tensor, depth=3):
    """The ops that computed `tensor`, nearest first: "Clip <- QuantizeLinear <- Conv"."""
    ops = []
    while len(ops) < depth and tensor in producers:
        node = producers[tensor]
        ops.append(node.op_type)
        if not node.input:
            break
        tensor = node.input[0]
    return " <- ".join(ops)


def main(dump):
    try:
        import numpy as np
        import onnx
        import onnxruntime as ort
        from onnx import numpy_helper
    except ImportError as e:
        fail("needs numpy, onnx and onnxruntime (scripts/install-python.sh puts them in .venv): %s"
             % e)
    model = onnx.load(os.path.join(dump, "model.onnx"))
    with open(os.path.join(dump, "tensors.json")) as f:
        tensors = json.load(f)["tensors"]
    producers = {out: node for node in model.graph.node for out in node.output}
    initializers = {i.name: i for i in model.graph.initializer}

    def conv_of(tensor):
        """The Conv or ConvInteger whose result `tensor` is (through Add, Mul, Cast)."""
        for _ in range(4):
            node = producers.get(tensor)
            if node is None or node.op_type in ("Conv", "ConvInteger"):
                return node
            tensor = node.input[0]
        return None

    # Per tensor: (the tensor to read, its kind, the scale or zero point,
    # the ops that made its codes), or None when it is not in the model.
    # "dequantized": a DequantizeLinear's float output, codes = value / scale;
    # "codes": uint8 codes as ConvInteger reads them, less their zero point.
    targets = []
    for t in tensors:
        dq_output = t["onnx"]
        if t["op"] == "conv input":
            conv = conv_of(t["onnx"])
            if conv is not None and conv.op_type == "ConvInteger":
                zero_point = int(numpy_helper.to_array(initializers[conv.input[2]]))
                targets.append((conv.input[0], "codes", zero_point,
                                producer_chain(producers, conv.input[0])))
                continue
            dq_output = conv.input[0] if conv is not None else None
        dq = producers.get(dq_output) if dq_output else None
        if dq is None or dq.op_type != "DequantizeLinear":
            targets.append(None)
            continue
        scale = float(numpy_helper.to_array(initializers[dq.input[1]]))
        targets.append((dq_output, "dequantized", scale, producer_chain(producers, dq.input[0])))

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = 1
    providers = ["CPUExecutionProvider"]
    images = sorted(f[:-4] for f in os.listdir(os.path.join(dump, "inputs")) if f.endswith(".f32"))
    inputs = {}
    for image in images:
        with open(os.path.join(dump, "inputs", image + ".json")) as f:
            shape = json.load(f)["shape"]
        inputs[image] = np.fromfile(os.path.join(dump, "inputs", image + ".f32"),
                                    np.float32).reshape(shape)

    plain = ort.InferenceSession(os.path.join(dump, "model.onnx"), options, providers=providers)
    pixels = same = 0
    logits_max = 0.0
    for image, x in inputs.items():
        logits = plain.run(["logits"], {"image": x})[0]
        engine_logits = np.fromfile(os.path.join(dump, "engine", image + ".logits.f32"),
                                    np.float32).reshape(logits.shape)
        labels = engine_logits.argmax(1)
        pixels += labels.size
        same += int((logits.argmax(1) == labels).sum())
        logits_max = max(logits_max, float(np.abs(logits - engine_logits).max()))

    totals = [{"codes": 0, "differing": 0, "max_difference": 0} for _ in tensors]
    exposed, session = None, None  # one exposed output at a time: a session holds the weights
    for t, target, total in zip(tensors, targets, totals):
        if target is None:
            continue
        if target[0] != exposed:
            probe = onnx.ModelProto()
            probe.CopyFrom(model)
            probe.graph.output.append(onnx.helper.make_tensor_value_info(
                target[0], onnx.TensorProto.FLOAT if target[1] == "dequantized"
                else onnx.TensorProto.UINT8, None))
            exposed = target[0]
            session = ort.InferenceSession(probe.SerializeToString(), options,
                                           providers=providers)
        for image, x in inputs.items():
            value = session.run([target[0]], {"image": x})[0]
            if target[1] == "dequantized":
                ours = np.rint(value.astype(np.float64) / target[2]).astype(np.int32)
            else:
                ours = value.astype(np.int32) - target[2]
            engine = np.fromfile(os.path.join(dump, "engine", image, "%d.i16" % t["index"]),
                                 np.int16).astype(np.int32)
            if ours.size != engine.size:
                fail("%s: ONNX Runtime's codes have %d values, the engine's %d"
                     % (t["name"], ours.size, engine.size))
            d = np.abs(ours.reshape(-1) - engine)
            total["codes"] += int(d.size)
            total["differing"] += int((d > 0).sum())
            total["max_difference"] = max(total["max_difference"], int(d.max(initial=0)))

    out = {"images": len(images), "tensors": [], "logits_max_difference": logits_max,
           "pixel_agreement": same / pixels if pixels else 1.0,
           "onnxruntime": ort.__version__}
    for t, target, total in zip(tensors, targets, totals):
        entry = {"name": t["name"], "op": t["op"], "unmatched": target is None,
                 "runtime_op": target[3] if target else "not found in model.onnx"}
        entry.update(total)
        out["tensors"].append(entry)
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        fail("usage: python onnx_layer_diff.py DUMP_DIR")
    try:
        main(sys.argv[1])
    except (OSError, KeyError, ValueError) as e:
        fail(str(e))
