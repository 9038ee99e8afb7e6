"""Measures what the e2e test's tolerances rest on: for each seed (dataset and
training), float, QAT and INT8 mIoU with 8-bit and 7-bit activations, by the
same recipe as test_qat_end_to_end.py. Prints one line per seed and the
spreads; run it on each kind of CPU the suite must pass on.

  SEGQAT_WORKER=build/bin/segqat-worker .venv/bin/python tests/e2e/measure_spread.py 7 8 9

SEGQAT_SPREAD_FLOAT_ADDS=1 also trains the 8-bit QAT model with SLIM.quant_add
False (float residual adds, as before the key) from the same float model.
SEGQAT_SPREAD_EXPORTS=1 also runs each model's exports through ONNX Runtime and
PyTorch (tests/export/test_exports.py) and prints their agreement with segqat.
"""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segqat_e2e import SYNTHETIC_CFG, dataset_overrides, evaluate, run  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "export"))
from test_exports import check_exports  # noqa: E402


def measure(seed, work):
    data = os.path.join(work, "data")
    run(["make-dataset", "--out", data, "--train", "64", "--val", "16", "--height", "128",
         "--width", "256", "--seed", seed])
    ds = dataset_overrides(data) + ["TRAIN.SEED", seed]
    float_dir = os.path.join(work, "float")
    run(["train", "--cfg", SYNTHETIC_CFG, "--do_eval"] + ds +
        ["TRAIN.MODEL_SAVE_DIR", float_dir, "TRAIN.SNAPSHOT_EPOCH", "10"])
    out = {"float": evaluate(os.path.join(float_dir, "best_model"), data,
                             os.path.join(work, "f.json"))["miou"]}
    qat_args = ["train", "--quant", "--not_quant_pattern", "last_conv", "--cfg", SYNTHETIC_CFG,
                "--do_eval"] + ds + [
        "TRAIN.PRETRAINED_MODEL_DIR", os.path.join(float_dir, "best_model"),
        "MODEL.DEEPLAB.ENCODER_WITH_ASPP", "False", "MODEL.DEEPLAB.ENABLE_DECODER", "False",
        "TRAIN.SYNC_BATCH_NORM", "False", "SOLVER.LR", "0.0001", "TRAIN.SNAPSHOT_EPOCH", "1"]
    variants = [("8", "6"), ("7", "4")]
    if os.environ.get("SEGQAT_SPREAD_FLOAT_ADDS"):
        variants.append(("8fa", "6"))
    for bits, epochs in variants:
        d = os.path.join(work, "q" + bits)
        extra = ["SLIM.quant_add", "False"] if bits == "8fa" else []
        run(qat_args + ["TRAIN.MODEL_SAVE_DIR", d, "SOLVER.NUM_EPOCHS", epochs,
                        "SLIM.activation_bits", bits[0]] + extra)
        best = os.path.join(d, "best_model")
        out["qat" + bits] = evaluate(best, data, os.path.join(work, "q.json"))["miou"]
        if bits == "8fa":
            continue
        out["int8_" + bits] = evaluate(best, data, os.path.join(work, "i.json"),
                                       convert=True)["miou"]
        if os.environ.get("SEGQAT_SPREAD_EXPORTS"):
            ex = os.path.join(work, "ex" + bits)
            os.makedirs(ex)
            m_segqat, m_ort, m_torch, a_ort, a_torch = check_exports(
                ex, data, best, quantized_convs=52, activation_bits=int(bits),
                assert_numbers=False)
            print("  %s-bit exports: mIoU ORT-segqat %+.2f  PyTorch-segqat %+.2f points, "
                  "pixels agreeing %.4f / %.4f" % (bits, 100 * (m_ort - m_segqat),
                                                   100 * (m_torch - m_segqat), a_ort, a_torch),
                  flush=True)
    return out


def main():
    seeds = sys.argv[1:] or ["7", "8", "9"]
    rows = []
    for seed in seeds:
        work = tempfile.mkdtemp(prefix="segqat_spread_")
        try:
            r = measure(seed, work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        rows.append(r)
        print("seed %s  float %.4f  QAT-8 %.4f  INT8-8 %.4f  QAT-7 %.4f  INT8-7 %.4f  "
              "(points) QAT-8-float %+.2f  QAT-7-float %+.2f  INT8-8-QAT %+.2f  INT8-7-QAT %+.2f"
              % (seed, r["float"], r["qat8"], r["int8_8"], r["qat7"], r["int8_7"],
                 100 * (r["qat8"] - r["float"]), 100 * (r["qat7"] - r["float"]),
                 100 * (r["int8_8"] - r["qat8"]), 100 * (r["int8_7"] - r["qat7"])), flush=True)
        if "qat8fa" in r:
            print("  QAT-8 with float adds %.4f (%+.2f points vs float)"
                  % (r["qat8fa"], 100 * (r["qat8fa"] - r["float"])), flush=True)
    for key, a, b in (("QAT-8 - float", "qat8", "float"), ("QAT-7 - float", "qat7", "float"),
                      ("INT8-8 - QAT-8", "int8_8", "qat8"), ("INT8-7 - QAT-7", "int8_7", "qat7")):
        d = [100 * (r[a] - r[b]) for r in rows]
        print("%-15s min %+.2f  max %+.2f  mean %+.2f points"
              % (key, min(d), max(d), sum(d) / len(d)))


if __name__ == "__main__":
    main()
