"""Runs an exported segmentation model with ONNX Runtime (CPU) over a folder of
raw inputs, for comparison against the C++ engine in the export tests.

  python run_onnx.py MODEL.onnx INPUT_DIR OUTPUT_DIR [--threads N] [--bench ITERS] [--serve]

INPUT_DIR:  NAME.f32  raw little-endian float32, NCHW, batch 1
            NAME.json {"shape":[1,3,H,W]}
OUTPUT_DIR: NAME.labels      uint8 argmax over C per pixel (H*W bytes, row-major)
            NAME.logits.f32  raw little-endian float32 logits [1,C,H,W]
--bench ITERS: after writing the outputs, 2 warm-up runs then ITERS timed runs
            on the first input; prints one JSON line on stdout.
--serve: after writing the outputs, prints "ready ..." and then the ms of one
            run of the first input for each "run" line on stdin (bench_inference).
Any error: a message on stderr naming the file, exit code 2.

Needs numpy and the `onnxruntime` package (PyPI, pinned in
scripts/python-requirements.txt; scripts/install-python.sh puts it in .venv).
"""
import argparse
import json
import os
import sys
import time

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
WARMUP_RUNS = 2
EXIT_ERROR = 2


class HarnessError(Exception):
    pass


def positive_int(text):
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError("needs a positive integer, got %r" % text)
    return int(text)


def parse_args(argv):
    p = argparse.ArgumentParser(prog="run_onnx.py", description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("input_dir")
    p.add_argument("output_dir")
    p.add_argument("--threads", type=positive_int, default=1)
    p.add_argument("--bench", type=positive_int, default=0)
    p.add_argument("--serve", action="store_true")
    try:
        return p.parse_args(argv)
    except SystemExit as e:
        if e.code == 0:
            raise
        sys.exit(EXIT_ERROR)  # argparse has printed the usage and the reason


def load_inputs(np, folder):
    """Every NAME.f32 + NAME.json pair in folder, sorted by name."""
    try:
        names = sorted(f for f in os.listdir(folder) if f.endswith(".f32"))
    except OSError as e:
        raise HarnessError("cannot read input dir %s: %s" % (folder, e.strerror))
    if not names:
        raise HarnessError("no .f32 inputs in %s" % folder)
    inputs = []
    for file in names:
        name = file[:-len(".f32")]
        data_path = os.path.join(folder, file)
        meta_path = os.path.join(folder, name + ".json")
        try:
            with open(meta_path) as f:
                shape = json.load(f)["shape"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise HarnessError("cannot read shape from %s: %s" % (meta_path, e))
        if (not isinstance(shape, list) or len(shape) != 4 or shape[0] != 1
                or not all(isinstance(d, int) and d > 0 for d in shape)):
            raise HarnessError('%s: "shape" must be [1,C,H,W] of positive integers, got %s'
                               % (meta_path, json.dumps(shape)))
        try:
            raw = np.fromfile(data_path, dtype="<f4")
        except OSError as e:
            raise HarnessError("cannot read input %s: %s" % (data_path, e.strerror))
        count = shape[0] * shape[1] * shape[2] * shape[3]
        if raw.size * 4 != os.path.getsize(data_path) or raw.size != count:
            raise HarnessError("%s: %d bytes, shape %s needs %d"
                               % (data_path, os.path.getsize(data_path), json.dumps(shape), count * 4))
        inputs.append({"name": name, "path": data_path,
                       "data": raw.astype(np.float32).reshape(shape)})
    return inputs


def open_session(ort, model, threads):
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    try:
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime raises its own exception types
        raise HarnessError("cannot load model %s: %s" % (model, e))
    inputs = [i.name for i in session.get_inputs()]
    outputs = [o.name for o in session.get_outputs()]
    if INPUT_NAME not in inputs:
        raise HarnessError('model %s has no input "%s" (inputs: %s)'
                           % (model, INPUT_NAME, ", ".join(inputs)))
    if OUTPUT_NAME not in outputs:
        raise HarnessError('model %s has no output "%s" (outputs: %s)'
                           % (model, OUTPUT_NAME, ", ".join(outputs)))
    return session


def run_one(session, item):
    try:
        return session.run([OUTPUT_NAME], {INPUT_NAME: item["data"]})[0]
    except Exception as e:
        raise HarnessError("inference failed on %s: %s" % (item["path"], e))


def main(argv):
    opts = parse_args(argv)
    if not os.path.isfile(opts.model):
        raise HarnessError("model not found: %s" % opts.model)
    import numpy as np
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise HarnessError("cannot import onnxruntime (run scripts/install-python.sh and use "
                           ".venv/bin/python): %s" % e)
    inputs = load_inputs(np, opts.input_dir)
    session = open_session(ort, opts.model, opts.threads)

    os.makedirs(opts.output_dir, exist_ok=True)
    for item in inputs:
        out = run_one(session, item)
        if out.dtype != np.float32 or out.ndim != 4 or out.shape[0] != 1:
            raise HarnessError('model %s: output "%s" is %s %s, expected float32 [1,C,H,W]'
                               % (opts.model, OUTPUT_NAME, out.dtype, list(out.shape)))
        if out.shape[1] > 256:
            raise HarnessError("model %s: %d classes do not fit uint8 labels"
                               % (opts.model, out.shape[1]))
        base = os.path.join(opts.output_dir, item["name"])
        # np.argmax: the first maximum wins, and a NaN beats every number.
        np.argmax(out[0], axis=0).astype(np.uint8).tofile(base + ".labels")
        out.astype("<f4").tofile(base + ".logits.f32")

    first = inputs[0]
    if opts.serve:
        sys.stdout.write("ready onnxruntime %s\n" % ort.__version__)
        sys.stdout.flush()
        for line in sys.stdin:
            if line.strip() != "run":
                break
            t0 = time.perf_counter()
            run_one(session, first)
            sys.stdout.write("%r\n" % ((time.perf_counter() - t0) * 1e3))
            sys.stdout.flush()
        return
    if opts.bench:
        for _ in range(WARMUP_RUNS):
            run_one(session, first)
        times = []
        for _ in range(opts.bench):
            t0 = time.perf_counter()
            run_one(session, first)
            times.append((time.perf_counter() - t0) * 1e3)
        times.sort()
        m = len(times) // 2
        median = times[m] if len(times) % 2 else (times[m - 1] + times[m]) / 2
        print(json.dumps({"ort_ms_median": round(median, 3), "ort_ms_min": round(times[0], 3),
                          "iters": opts.bench}))


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
    except HarnessError as e:
        sys.stderr.write("run_onnx: %s\n" % e)
        sys.exit(EXIT_ERROR)
