"""Bad input fails with a clear message naming the problem and a non-zero
exit, never a crash: unknown key, bad value, missing dataset, corrupt PNG,
label values beyond NUM_CLASSES, a checkpoint of another architecture."""
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from png import write_png  # noqa: E402
from segqat_e2e import SYNTHETIC_CFG, dataset_overrides, run  # noqa: E402


def expect_failure(args, *needles):
    code, out = run(args, expect_ok=False, timeout=600)
    assert code == 1, "exit %d (want 1) for %s\n%s" % (code, args, out)
    for n in needles:
        assert n in out, "%r not in output of %s:\n%s" % (n, args, out)
    print("ok: %s -> %s" % (" ".join(needles), out.strip().splitlines()[-1][:160]))


def main():
    work = tempfile.mkdtemp(prefix="segqat_bad_")
    try:
        data = os.path.join(work, "data")
        run(["make-dataset", "--out", data, "--train", "8", "--val", "2",
             "--height", "64", "--width", "128"])
        ds = dataset_overrides(data)
        small = ds + ["TRAIN_CROP_SIZE", "(128, 64)", "EVAL_CROP_SIZE", "(128, 64)",
                      "BATCH_SIZE", "4", "SOLVER.NUM_EPOCHS", "1",
                      "TRAIN.MODEL_SAVE_DIR", os.path.join(work, "out")]
        train = ["train", "--cfg", SYNTHETIC_CFG]

        expect_failure(train + small + ["TRAIN.SNAPSHOT_EPOCHS", "1"],
                       "TRAIN.SNAPSHOT_EPOCHS", "did you mean TRAIN.SNAPSHOT_EPOCH")
        expect_failure(train + small + ["BATCH_SIZE", "four"], "BATCH_SIZE", "expects an int")
        expect_failure(train + small + ["SLIM.weight_bits", "20"], "SLIM.weight_bits",
                       "out of range")
        expect_failure(train + small + ["SLIM.activation_quantize_type", "lsq"],
                       "SLIM.activation_quantize_type")
        expect_failure(["train", "--cfg", os.path.join(work, "missing.yaml")], "missing.yaml")
        expect_failure(train + small + ["DATASET.TRAIN_FILE_LIST", "/nonexistent/train.list"],
                       "DATASET.TRAIN_FILE_LIST", "/nonexistent/train.list")
        expect_failure(train + small + ["DATASET.TRAIN_FILE_LIST", "",
                                        "DATASET.DATA_DIR", "/nonexistent/cityscapes"],
                       "DATASET.DATA_DIR", "/nonexistent/cityscapes")

        # A corrupt PNG and a label beyond NUM_CLASSES, each named by its
        # list's line (the paths are the list's bytes: never quoted).
        bad = os.path.join(work, "bad")
        shutil.copytree(data, bad)
        with open(os.path.join(bad, "train_list.txt")) as f:
            entries = [line.split() for line in f if line.strip()]
        corrupt = os.path.join(bad, entries[0][0])
        with open(corrupt, "wb") as f:
            f.write(b"\x89PNG\r\n\x1a\nthis is not an image")
        bad_ds = dataset_overrides(bad)
        bad_list = os.path.join(bad, "train_list.txt")
        expect_failure(train + small + bad_ds, bad_list + " line 1 (its image)",
                       "cannot be decoded")
        shutil.copy(os.path.join(data, entries[0][0]), corrupt)
        label = os.path.join(bad, entries[1][1])
        write_png(label, 128, 64, [bytes([30] * 128) for _ in range(64)])
        expect_failure(train + small + bad_ds, bad_list + " line 2 (its label)", "30")

        # Two steps from scratch with MODEL.BN_MOMENTUM 0.9 (batch norms
        # average over about 10 steps): the log says evaluation would use
        # stale statistics, naming the key.
        _, log = run(train + small)
        assert "warning: MODEL.BN_MOMENTUM 0.9 averages batch-norm statistics over about " \
            "10 steps and this training from scratch has 2" in log, log

        # A checkpoint of another architecture, and --convert of a float one.
        ckpt = os.path.join(work, "out", "final")
        evaluate_args = ["eval", "--cfg", SYNTHETIC_CFG, "TEST.TEST_MODEL", ckpt] + small
        expect_failure(evaluate_args + ["MODEL.DEEPLAB.ENABLE_DECODER", "True"],
                       "another architecture", "MODEL.DEEPLAB.ENABLE_DECODER False")
        expect_failure(evaluate_args + ["DATASET.NUM_CLASSES", "21"], "DATASET.NUM_CLASSES 19")
        expect_failure(["eval", "--cfg", SYNTHETIC_CFG, "--convert", "TEST.TEST_MODEL", ckpt] +
                       small, "--convert needs a quantized checkpoint")
        expect_failure(["eval", "--cfg", SYNTHETIC_CFG, "TEST.TEST_MODEL", data] + small,
                       "is not a segqat checkpoint")
        expect_failure(train + ["--quant"] + small + ["TRAIN.RESUME_MODEL_DIR", ckpt],
                       "is a float checkpoint")
        print("OK")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
