"""The engine's promise, end to end on generated data: float training from
scratch learns, QAT from it loses at most 0.5 points of mIoU, the converted
INT8 model scores what the QAT model scores within 0.1 points, a resumed run
ends exactly where an uninterrupted one does, and PyTorch reads the
checkpoints (and segqat reads PyTorch's)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segqat_e2e import SYNTHETIC_CFG, dataset_overrides, evaluate, run  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "export"))
from test_exports import check_exports  # noqa: E402

PYTHON = sys.executable  # the project's .venv, as ctest runs this file

# The dataset's and the training's seed (SEGQAT_E2E_SEED picks another, to
# measure the spread the tolerances below come from).
SEED = os.environ.get("SEGQAT_E2E_SEED", "7")

# Tolerances, from tests/e2e/measure_spread.py over seeds 7, 8, 9 and 10 on
# an AMD EPYC with AVX-512 VNNI, in mIoU points:
#   QAT-8 - float   -0.33 .. +1.00     QAT-7 - float   -0.46 .. +1.02
# Float kernels differ by instruction set (AVX2, AVX-512), so on another CPU
# training takes another path: each delta is one more draw from these
# spreads (with TRAIN.SEED 1 an AVX2-only EPYC measured QAT-8 -0.03 and
# QAT-7 +0.02, and an AVX-512 VNNI machine QAT-7 +0.58: issue #11).
# QAT may cost at most half a point against float; scoring better is fine,
# so that bound is one-sided.
# The converted model computes what the simulated one computes in eval, code
# for code (engine/export/deployed_ops.h; measured: 0.00 points on every
# seed, 8 and 7 bits), so INT8 - QAT is held to 0.02 points both ways.
MAX_QAT_LOSS = 0.005
MAX_INT8_GAP_8BIT = 0.0002
MAX_INT8_GAP_7BIT = 0.0002


def torch_check(script):
    p = subprocess.run([PYTHON, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True)
    if p.returncode != 0:
        raise AssertionError("PyTorch check failed:\n" + p.stdout)
    return p.stdout


def main():
    work = tempfile.mkdtemp(prefix="segqat_e2e_")
    try:
        data = os.path.join(work, "data")
        run(["make-dataset", "--out", data, "--train", "64", "--val", "16",
             "--height", "128", "--width", "256", "--seed", SEED])
        ds = dataset_overrides(data) + ["TRAIN.SEED", SEED]

        # 1. Float base model from scratch.
        float_dir = os.path.join(work, "float")
        run(["train", "--cfg", SYNTHETIC_CFG, "--do_eval", "--log_steps", "40"] + ds +
            ["TRAIN.MODEL_SAVE_DIR", float_dir, "TRAIN.SNAPSHOT_EPOCH", "10"])
        for name in ("10", "20", "30", "40", "best_model", "final"):
            assert os.path.exists(os.path.join(float_dir, name, "model.pt")), name
        fp = evaluate(os.path.join(float_dir, "best_model"), data, os.path.join(work, "f.json"))

        # 2. The seed's QAT recipe from it.
        quant_dir = os.path.join(work, "quant")
        qat_args = ["train", "--quant", "--log_steps", "8", "--not_quant_pattern", "last_conv",
                    "--cfg", SYNTHETIC_CFG, "--do_eval"] + ds + [
            "TRAIN.PRETRAINED_MODEL_DIR", os.path.join(float_dir, "best_model"),
            "MODEL.DEEPLAB.ENCODER_WITH_ASPP", "False", "MODEL.DEEPLAB.ENABLE_DECODER", "False",
            "TRAIN.SYNC_BATCH_NORM", "False", "SOLVER.LR", "0.0001", "TRAIN.SNAPSHOT_EPOCH", "1"]
        _, log = run(qat_args + ["TRAIN.MODEL_SAVE_DIR", quant_dir, "SOLVER.NUM_EPOCHS", "6"])
        assert "52 layers quantized, kept float: last_conv" in log, log
        qat = evaluate(os.path.join(quant_dir, "best_model"), data, os.path.join(work, "q.json"))
        int8_dir = os.path.join(work, "int8")
        int8 = evaluate(os.path.join(quant_dir, "best_model"), data, os.path.join(work, "i.json"),
                        convert=True, extra_flags=["--save_int8", int8_dir])
        print("mIoU float %.4f  QAT %.4f  INT8 %.4f" % (fp["miou"], qat["miou"], int8["miou"]))
        # Chance is about 0.05 (19 classes); a constant "road" scores about 0.02.
        assert fp["miou"] > 0.12, fp
        assert qat["miou"] >= fp["miou"] - MAX_QAT_LOSS, (fp["miou"], qat["miou"])
        # The INT8 engine computes the simulated QAT network's codes exactly.
        assert abs(int8["miou"] - qat["miou"]) <= MAX_INT8_GAP_8BIT, (qat["miou"], int8["miou"])
        assert int8["images"] == 16 and len(int8["class_iou"]) == 19

        # The layer-by-layer diff over the 16 val images: every quantized
        # tensor (52 conv inputs, 10 residual adds) has the same codes in the
        # simulated model and in the engine.
        diff_json = os.path.join(work, "diff.json")
        _, text = run(["diff", "--cfg", SYNTHETIC_CFG, "--images", "16", "--json", diff_json,
                       "TEST.TEST_MODEL", os.path.join(quant_dir, "best_model")] + ds)
        with open(diff_json) as f:
            diff = json.load(f)
        print(text.splitlines()[-2])
        assert diff["images"] == 16 and diff["first_divergence"] is None, text
        ops = [t["op"] for t in diff["tensors"]]
        assert ops.count("conv input") == 52 and ops.count("add output") == 10, text
        assert all(t["codes"] > 0 and t["differing"] == 0 for t in diff["tensors"]), text
        assert diff["logits_max_difference"] == 0 and diff["pixel_agreement"] == 1, text
        rc, text = run(["diff", "--cfg", SYNTHETIC_CFG, "TEST.TEST_MODEL",
                        os.path.join(float_dir, "best_model")] + ds, expect_ok=False)
        assert rc != 0 and "TEST.TEST_MODEL: a float checkpoint" in text, text

        # The same model in ONNX Runtime, tensor by tensor against the engine:
        # every tensor found in model.onnx with as many codes, the image's
        # quantization equal, and the labels as close as the export test holds
        # them. Where ORT first parts is measured in docs/deploy.md.
        ort_json = os.path.join(work, "diff_ort.json")
        rc, text = run(["diff", "--cfg", SYNTHETIC_CFG, "--images", "16", "--runtime", "onnx",
                        "--python", PYTHON, "--json", ort_json, "TEST.TEST_MODEL",
                        os.path.join(quant_dir, "best_model")] + ds, expect_ok=False)
        with open(ort_json) as f:
            ort = json.load(f)
        print(text.splitlines()[-2])
        assert rc == (0 if ort["first_divergence"] is None else 1), text
        assert ort["runtime"].startswith("onnxruntime ") and ort["images"] == 16, text
        assert [(t["name"], t["codes"]) for t in ort["tensors"]] == \
            [(t["name"], t["codes"]) for t in diff["tensors"]], text
        assert not any(t["unmatched"] for t in ort["tensors"]), text
        assert ort["tensors"][0]["differing"] == 0, text  # the image: a QuantizeLinear alone
        assert ort["pixel_agreement"] >= 0.99, text
        # FREEZE.ONNX_FORM exact in ONNX Runtime, and model.ts in LibTorch (its
        # forward_codes): the engine's codes in every tensor.
        for name, flags, extra in (
                ("ort_exact", ["--runtime", "onnx", "--python", PYTHON],
                 ["FREEZE.ONNX_FORM", "exact"]),
                ("ts", ["--runtime", "torchscript"], [])):
            out = os.path.join(work, "diff_%s.json" % name)
            _, text = run(["diff", "--cfg", SYNTHETIC_CFG, "--images", "16", "--json", out] +
                          flags + ["TEST.TEST_MODEL", os.path.join(quant_dir, "best_model")] +
                          ds + extra)
            with open(out) as f:
                equal = json.load(f)
            print(text.splitlines()[-2])
            assert equal["first_divergence"] is None and len(equal["tensors"]) == 62, text
            assert all(t["codes"] > 0 and t["differing"] == 0 for t in equal["tensors"]), text
            assert equal["pixel_agreement"] >= 0.9999, text
        rc, text = run(["diff", "--cfg", SYNTHETIC_CFG, "--runtime", "onnx", "--python",
                        "/nonexistent/python", "TEST.TEST_MODEL",
                        os.path.join(quant_dir, "best_model")] + ds, expect_ok=False)
        assert rc != 0 and "--runtime onnx: cannot run /nonexistent/python" in text, text
        rc, text = run(["diff", "--cfg", SYNTHETIC_CFG, "--runtime", "tflite", "TEST.TEST_MODEL",
                        os.path.join(quant_dir, "best_model")] + ds, expect_ok=False)
        assert rc != 0 and \
            "--runtime: 'tflite' is not one of engine, onnx, torchscript" in text, text

        # Its exports in ONNX Runtime and PyTorch (tests/export/test_exports.py).
        check_exports(work, data, os.path.join(quant_dir, "best_model"), quantized_convs=52)

        # The same recipe with 7-bit activations (integer kernels on every input on
        # x86 without VNNI): as accurate, and its exports agree with the engine
        # as well (measured 99.52% / 99.72%).
        quant7_dir = os.path.join(work, "quant7")
        run(qat_args + ["TRAIN.MODEL_SAVE_DIR", quant7_dir, "SOLVER.NUM_EPOCHS", "4",
                        "SLIM.activation_bits", "7"])
        qat7 = evaluate(os.path.join(quant7_dir, "best_model"), data, os.path.join(work, "q7.json"))
        int8_7 = evaluate(os.path.join(quant7_dir, "best_model"), data,
                          os.path.join(work, "i7.json"), convert=True)
        print("mIoU with 7-bit activations: QAT %.4f  INT8 %.4f" % (qat7["miou"], int8_7["miou"]))
        assert qat7["miou"] >= fp["miou"] - MAX_QAT_LOSS, (fp["miou"], qat7["miou"])
        assert abs(int8_7["miou"] - qat7["miou"]) <= MAX_INT8_GAP_7BIT, (qat7["miou"],
                                                                        int8_7["miou"])
        export7 = os.path.join(work, "a7")
        os.makedirs(export7)
        check_exports(export7, data, os.path.join(quant7_dir, "best_model"), quantized_convs=52,
                      activation_bits=7)

        # The saved INT8 model: int8 codes and per-channel scales, a quarter of
        # the float weights' bytes, loadable by PyTorch.
        print(torch_check("""
import torch
i = torch.load(%r); f = torch.load(%r)
codes = [k for k in i if k.endswith('.weight_int8')]
assert len(codes) == 52, len(codes)
for k in codes:
    layer = k[:-len('.weight_int8')]
    assert i[k].dtype == torch.int8 and int(i[k].abs().max()) <= 127
    assert i[layer + '.weight_scale'].shape == (i[k].shape[0],)
    assert layer + '.weight' not in i
    w = f[layer + '.weight']
    if layer + '.bn_scale' in i:  # SLIM.fold_bn: the codes are of the folded weight
        w = w * i[layer + '.bn_scale'].view(-1, 1, 1, 1)
    s = i[layer + '.weight_scale'].view(-1, *([1] * (w.dim() - 1)))
    assert torch.allclose(i[k].float() * s / 127, w, atol=float(s.max()) / 127)
assert i['last_conv.weight'].dtype == torch.float32  # kept float (not_quant_pattern)
ratio = sum(i[k].numel() for k in codes) / sum(f[k[:-len('_int8')]].numel() * 4 for k in codes)
print('int8 weight bytes / float weight bytes', ratio)
assert ratio <= 0.26
""" % (os.path.join(int8_dir, "model.pt"), os.path.join(quant_dir, "best_model", "model.pt"))).strip())

        # 3. Resume: stop after epoch 2 of 3, resume, and end with the same weights.
        full = os.path.join(work, "full")
        run(qat_args + ["TRAIN.MODEL_SAVE_DIR", full, "SOLVER.NUM_EPOCHS", "3"])
        part = os.path.join(work, "part")
        run(qat_args + ["TRAIN.MODEL_SAVE_DIR", part, "SOLVER.NUM_EPOCHS", "3"])
        shutil.rmtree(os.path.join(part, "3"))
        shutil.rmtree(os.path.join(part, "final"))
        run(qat_args + ["TRAIN.MODEL_SAVE_DIR", part, "SOLVER.NUM_EPOCHS", "3",
                        "TRAIN.RESUME_MODEL_DIR", os.path.join(part, "2")])

        # 4. PyTorch reads segqat's checkpoints: weights, quantizer state, momentum.
        out = torch_check("""
import torch, sys
a = torch.load(%r); b = torch.load(%r)
assert 'backbone.features.0.0.input_quant.scale' in a, sorted(a)[:5]
assert 'backbone.features.0.0.input_quant.accum' in a
assert 'last_conv.input_quant.scale' not in a
diff = max((a[k].double() - b[k].double()).abs().max().item() for k in a)
print('resume max diff', diff)
assert diff == 0.0, diff
m = torch.load(%r)
assert set(m) <= set(a)
# A torchvision-named state dict, as torch.save writes it.
sd = {k[len('backbone.'):]: v for k, v in a.items()
      if k.startswith('backbone.features.') and '_quant.' not in k}  # no quantizer state
torch.save(sd, %r)
print('saved', len(sd))
""" % (os.path.join(full, "final", "model.pt"), os.path.join(part, "final", "model.pt"),
       os.path.join(full, "final", "optimizer.pt"), os.path.join(work, "mobilenet_v2.pth")))
        print(out.strip())
        # 5. segqat reads PyTorch's: the state dict initialises a float run.
        pth_dir = os.path.join(work, "pth")
        os.makedirs(pth_dir)
        shutil.move(os.path.join(work, "mobilenet_v2.pth"), pth_dir)
        _, log = run(["train", "--cfg", SYNTHETIC_CFG] + ds + [
            "TRAIN.PRETRAINED_MODEL_DIR", pth_dir, "TRAIN.MODEL_SAVE_DIR",
            os.path.join(work, "from_pth"), "SOLVER.NUM_EPOCHS", "1"])
        n_saved = int(out.strip().split()[-1])
        assert ("%d tensors loaded, 0 skipped" % n_saved) in log, log
        print("OK")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
