"""Shared helpers for the end-to-end tests: run segqat-worker, read metrics."""
import json
import os
import subprocess
import sys

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYNTHETIC_CFG = os.path.join(SOURCE_DIR, "configs", "deeplabv3p_mobilenetv2_synthetic.yaml")


def worker():
    path = os.environ.get("SEGQAT_WORKER")
    if not path or not os.path.exists(path):
        sys.exit("SEGQAT_WORKER must name the built segqat-worker binary")
    return path


def run(args, expect_ok=True, timeout=1800):
    """Runs segqat-worker; returns (exit code, combined output)."""
    p = subprocess.run([worker()] + args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=timeout)
    if expect_ok and p.returncode != 0:
        sys.stdout.write(p.stdout)
        raise AssertionError("segqat-worker %s failed with %d" % (" ".join(args), p.returncode))
    return p.returncode, p.stdout


def dataset_overrides(data_dir):
    return ["DATASET.DATA_DIR", data_dir,
            "DATASET.TRAIN_FILE_LIST", os.path.join(data_dir, "train_list.txt"),
            "DATASET.VAL_FILE_LIST", os.path.join(data_dir, "val_list.txt"),
            "DATASET.TEST_FILE_LIST", os.path.join(data_dir, "val_list.txt")]


def evaluate(checkpoint, data_dir, out_json, convert=False, extra=(), extra_flags=()):
    args = ["eval", "--cfg", SYNTHETIC_CFG] + list(extra_flags)
    if convert:
        args.append("--convert")
    args += ["--metrics-json", out_json, "TEST.TEST_MODEL", checkpoint]
    args += dataset_overrides(data_dir) + list(extra)
    run(args)
    with open(out_json) as f:
        return json.load(f)
