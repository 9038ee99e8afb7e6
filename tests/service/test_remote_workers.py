"""Remote workers: segqatd with --local-workers 0 and two `segqat-worker serve`
processes on loopback. Jobs run on both; `segqat workers` lists them with
their devices and jobs; a worker killed with SIGKILL mid-job loses its lease
and the job resumes on the other one from its last uploaded snapshot; a
worker speaking nonsense gets clear errors and the server keeps its jobs."""
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import unittest
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segqatd_fixture import (SYNTHETIC_CFG, Segqatd, dataset_overrides, free_port,  # noqa: E402
                             load_stubs, work_dir_with_dataset)

pb, pb_grpc, wpb, wpb_grpc = load_stubs(with_workers=True)
SEGQATD = os.environ["SEGQATD"]
SEGQAT = os.environ["SEGQAT"]
WORKER = os.environ["SEGQAT_WORKER"]
with open(SYNTHETIC_CFG) as f:
    CONFIG_YAML = f.read()
LEASE_TIMEOUT = 2.0


def spec(data, *overrides, **fields):
    return pb.JobSpec(kind=pb.TRAIN, config_yaml=CONFIG_YAML, log_steps=1,
                      overrides=dataset_overrides(data) + list(overrides), **fields)


class Worker:
    def __init__(self, name, server, work):
        self.name, self.server, self.work = name, server, work
        self.proc = None

    def start(self):
        self.logf = open(os.path.join(self.work, self.name + ".log"), "a")
        self.proc = subprocess.Popen(
            [WORKER, "serve", "--server", self.server, "--name", self.name, "--gpus", "none",
             "--threads", "2",
             "--work-dir", os.path.join(self.work, self.name)],
            stdout=self.logf, stderr=subprocess.STDOUT,
            # Processes sharing cores: OpenMP threads must not spin (bench/workers_bench.py).
            env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE"))
        return self

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.logf.close()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(timeout=120)
            self.logf.close()


class RemoteWorkersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work, cls.data = work_dir_with_dataset("segqat_remote_", WORKER)
        cls.metrics_port = free_port()
        cls.server = Segqatd(SEGQATD, os.path.join(cls.work, "server"), free_port(), workers=0)
        cls.server.extra_args = ["--lease-timeout", str(LEASE_TIMEOUT),
                                 "--metrics-address", "127.0.0.1:%d" % cls.metrics_port]
        cls.server.start()
        cls.channel = grpc.insecure_channel(cls.server.target)
        cls.stub = pb_grpc.JobServiceStub(cls.channel)
        cls.wstub = wpb_grpc.WorkerServiceStub(cls.channel)
        cls.workers = {}

    @classmethod
    def tearDownClass(cls):
        for w in cls.workers.values():
            w.stop()
        if cls.server.alive():
            cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def get(self, name):
        return self.stub.GetJob(pb.GetJobRequest(name=name), timeout=30)

    def wait_for(self, what, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            got = what()
            if got:
                return got
            time.sleep(0.1)
        self.fail("timed out waiting")

    def final(self, name, timeout=600):
        events = list(self.stub.WatchJob(pb.WatchJobRequest(name=name), timeout=timeout))
        self.assertEqual([e.seq for e in events], list(range(1, len(events) + 1)))
        return events

    def lease_expirations(self):
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics_port,
                                      timeout=30).read().decode()
        m = re.search(r"^segqat_worker_lease_expirations_total (\S+)$", text, re.M)
        return float(m.group(1))

    def test_0_a_misbehaving_worker_gets_clear_errors(self):
        # No worker runs yet: this test plays one with the raw protocol.
        job = self.stub.CreateJob(pb.CreateJobRequest(spec=spec(self.data)), timeout=30)
        bad = wpb.SynchronizeRequest(protocol=7, worker_id="fake")
        with self.assertRaises(grpc.RpcError) as cm:
            self.wstub.Synchronize(bad, timeout=30)
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("protocol", cm.exception.details())

        def sync(report, **kw):
            return self.wstub.Synchronize(wpb.SynchronizeRequest(
                protocol=wpb.WORKER_PROTOCOL_V1, worker_id="fake",
                devices=[pb.Device(kind="cpu")], report=report, **kw), timeout=30)

        unknown = wpb.Lease(job="jobs/nosuchjob", fencing=1)
        with self.assertRaises(grpc.RpcError) as cm:
            sync(wpb.WorkerReport(running=wpb.WorkerReport.Running(lease=unknown)))
        self.assertEqual(cm.exception.code(), grpc.StatusCode.ABORTED)
        # A draining worker is given nothing; an idle one the job.
        self.assertTrue(sync(wpb.WorkerReport(idle={}), draining=True).HasField("idle"))
        run = sync(wpb.WorkerReport(idle={})).run
        self.assertEqual(run.lease.job, job.name)

        def upload(header, chunks):
            msgs = [wpb.UploadArtifactRequest(header=header)] + [
                wpb.UploadArtifactRequest(data=c) for c in chunks]
            return self.wstub.UploadArtifact(iter(msgs), timeout=30)

        body = b"x" * 1000
        good = wpb.UploadArtifactRequest.Header(
            lease=run.lease, worker_id="fake", artifact="notes/a.txt", size_bytes=len(body),
            sha256=hashlib.sha256(body).hexdigest())
        for header, chunks, code in [
                (wpb.UploadArtifactRequest.Header(
                    lease=run.lease, worker_id="fake", artifact="notes/b.txt",
                    size_bytes=len(body), sha256="0" * 64), [body], grpc.StatusCode.DATA_LOSS),
                (good, [body[:10]], grpc.StatusCode.DATA_LOSS),
                (wpb.UploadArtifactRequest.Header(
                    lease=run.lease, worker_id="fake", artifact="../escape", size_bytes=1,
                    sha256="0" * 64), [b"x"], grpc.StatusCode.INVALID_ARGUMENT),
                (wpb.UploadArtifactRequest.Header(
                    lease=wpb.Lease(job=job.name, fencing=9), worker_id="fake",
                    artifact="notes/c.txt", size_bytes=len(body),
                    sha256=hashlib.sha256(body).hexdigest()), [body], grpc.StatusCode.ABORTED)]:
            with self.assertRaises(grpc.RpcError) as cm:
                upload(header, chunks)
            self.assertEqual(cm.exception.code(), code, cm.exception.details())
        # A message over the server's limit is refused by gRPC itself.
        with self.assertRaises(grpc.RpcError) as cm:
            upload(good, [b"y" * (9 << 20)])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertEqual(upload(good, [body[:400], body[400:]]).sha256, good.sha256)
        # An upload cut short is resumed from the bytes the server kept.
        resumed = wpb.UploadArtifactRequest.Header()
        resumed.CopyFrom(good)
        resumed.artifact = "notes/r.txt"
        with self.assertRaises(grpc.RpcError) as cm:
            upload(resumed, [body[:300]])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.DATA_LOSS)
        self.assertIn("resume from offset 300", cm.exception.details())
        self.assertNotIn("notes/r.txt", [a.name for a in self.get(job.name).artifacts])
        held = self.wstub.QueryUpload(wpb.QueryUploadRequest(
            lease=run.lease, worker_id="fake", artifact="notes/r.txt", sha256=good.sha256),
            timeout=30)
        self.assertEqual(held.received_bytes, 300)
        resumed.offset = 100
        with self.assertRaises(grpc.RpcError) as cm:
            upload(resumed, [body[100:]])
        self.assertEqual(cm.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)
        self.assertIn("holds 300 bytes", cm.exception.details())
        resumed.offset = 300
        self.assertEqual(upload(resumed, [body[300:]]).sha256, good.sha256)
        names = [a.name for a in self.get(job.name).artifacts]
        self.assertEqual(names, ["notes/a.txt", "notes/r.txt"])  # nothing partial is listed
        # The fake worker fails the job with its reason.
        sync(wpb.WorkerReport(finished=wpb.WorkerReport.Finished(
            lease=run.lease, outcome=wpb.WorkerReport.Finished.FAILED, error="no GPU here")))
        done = self.get(job.name)
        self.assertEqual(done.state, pb.FAILED)
        self.assertEqual(done.error, "no GPU here")
        self.assertTrue(self.server.alive())

    def test_1_jobs_run_on_both_workers(self):
        for name in ("wa", "wb"):
            self.workers[name] = Worker(name, self.server.target, self.work).start()
        jobs = [self.stub.CreateJob(pb.CreateJobRequest(spec=spec(
            self.data, "SOLVER.NUM_EPOCHS", "4", "TRAIN.SNAPSHOT_EPOCH", "2")), timeout=30)
            for _ in range(2)]
        running = self.wait_for(lambda: all(self.get(j.name).state == pb.RUNNING for j in jobs))
        self.assertTrue(running)
        out = subprocess.run([SEGQAT, "--server", self.server.target, "workers"], check=True,
                             stdout=subprocess.PIPE, text=True).stdout
        for name in ("wa", "wb"):
            line = [l for l in out.splitlines() if l.startswith("workers/%s " % name)]
            self.assertEqual(len(line), 1, out)
            self.assertIn("cpu", line[0])
            self.assertIn("busy", line[0])
        self.assertEqual(sorted(re.findall(r"jobs/\w+", out)), sorted(j.name for j in jobs))
        uploaded = {}
        for j in jobs:
            events = self.final(j.name)
            self.assertEqual(events[-1].state.state, pb.SUCCEEDED)
            uploaded[j.name] = [e.artifact.name for e in events if e.HasField("artifact")]
        ran_on = sorted(self.get(j.name).worker for j in jobs)
        self.assertEqual(ran_on, ["workers/wa", "workers/wb"])
        # Uploaded outputs, byte for byte as their digests say.
        done = self.get(jobs[0].name)
        arts = {a.name: a for a in done.artifacts}
        for name in ("final/model.pt", "job.log"):
            self.assertIn(name, arts)
        data = b"".join(c.data for c in self.stub.ReadArtifact(pb.ReadArtifactRequest(
            name=done.name, artifact="final/model.pt"), timeout=60))
        self.assertEqual(hashlib.sha256(data).hexdigest(), arts["final/model.pt"].sha256)
        self.assertEqual(done.snapshot, "snapshots/4")
        # Snapshots were uploaded while it ran; once it ended only its outputs
        # remain, on the server and on the worker.
        self.assertIn("snapshots/2/model.pt", uploaded[done.name])
        self.assertIn("snapshots/4/model.pt", uploaded[done.name])
        self.assertFalse([n for n in arts if n.startswith("snapshots/")], sorted(arts))
        job_dir = os.path.join(self.work, "server", "artifacts", "jobs", done.name[5:])
        self.assertTrue(os.path.exists(os.path.join(job_dir, "final", "model.pt")))
        self.assertFalse(os.path.exists(os.path.join(job_dir, "snapshots")))
        for j in jobs:
            worker = self.get(j.name).worker.split("/")[1]
            self.assertFalse(os.path.exists(os.path.join(self.work, worker, j.name[5:])))

    def test_2_a_killed_worker_loses_no_job(self):
        before = self.lease_expirations()
        job = self.stub.CreateJob(pb.CreateJobRequest(spec=spec(
            self.data, "SOLVER.NUM_EPOCHS", "8", "TRAIN.SNAPSHOT_EPOCH", "2")), timeout=30)
        # Kill its worker once it has uploaded a snapshot.
        self.wait_for(lambda: self.get(job.name).snapshot.startswith("snapshots/"))
        victim = self.get(job.name).worker.split("/")[1]
        self.workers[victim].kill()
        try:
            self.check_resumed_elsewhere(job, victim, before)
        finally:
            # The killed worker comes back (for the next tests too), and sweeps
            # the half-written checkpoints a kill leaves behind.
            torn = os.path.join(self.work, victim, "somejob", "7.tmp1234")
            os.makedirs(torn, exist_ok=True)
            self.workers[victim].start()
            self.assertTrue(self.wait_for(lambda: not os.path.exists(torn)))
        again = self.stub.CreateJob(pb.CreateJobRequest(spec=spec(
            self.data, "SOLVER.NUM_EPOCHS", "1")), timeout=30)
        self.assertEqual(self.final(again.name)[-1].state.state, pb.SUCCEEDED)
        listed = self.stub.ListWorkers(pb.ListWorkersRequest(), timeout=30).workers
        self.assertEqual(sorted(w.name for w in listed), ["workers/fake", "workers/wa",
                                                          "workers/wb"])

    def check_resumed_elsewhere(self, job, victim, before):
        events = self.final(job.name)
        done = self.get(job.name)
        self.assertEqual(done.state, pb.SUCCEEDED)
        self.assertEqual(done.attempt, 2)
        self.assertNotEqual(done.worker, "workers/" + victim)
        states = [e.state for e in events if e.HasField("state")]
        self.assertEqual([s.state for s in states],
                         [pb.QUEUED, pb.RUNNING, pb.QUEUED, pb.RUNNING, pb.SUCCEEDED])
        self.assertIn("lease expired", states[2].reason)
        # The second attempt resumed from the snapshot, not from step 1.
        starts = [i for i, e in enumerate(events)
                  if e.HasField("state") and e.state.state == pb.RUNNING]
        second = [e.step.step for e in events[starts[1]:] if e.HasField("step")]
        self.assertGreater(second[0], 1)
        self.assertEqual(second[-1], 32)  # 8 epochs x 4 steps
        self.assertGreaterEqual(self.lease_expirations() - before, 1)

    def test_3_a_data_parallel_job_spans_both_workers(self):
        job = self.stub.CreateJob(pb.CreateJobRequest(spec=spec(
            self.data, "SOLVER.NUM_EPOCHS", "3", "TRAIN.SNAPSHOT_EPOCH", "1", workers=2)),
            timeout=30)
        events = self.final(job.name)
        self.assertEqual(events[-1].state.state, pb.SUCCEEDED, self.get(job.name).error)
        logs = [e.log.text for e in events if e.HasField("log")]
        self.assertTrue(any("data-parallel: 2 ranks, 2 images each per step" in l for l in logs),
                        logs)
        self.assertTrue(any(re.match(r"rank 0 of 2 joins at 127\.0\.0\.1:\d+", l)
                            for l in logs), logs)
        # One step event per global step (rank 0 alone reports): 3 epochs x 4.
        self.assertEqual([e.step.step for e in events if e.HasField("step")],
                         list(range(1, 13)))
        # Both ranks ended with the same weights.
        prints = []
        for name in ("wa", "wb"):
            with open(os.path.join(self.work, name + ".log")) as f:
                prints += re.findall(r"rank \d of 2: weights fingerprint (\w+)", f.read())
        self.assertEqual(len(prints), 2, prints)
        self.assertEqual(prints[0], prints[1])

    def test_4_a_lost_rank_sends_the_gang_back_to_the_queue(self):
        job = self.stub.CreateJob(pb.CreateJobRequest(spec=spec(
            self.data, "SOLVER.NUM_EPOCHS", "10", "TRAIN.SNAPSHOT_EPOCH", "2", workers=2)),
            timeout=30)
        self.wait_for(lambda: self.get(job.name).snapshot.startswith("snapshots/"))
        rank0 = self.get(job.name).worker.split("/")[1]
        rank1 = [n for n in ("wa", "wb") if n != rank0][0]
        self.workers[rank1].kill()
        try:
            self.wait_for(lambda: self.get(job.name).state == pb.QUEUED)
        finally:
            self.workers[rank1].start()
        events = self.final(job.name)
        done = self.get(job.name)
        self.assertEqual(done.state, pb.SUCCEEDED, done.error)
        self.assertEqual(done.attempt, 2)
        states = [e.state for e in events if e.HasField("state")]
        # Rank 0 sees its peer go (or rank 1's lease expires first).
        self.assertTrue("peer was lost" in states[2].reason or
                        "lease expired, rank 1" in states[2].reason, states[2].reason)
        steps = [e.step.step for e in events if e.HasField("step")]
        self.assertEqual(steps[-1], 40)  # 10 epochs x 4 global steps


if __name__ == "__main__":
    unittest.main(verbosity=2)
