"""Chaos: a bounded queue of small training jobs runs on two remote workers
while 20 SIGKILLs hit the workers and segqatd at random, each killed process
restarting at once. At the end every job SUCCEEDED exactly once, every job's
events are numbered without a gap or a repeat, every artifact matches its
sha256, and the lost leases are on record."""
import hashlib
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("SEGQAT", "")  # test_remote_workers reads it; unused here
from segqatd_fixture import (SYNTHETIC_CFG, Segqatd, dataset_overrides, free_port,  # noqa: E402
                             load_stubs)
from test_remote_workers import Worker  # noqa: E402

pb, pb_grpc = load_stubs()
SEGQATD = os.environ["SEGQATD"]
WORKER = os.environ["SEGQAT_WORKER"]
with open(SYNTHETIC_CFG) as f:
    CONFIG_YAML = f.read()
JOBS = 6
KILLS = 20
SEED = int(os.environ.get("SEGQAT_CHAOS_SEED", "1"))


def retry(fn, timeout=120):
    """Calls fn until it does not fail with UNAVAILABLE (segqatd restarting)."""
    deadline = time.time() + timeout
    while True:
        try:
            return fn()
        except grpc.RpcError as e:
            if e.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED) \
                    or time.time() > deadline:
                raise
            time.sleep(0.2)


class ChaosTest(unittest.TestCase):
    def test_kills_lose_no_job(self):
        rng = random.Random(SEED)
        work = tempfile.mkdtemp(prefix="segqat_chaos_")
        self.addCleanup(shutil.rmtree, work, True)
        data = os.path.join(work, "dataset")
        subprocess.run([WORKER, "make-dataset", "--out", data, "--train", "16", "--val", "4",
                        "--height", "64", "--width", "128"], check=True,
                       stdout=subprocess.DEVNULL)
        metrics_port = free_port()
        server = Segqatd(SEGQATD, os.path.join(work, "server"), free_port(), workers=0)
        # Every job here loses its worker to SIGKILL many times on purpose:
        # the crash-loop limit (--max-attempts, 3 by default) is not what is
        # tested, so it is set out of reach.
        server.extra_args = ["--max-attempts", "1000", "--lease-timeout", "2", "--metrics-address",
                             "127.0.0.1:%d" % metrics_port]
        server.start()
        workers = {n: Worker(n, server.target, work).start() for n in ("wa", "wb")}
        self.addCleanup(lambda: [w.stop() for w in workers.values()])
        self.addCleanup(lambda: server.stop() if server.alive() else None)
        stub = pb_grpc.JobServiceStub(grpc.insecure_channel(server.target))
        spec = pb.JobSpec(kind=pb.TRAIN, config_yaml=CONFIG_YAML, log_steps=2,
                          overrides=dataset_overrides(data) + [
                              "SOLVER.NUM_EPOCHS", "8", "TRAIN.SNAPSHOT_EPOCH", "2"])
        jobs = [retry(lambda: stub.CreateJob(pb.CreateJobRequest(
            spec=spec, request_id="chaos-%d" % i), timeout=10)).name for i in range(JOBS)]

        def states():
            return {j: retry(lambda: stub.GetJob(pb.GetJobRequest(name=j), timeout=10)).state
                    for j in jobs}

        kills = {"wa": 0, "wb": 0, "segqatd": 0}
        busy_kills = 0
        deadline = time.time() + 600
        for _ in range(KILLS):
            time.sleep(rng.uniform(0.5, 2.5))
            victim = rng.choice(["wa", "wb", "segqatd"])
            kills[victim] += 1
            if victim == "segqatd":
                server.proc.kill()
                server.proc.wait(timeout=30)
                server.logf.close()
                server.start()
                continue
            listed = retry(lambda: stub.ListWorkers(pb.ListWorkersRequest(), timeout=10)).workers
            if any(w.name == "workers/" + victim and w.state == "busy" for w in listed):
                busy_kills += 1
            workers[victim].kill()
            workers[victim].start()
        print("kills", kills, "of which on a busy worker", busy_kills)
        while time.time() < deadline:
            if all(s in (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED) for s in states().values()):
                break
            time.sleep(0.5)
        final = states()
        self.assertEqual(set(final.values()), {pb.SUCCEEDED}, final)

        requeued_by_loss = 0
        for j in jobs:
            events = retry(lambda: list(stub.WatchJob(pb.WatchJobRequest(name=j), timeout=60)))
            seqs = [e.seq for e in events]
            self.assertEqual(seqs, list(range(1, len(seqs) + 1)), j)
            changes = [e.state for e in events if e.HasField("state")]
            self.assertEqual([c.state for c in changes].count(pb.SUCCEEDED), 1, j)
            requeued_by_loss += sum(1 for c in changes if c.state == pb.QUEUED and (
                "lease expired" in c.reason or "restarted" in c.reason))
            job = retry(lambda: stub.GetJob(pb.GetJobRequest(name=j), timeout=10))
            for a in job.artifacts:
                data = b"".join(c.data for c in retry(lambda: list(stub.ReadArtifact(
                    pb.ReadArtifactRequest(name=j, artifact=a.name), timeout=60))))
                self.assertEqual(hashlib.sha256(data).hexdigest(), a.sha256, (j, a.name))
                self.assertEqual(len(data), a.size_bytes)
        print("jobs requeued after a lost worker or server:", requeued_by_loss)
        # Every kill of a busy worker cost its job the lease (segqatd's own
        # kills are recovered through the same leases, so they add to this).
        self.assertGreaterEqual(requeued_by_loss, busy_kills)
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port,
                                      timeout=30).read().decode()
        self.assertIsNotNone(re.search(r"^segqat_worker_lease_expirations_total \S+$", text,
                                       re.M))


if __name__ == "__main__":
    unittest.main(verbosity=2)
