"""Dashboards' view of segqatd: a scrape taken while a job trains passes
`promtool check metrics`, and Debian's Prometheus server, scraping segqatd on
loopback, answers a query for the job's segqat_eval_miou with the mIoU the
job reported."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.parse
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segqatd_fixture import (SYNTHETIC_CFG, Segqatd, dataset_overrides, free_port,  # noqa: E402
                             load_stubs)

pb, pb_grpc = load_stubs()
PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def http_get(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.headers.get("Content-Type"), r.read().decode()


class PrometheusTest(unittest.TestCase):
    def test_prometheus_scrapes_the_jobs_miou(self):
        work = tempfile.mkdtemp(prefix="segqat_prom_")
        prom = None
        server = None
        try:
            data = os.path.join(work, "dataset")
            subprocess.run([os.environ["SEGQAT_WORKER"], "make-dataset", "--out", data, "--train",
                            "16", "--val", "4", "--height", "64", "--width", "128"], check=True,
                           stdout=subprocess.DEVNULL)
            metrics_port = free_port()
            server = Segqatd(os.environ["SEGQATD"], os.path.join(work, "server"), free_port())
            server_args = ["--metrics-address", "127.0.0.1:%d" % metrics_port]
            server.extra_args = server_args
            server.start()
            prom_port = free_port()
            with open(os.path.join(work, "prometheus.yml"), "w") as f:
                f.write("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
                        "scrape_configs:\n  - job_name: segqatd\n    honor_labels: true\n"
                        "    static_configs:\n"
                        "      - targets: ['127.0.0.1:%d']\n" % metrics_port)
            prom = subprocess.Popen(
                [PROMETHEUS, "--config.file=" + os.path.join(work, "prometheus.yml"),
                 "--storage.tsdb.path=" + os.path.join(work, "tsdb"),
                 "--web.listen-address=127.0.0.1:%d" % prom_port],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

            stub = pb_grpc.JobServiceStub(grpc.insecure_channel(server.target))
            with open(SYNTHETIC_CFG) as f:
                cfg = f.read()
            job = stub.CreateJob(pb.CreateJobRequest(spec=pb.JobSpec(
                kind=pb.TRAIN, config_yaml=cfg, do_eval=True, log_steps=1,
                overrides=dataset_overrides(data) + ["SOLVER.NUM_EPOCHS", "6",
                                                     "TRAIN.SNAPSHOT_EPOCH", "2"])), timeout=30)
            job_id = job.name.split("/")[1]
            scraped_while_running = False
            evals = []
            for e in stub.WatchJob(pb.WatchJobRequest(name=job.name), timeout=600):
                if e.HasField("evaluation"):
                    evals.append(e.evaluation.miou)
                if e.HasField("step") and e.step.step == 6 and not scraped_while_running:
                    ctype, body = http_get("http://127.0.0.1:%d/metrics" % metrics_port)
                    self.assertTrue(ctype.startswith("text/plain; version=0.0.4"), ctype)
                    self.assertIn('segqat_train_loss{job="%s"}' % job_id, body)
                    self.assertIn('segqat_jobs{state="RUNNING"} 1', body)
                    check = subprocess.run([PROMTOOL, "check", "metrics"], input=body,
                                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                           text=True)
                    self.assertEqual(check.returncode, 0, check.stdout)
                    scraped_while_running = True
            self.assertTrue(scraped_while_running)
            self.assertEqual(len(evals), 3)

            query = urllib.parse.quote('segqat_eval_miou{job="%s"}' % job_id)
            deadline = time.time() + 90
            value = None
            # Until a scrape after the last evaluation (an earlier one may hold the previous).
            while time.time() < deadline and (value is None or abs(value - evals[-1]) > 1e-6):
                try:
                    _, body = http_get("http://127.0.0.1:%d/api/v1/query?query=%s" %
                                       (prom_port, query))
                    result = json.loads(body)["data"]["result"]
                    if result:
                        value = float(result[0]["value"][1])
                except OSError:
                    pass
                time.sleep(1)
            self.assertIsNotNone(value, "Prometheus never returned segqat_eval_miou")
            self.assertAlmostEqual(value, evals[-1], places=6)
            _, body = http_get("http://127.0.0.1:%d/healthz" % metrics_port)
            self.assertEqual(body.strip(), "ok")
        finally:
            if prom is not None:
                prom.terminate()
                prom.wait(timeout=30)
            if server is not None and server.alive():
                server.stop()
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
