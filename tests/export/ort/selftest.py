"""Smoke test of the ONNX Runtime harness (run_onnx.py).

Builds tiny opset-13 models with onnx's helper API, runs them through the
harness and compares with numpy:
  * QuantizeLinear/DequantizeLinear (uint8 zero point 128) -> Conv
  * the same with an int8 zero point 0
  * QDQ -> Conv -> Resize (linear, half_pixel, sizes input), the usual head
    of a segmentation model
It also checks the harness's error exits (code 2, file named) and --bench.

Needs numpy, onnx and onnxruntime: the project's virtual environment
(scripts/install-python.sh), whose python ctest runs this with.
Run: .venv/bin/python tests/export/ort/selftest.py   (exit 0 on success)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    import onnxruntime
    from onnx import TensorProto, helper, numpy_helper
except ImportError as e:
    sys.exit("selftest: %s; run it with .venv/bin/python (scripts/install-python.sh)" % e)

HERE = os.path.dirname(os.path.abspath(__file__))
HARNESS = os.path.join(HERE, "run_onnx.py")
OPSET = 13
CLASSES = 5
SCALE = np.float32(0.02)
RNG = np.random.default_rng(1234)


# ---------------------------------------------------------------- models

def qdq_nodes(zero_point):
    """image -> QuantizeLinear -> DequantizeLinear -> 'dq'."""
    inits = [numpy_helper.from_array(np.array(SCALE, np.float32), "q_scale"),
             numpy_helper.from_array(np.array(zero_point), "q_zp")]
    nodes = [helper.make_node("QuantizeLinear", ["image", "q_scale", "q_zp"], ["q"]),
             helper.make_node("DequantizeLinear", ["q", "q_scale", "q_zp"], ["dq"])]
    return nodes, inits


def conv_model(zero_point, weight, bias, resize_to=None, in_hw=("H", "W"),
               input_name="image"):
    """QDQ -> Conv(3x3, pad 1) [-> Resize to resize_to (H, W)] -> logits."""
    nodes, inits = qdq_nodes(zero_point)
    inits += [numpy_helper.from_array(weight, "conv_w"),
              numpy_helper.from_array(bias, "conv_b")]
    conv_out = "conv" if resize_to else "logits"
    nodes.append(helper.make_node("Conv", ["dq", "conv_w", "conv_b"], [conv_out],
                                  kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    out_hw = in_hw
    if resize_to:
        sizes = np.array([1, CLASSES, *resize_to], np.int64)
        inits.append(numpy_helper.from_array(sizes, "sizes"))
        # roi and scales are left empty; only sizes is given.
        nodes.append(helper.make_node("Resize", [conv_out, "", "", "sizes"], ["logits"],
                                      mode="linear",
                                      coordinate_transformation_mode="half_pixel"))
        out_hw = resize_to
    graph = helper.make_graph(
        nodes, "selftest",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, *in_hw])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, CLASSES, *out_hw])],
        inits)
    if input_name != "image":
        for n in graph.node:
            n.input[:] = [input_name if i == "image" else i for i in n.input]
        graph.input[0].name = input_name
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="segqat-ort-selftest")
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------- numpy

def ref_qdq(x, zero_point):
    info = np.iinfo(zero_point.dtype)
    zp = np.int32(zero_point)
    q = np.clip(np.rint(x / SCALE).astype(np.int32) + zp, info.min, info.max)
    return ((q - zp) * SCALE).astype(np.float64)


def ref_conv3x3(x, weight, bias):
    """x [1,3,H,W] -> [1,C,H,W]; zero padding 1, stride 1."""
    xp = np.pad(x[0], ((0, 0), (1, 1), (1, 1)))
    win = np.lib.stride_tricks.sliding_window_view(xp, (3, 3), axis=(1, 2))
    out = np.einsum("chwij,ocij->ohw", win, weight.astype(np.float64))
    return (out + bias[:, None, None])[None]


def ref_resize_linear_half_pixel(x, out_h, out_w):
    """Separable linear resize of [1,C,H,W] with half_pixel coordinates."""
    def axis_weights(n_in, n_out):
        src = (np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5
        src = np.clip(src, 0, n_in - 1)
        i0 = np.floor(src).astype(int)
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, src - i0
    y0, y1, wy = axis_weights(x.shape[2], out_h)
    x0, x1, wx = axis_weights(x.shape[3], out_w)
    rows = x[:, :, y0, :] * (1 - wy)[:, None] + x[:, :, y1, :] * wy[:, None]
    return rows[:, :, :, x0] * (1 - wx) + rows[:, :, :, x1] * wx


def make_input(h, w):
    """Values on the quantization grid +-0.4 step (no rounding ties), some of
    them beyond the quantized range so that saturation is exercised."""
    steps = RNG.integers(-150, 150, size=(1, 3, h, w))
    jitter = RNG.uniform(-0.4, 0.4, size=(1, 3, h, w))
    return ((steps + jitter) * SCALE).astype(np.float32)


# ---------------------------------------------------------------- harness

def write_inputs(folder, inputs):
    os.makedirs(folder, exist_ok=True)
    for name, x in inputs.items():
        x.astype("<f4").tofile(os.path.join(folder, name + ".f32"))
        with open(os.path.join(folder, name + ".json"), "w") as f:
            json.dump({"shape": list(x.shape)}, f)


def harness(*args):
    return subprocess.run([sys.executable, HARNESS, *args], capture_output=True, text=True,
                          timeout=300)


def check(cond, msg):
    if not cond:
        sys.exit("selftest: FAIL: " + msg)


def compare(case, out_dir, name, ref):
    """Harness outputs for one input against the numpy reference."""
    _, c, h, w = ref.shape
    logits = np.fromfile(os.path.join(out_dir, name + ".logits.f32"), "<f4")
    labels = np.fromfile(os.path.join(out_dir, name + ".labels"), np.uint8)
    check(logits.size == c * h * w, "%s/%s: %d logits, want %d" % (case, name, logits.size, c * h * w))
    check(labels.size == h * w, "%s/%s: %d labels, want %d" % (case, name, labels.size, h * w))
    logits = logits.reshape(ref.shape)
    err = np.abs(logits - ref).max()
    check(np.allclose(logits, ref, rtol=1e-4, atol=1e-4),
          "%s/%s: max |ort - numpy| = %.3g" % (case, name, err))
    # The harness's argmax must be exactly numpy's argmax of the ORT logits...
    own = np.argmax(logits[0], axis=0).reshape(-1)
    check(np.array_equal(labels, own), "%s/%s: labels differ from argmax of the logits" % (case, name))
    # ...and agree with the reference wherever the top two classes are apart.
    top2 = np.sort(ref[0], axis=0)[-2:]
    decisive = (top2[1] - top2[0] > 1e-3).reshape(-1)
    want = np.argmax(ref[0], axis=0).reshape(-1)
    check(np.array_equal(labels[decisive], want[decisive]),
          "%s/%s: labels differ from numpy's" % (case, name))
    print("ok %-14s %s: logits %s max|ort-numpy|=%.2g; labels %d/%d = argmax(logits), "
          "%d/%d decisive pixels = numpy" % (case, name, list(ref.shape), err, h * w, h * w,
                                             int(decisive.sum()), int(decisive.sum())))


def expect_error(args, needle, what):
    r = harness(*args)
    check(r.returncode == 2, "%s: exit %d, want 2\n%s" % (what, r.returncode, r.stderr))
    check(needle in r.stderr, "%s: %r not in stderr:\n%s" % (what, needle, r.stderr))
    print("ok error %-18s exit 2: %s" % (what, r.stderr.strip().splitlines()[0][:150]))


def main():
    print("onnx %s (opset %d models), numpy %s, onnxruntime %s"
          % (onnx.__version__, OPSET, np.__version__, onnxruntime.__version__))

    weight = RNG.normal(0, 0.5, size=(CLASSES, 3, 3, 3)).astype(np.float32)
    bias = RNG.normal(0, 0.1, size=CLASSES).astype(np.float32)
    inputs = {"a": make_input(5, 7), "b": make_input(8, 6)}
    # The comparison is only meaningful if quantization changes the result.
    x = inputs["a"]
    qdq_effect = np.abs(ref_conv3x3(x.astype(np.float64), weight, bias)
                        - ref_conv3x3(ref_qdq(x, np.uint8(128)), weight, bias)).max()
    check(qdq_effect > 1e-2, "QDQ changes the logits by only %.3g" % qdq_effect)
    print("QDQ (rounding + saturation) moves the numpy logits by up to %.3g" % qdq_effect)

    work = tempfile.mkdtemp(prefix="segqat_ort_selftest_")
    try:
        in_dir = os.path.join(work, "in")
        write_inputs(in_dir, inputs)

        cases = {
            "qdq_u8_conv": (np.uint8(128), None),
            "qdq_s8_conv": (np.int8(0), None),
            "qdq_conv_rsz": (np.uint8(128), (10, 14)),
        }
        for case, (zp, resize_to) in cases.items():
            model_path = os.path.join(work, case + ".onnx")
            if resize_to:
                # Fixed sizes: feed only the input whose shape the model expects.
                case_in = os.path.join(work, case + "_in")
                write_inputs(case_in, {"a": inputs["a"]})
                model = conv_model(zp, weight, bias, resize_to=resize_to, in_hw=(5, 7))
            else:
                case_in = in_dir
                model = conv_model(zp, weight, bias)
            onnx.save(model, model_path)
            out_dir = os.path.join(work, case + "_out")
            r = harness(model_path, case_in, out_dir, "--threads", "2")
            check(r.returncode == 0, "%s: harness exit %d\n%s" % (case, r.returncode, r.stderr))
            for name in sorted(os.listdir(case_in)):
                if not name.endswith(".f32"):
                    continue
                name = name[:-4]
                ref = ref_conv3x3(ref_qdq(inputs[name], zp), weight, bias)
                if resize_to:
                    ref = ref_resize_linear_half_pixel(ref, *resize_to)
                compare(case, out_dir, name, ref)

        # --bench: one JSON line on stdout.
        model_path = os.path.join(work, "qdq_u8_conv.onnx")
        r = harness(model_path, in_dir, os.path.join(work, "bench_out"), "--bench", "5")
        check(r.returncode == 0, "bench: exit %d\n%s" % (r.returncode, r.stderr))
        lines = r.stdout.strip().splitlines()
        check(len(lines) == 1, "bench: want one stdout line, got %r" % r.stdout)
        bench = json.loads(lines[0])
        check(bench.get("iters") == 5 and 0 <= bench["ort_ms_min"] <= bench["ort_ms_median"],
              "bench: bad line %r" % lines[0])
        print("ok bench %s" % lines[0])

        # Errors: exit 2 with the offending file named.
        missing = os.path.join(work, "missing.onnx")
        expect_error([missing, in_dir, os.path.join(work, "e1")], missing, "missing model")
        corrupt = os.path.join(work, "corrupt.onnx")
        with open(corrupt, "wb") as f:
            f.write(b"this is not an onnx model")
        expect_error([corrupt, in_dir, os.path.join(work, "e2")], corrupt, "corrupt model")
        renamed = os.path.join(work, "renamed.onnx")
        onnx.save(conv_model(np.uint8(128), weight, bias, input_name="input"), renamed)
        expect_error([renamed, in_dir, os.path.join(work, "e3")], renamed, "wrong input name")
        expect_error([model_path, os.path.join(work, "no_such_dir"), os.path.join(work, "e4")],
                     "no_such_dir", "missing input dir")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("selftest: all ok")


if __name__ == "__main__":
    main()
