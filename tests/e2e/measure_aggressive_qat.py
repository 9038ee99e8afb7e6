"""Issue 21's aggressive case, as a new user would run it: the generated
dataset (64 train / 16 val, 128x256, seed 7), float training on the
synthetic config's own schedule (40 epochs), then QAT from it with
`--not_quant_pattern last_conv` on the same schedule at SOLVER.LR 0.05.
Prints the simulated and the converted mIoU and the layer diffs: the
simulation against the engine as it runs by default, and against the engine
on LibTorch's requantizing integer kernels (EngineOptions::integer_kernels,
the kind of arithmetic the engine ran before converted == simulated).
The figures in docs/results.md come from here.

  SEGQAT_WORKER=build/bin/segqat-worker .venv/bin/python \\
      tests/e2e/measure_aggressive_qat.py [SEED]
"""
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segqat_e2e import SYNTHETIC_CFG, dataset_overrides, evaluate, run  # noqa: E402


def diff(model, ds, work, name, extra=()):
    out = os.path.join(work, name + ".json")
    code, text = run(["diff", "--cfg", SYNTHETIC_CFG, "--images", "16", "--json", out] +
                     list(extra) + ["TEST.TEST_MODEL", model] + ds, expect_ok=False)
    with open(out) as f:
        return json.load(f)


def main(seed):
    work = tempfile.mkdtemp(prefix="segqat_aggressive_")
    try:
        data = os.path.join(work, "data")
        run(["make-dataset", "--out", data, "--train", "64", "--val", "16",
             "--height", "128", "--width", "256", "--seed", seed])
        ds = dataset_overrides(data)
        float_dir, quant_dir = os.path.join(work, "float"), os.path.join(work, "quant")
        run(["train", "--cfg", SYNTHETIC_CFG, "--log_steps", "80"] + ds +
            ["TRAIN.MODEL_SAVE_DIR", float_dir])
        run(["train", "--quant", "--not_quant_pattern", "last_conv", "--cfg", SYNTHETIC_CFG,
             "--log_steps", "80"] + ds +
            ["TRAIN.PRETRAINED_MODEL_DIR", os.path.join(float_dir, "final"),
             "TRAIN.MODEL_SAVE_DIR", quant_dir, "SOLVER.LR", "0.05"])
        model = os.path.join(quant_dir, "final")
        sim = evaluate(model, data, os.path.join(work, "sim.json"))
        conv = evaluate(model, data, os.path.join(work, "int8.json"), convert=True)
        print("seed %s: QAT simulated %.4f, converted %.4f: %+.2f points"
              % (seed, sim["miou"], conv["miou"], 100 * (conv["miou"] - sim["miou"])))
        for name, extra in (("engine", ()), ("integer kernels", ("--integer-kernels",))):
            d = diff(model, ds, work, name.replace(" ", "_"), extra)
            differing = [t for t in d["tensors"] if t["differing"]]
            first = next(iter(differing), None)
            print("  diff against the %s: %d tensors, %d with differing codes, first %s%s, "
                  "labels agree on %.2f%%"
                  % (name, len(d["tensors"]), len(differing), d["first_divergence"],
                     " (%d of %d codes, by %d)" % (first["differing"], first["codes"],
                                                   first["max_difference"]) if first else "",
                     100 * d["pixel_agreement"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "7")
