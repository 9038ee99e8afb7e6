"""`segqat report` on jobs that ran through a real segqatd: float training,
QAT, PTQ, the converted model's evaluation, a sensitivity scan and a layer
diff, submitted with the segqat CLI; the report's PNGs are opened as images
and its table is checked against the jobs' metrics.json and evaluation events."""
import json
import os
import re
import shutil
import subprocess
import sys
import unittest

import grpc
from PIL import Image, ImageStat

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segqatd_fixture import (SYNTHETIC_CFG, Segqatd, dataset_overrides,  # noqa: E402
                             free_port, load_stubs, work_dir_with_dataset)

pb, pb_grpc = load_stubs()
SEGQATD = os.environ["SEGQATD"]
SEGQAT = os.environ["SEGQAT"]
WORKER = os.environ["SEGQAT_WORKER"]


class ReportTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work, cls.data = work_dir_with_dataset("segqat_report_", WORKER)
        cls.server = Segqatd(SEGQATD, os.path.join(cls.work, "server"), free_port()).start()
        cls.stub = pb_grpc.JobServiceStub(grpc.insecure_channel(cls.server.target))
        ds = dataset_overrides(cls.data)
        recipe = ["MODEL.DEEPLAB.ENCODER_WITH_ASPP", "False", "MODEL.DEEPLAB.ENABLE_DECODER",
                  "False"]
        cls.float_job = cls.submit(["train", "--do_eval"] + ds + ["SOLVER.NUM_EPOCHS", "4"])
        base = "jobs/%s/best_model" % cls.float_job
        cls.qat_job = cls.submit(["train", "--quant", "--do_eval", "--not_quant_pattern",
                                  "last_conv"] + ds + recipe +
                                 ["TRAIN.PRETRAINED_MODEL_DIR", base, "SOLVER.NUM_EPOCHS", "2",
                                  "SOLVER.LR", "0.0001"])
        cls.ptq_job = cls.submit(["ptq", "--calib", "percentile", "--do_eval",
                                  "--not_quant_pattern", "last_conv"] + ds + recipe +
                                 ["TRAIN.PRETRAINED_MODEL_DIR", base])
        cls.int8_job = cls.submit(["eval", "--convert"] + ds + recipe +
                                  ["TEST.TEST_MODEL", "jobs/%s/best_model" % cls.qat_job])
        cls.diff_job = cls.submit(["diff", "--images", "4"] + ds + recipe +
                                  ["TEST.TEST_MODEL", "jobs/%s/best_model" % cls.qat_job])
        cls.scan_job = cls.submit(["sensitivity", "--budget", "0", "--calib-batches", "2",
                                   "--not_quant_pattern", "last_conv"] + ds + recipe +
                                  ["TEST.TEST_MODEL", base])

    @classmethod
    def tearDownClass(cls):
        if cls.server.alive():
            cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    @classmethod
    def cli(cls, args, check=True):
        p = subprocess.run([SEGQAT, "--server", cls.server.target] + args,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=900)
        if check and p.returncode != 0:
            raise AssertionError("segqat %s: %d\n%s%s" % (args, p.returncode, p.stdout, p.stderr))
        return p

    @classmethod
    def submit(cls, args):
        """Runs a job to its end with `segqat ... --wait`; returns its ID."""
        p = cls.cli([args[0], "--cfg", SYNTHETIC_CFG, "--wait"] + args[1:])
        m = re.search(r"created jobs/(\S+)", p.stderr)
        assert m, p.stderr
        return m.group(1)

    def metrics_json(self, job):
        data = b"".join(c.data for c in self.stub.ReadArtifact(
            pb.ReadArtifactRequest(name="jobs/" + job, artifact="metrics.json"), timeout=60))
        return json.loads(data)

    def best_evaluation(self, job):
        events = self.stub.WatchJob(pb.WatchJobRequest(name="jobs/" + job), timeout=60)
        return max((e.evaluation for e in events if e.HasField("evaluation")),
                   key=lambda ev: ev.miou)

    def row(self, text, job):
        for line in text.splitlines():
            if line.startswith("| ") and "`%s`" % job in line:
                return [c.strip() for c in line.strip().strip("|").split("|")]
        raise AssertionError("no row for %s in\n%s" % (job, text))

    def test_1_report_holds_the_jobs_numbers_and_real_plots(self):
        out = os.path.join(self.work, "report")
        jobs = [self.float_job, self.qat_job, self.ptq_job, self.int8_job, self.scan_job,
                self.diff_job]
        p = self.cli(["report"] + ["jobs/" + j for j in jobs] + ["-o", out])
        self.assertIn("report.md", p.stdout)
        with open(os.path.join(out, "report.md")) as f:
            md = f.read()
        # model | job | mIoU | vs float | acc | kappa | file | size | INT8 ms | float ms | ratio
        for job, want in ((self.ptq_job, self.metrics_json(self.ptq_job)),
                          (self.int8_job, self.metrics_json(self.int8_job))):
            cells = self.row(md, job)
            self.assertEqual(cells[2], "%.4f" % want["miou"], cells)
            self.assertEqual(cells[4], "%.4f" % want["acc"], cells)
            self.assertEqual(cells[5], "%.4f" % want["kappa"], cells)
        int8 = self.metrics_json(self.int8_job)
        cells = self.row(md, self.int8_job)
        self.assertEqual(cells[0], "INT8 from QAT")
        self.assertEqual(cells[8], "%.2f" % int8["latency_ms"]["int8"])
        self.assertEqual(cells[9], "%.2f" % int8["latency_ms"]["float"])
        self.assertEqual(cells[6], "`int8/model.pt`")
        for job, title in ((self.float_job, "float"), (self.qat_job, "QAT")):
            best = self.best_evaluation(job)
            cells = self.row(md, job)
            self.assertEqual(cells[0], title)
            self.assertEqual(cells[2], "%.4f" % best.miou, cells)
            self.assertEqual(cells[5], "%.4f" % best.kappa, cells)
        # Against float, in points.
        fmiou = self.best_evaluation(self.float_job).miou
        self.assertEqual(self.row(md, self.ptq_job)[3],
                         "%+.2f" % (100 * (self.metrics_json(self.ptq_job)["miou"] - fmiou)))
        # QAT against PTQ of the same bits and layers, by how much either way.
        gap = 100 * (self.best_evaluation(self.qat_job).miou -
                     self.metrics_json(self.ptq_job)["miou"])
        self.assertIn("QAT %s the best PTQ of the same bits and layers (PTQ percentile) %s%.2f "
                      "mIoU points" % ("beats" if gap > 0 else "does not beat",
                                       "by " if gap > 0 else ": it trails by ", abs(gap)), md)
        # Per class: the converted model's 19 IoUs.
        self.assertIn("| road |", md)
        self.assertIn("%.4f" % int8["class_iou"][0], md.split("| road |")[1].split("\n")[0])
        # The scan: its suggestion and table, with every layer of the model.
        with open(os.path.join(out, "jobs", self.scan_job, "sensitivity.json")) as f:
            scan = json.load(f)
        self.assertEqual(len(scan["layers"]), 62)
        self.assertIn("## Sensitivity: sensitivity abs_max (`%s`)" % self.scan_job, md)
        self.assertIn("`%s`" % scan["layers"][0]["name"], md)
        # The layer diff of the QAT model: every code of every quantized tensor
        # equal between the simulation and the INT8 engine, in the report's words.
        with open(os.path.join(out, "jobs", self.diff_job, "diff.json")) as f:
            diff = json.load(f)
        self.assertEqual(diff["images"], 4)
        self.assertIsNone(diff["first_divergence"])
        self.assertGreater(len(diff["tensors"]), 20)
        self.assertTrue(all(t["codes"] > 0 and t["differing"] == 0 for t in diff["tensors"]))
        codes = sum(t["codes"] for t in diff["tensors"])
        convs = sum(t["op"] == "conv input" for t in diff["tensors"])
        adds = sum(t["op"] == "add output" for t in diff["tensors"])
        self.assertIn("## Converted vs simulated: diff of QAT (`%s`)" % self.diff_job, md)
        self.assertIn("on 4 val images, tensor by tensor (%d quantized tensors: %d conv inputs, "
                      "%d add outputs). Every integer code is equal (%d codes); the logits "
                      "differ by at most 0 and the labels agree on 100.00%% of the pixels."
                      % (len(diff["tensors"]), convs, adds, codes), md)
        # The plots are real PNGs of a useful size, not blank.
        pngs = ["curves.png", "class_iou.png", "sensitivity_%s.png" % self.scan_job]
        for name in pngs:
            self.assertIn("](%s)" % name, md)
            path = os.path.join(out, name)
            self.assertGreater(os.path.getsize(path), 10000, name)
            with Image.open(path) as img:
                self.assertEqual(img.format, "PNG")
                self.assertGreaterEqual(img.width, 600, name)
                self.assertGreaterEqual(img.height, 300, name)
                stat = ImageStat.Stat(img.convert("L"))
                self.assertGreater(stat.stddev[0], 10, name)  # drawn on, not a blank page

    def test_2_unknown_job_and_job_without_metrics_are_clear_errors(self):
        out = os.path.join(self.work, "bad")
        p = self.cli(["report", "jobs/nosuchjob", "-o", out], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no job jobs/nosuchjob", p.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "report.md")))
        # Training without --do_eval has no evaluation to report.
        plain = self.submit(["train"] + dataset_overrides(self.data) + ["SOLVER.NUM_EPOCHS", "1"])
        p = self.cli(["report", self.float_job, plain, "-o", out], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("jobs/%s (TRAIN, SUCCEEDED) has no metrics yet" % plain, p.stderr)
        self.assertFalse(os.path.exists(os.path.join(out, "report.md")))

    def test_3_calibration_flags_are_checked_at_create(self):
        with open(SYNTHETIC_CFG) as f:
            yaml = f.read()
        for kind, calib, needle in ((pb.PTQ, "mse", "calib: 'mse' is not one of"),
                                    (pb.TRAIN, "kl", "calib: only PTQ and SENSITIVITY")):
            with self.assertRaises(grpc.RpcError) as cm:
                self.stub.CreateJob(pb.CreateJobRequest(spec=pb.JobSpec(
                    kind=kind, config_yaml=yaml, calib=calib,
                    overrides=["TRAIN.PRETRAINED_MODEL_DIR", "/x"])), timeout=30)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn(needle, cm.exception.details())
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.CreateJob(pb.CreateJobRequest(spec=pb.JobSpec(kind=pb.PTQ, config_yaml=yaml)),
                                timeout=30)
        self.assertIn("TRAIN.PRETRAINED_MODEL_DIR: the float checkpoint to quantize is required",
                      cm.exception.details())

    def test_4_a_ptq_job_with_an_empty_calibration_set_fails_with_the_reason(self):
        empty = os.path.join(self.work, "empty_list.txt")
        open(empty, "w").close()
        p = self.cli(["ptq", "--cfg", SYNTHETIC_CFG, "--wait"] + dataset_overrides(self.data) +
                     ["DATASET.TRAIN_FILE_LIST", empty, "TRAIN.PRETRAINED_MODEL_DIR",
                      "jobs/%s/best_model" % self.float_job], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("DATASET.TRAIN_FILE_LIST: no images in " + empty, p.stdout + p.stderr)

    def test_5_a_diff_of_a_float_model_fails_with_the_reason(self):
        p = self.cli(["diff", "--cfg", SYNTHETIC_CFG, "--wait"] + dataset_overrides(self.data) +
                     ["TEST.TEST_MODEL", "jobs/%s/best_model" % self.float_job], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("TEST.TEST_MODEL: a float checkpoint has no quantized tensors to diff",
                      p.stdout + p.stderr)
        # Refused at create, by the same rules segqat-worker applies.
        p = self.cli(["diff", "--cfg", SYNTHETIC_CFG, "--images", "0"], check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("diff_images: expects a number >= 1, got 0", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
