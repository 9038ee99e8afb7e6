"""A worker whose uploads hang keeps training: `segqat-worker serve` against a
fake segqatd (a Python WorkerService) that assigns it a training job with a
snapshot every epoch and then answers no upload. Training used to upload each
snapshot on its own thread, so it stood still until the upload's 60 s
deadline; now every step of every epoch arrives while the first snapshot's
upload still hangs. Once the uploads are let through, the job ends
SUCCEEDED with the newest snapshot and its outputs in place.

And a data-parallel job of two workers whose rank 0's uploads hang longer
than the ranks' collective timeout: both ranks train every step meanwhile,
neither times out, and the gang ends SUCCEEDED once the uploads go up."""
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
import unittest
from concurrent import futures

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segqatd_fixture import SYNTHETIC_CFG, dataset_overrides, load_stubs, work_dir_with_dataset  # noqa: E402

pb, pb_grpc, wpb, wpb_grpc = load_stubs(with_workers=True)
WORKER = os.environ["SEGQAT_WORKER"]
EPOCHS = 4
# Less than the worker's 60 s upload deadline: a worker that waited for the
# first upload would show no later epoch before it.
HANG_LIMIT_S = 45


class FakeSegqatd(wpb_grpc.WorkerServiceServicer):
    def __init__(self, spec):
        self.lease = wpb.Lease(job="jobs/stuck0000001", fencing=1, token="t" * 43)
        self.spec = spec
        self.lock = threading.Lock()
        self.assigned = False
        self.steps = []           # (arrival time, TrainStep)
        self.finished = None      # the Finished report
        self.snapshot = ""        # newest snapshot the worker says is in place
        self.uploads_started = [] # (time, artifact)
        self.uploaded = {}        # artifact -> bytes
        self.release = threading.Event()

    def Synchronize(self, request, context):
        r = request.report
        with self.lock:
            kind = r.WhichOneof("state")
            if kind == "idle" and not self.assigned:
                self.assigned = True
                return wpb.SynchronizeResponse(
                    run=wpb.RunAssignment(lease=self.lease, spec=self.spec),
                    report_interval_ms=200)
            if kind == "running":
                for e in r.running.events:
                    if e.HasField("step"):
                        self.steps.append((time.time(), e.step))
                self.snapshot = r.running.snapshot or self.snapshot
                last = r.running.events[-1].worker_seq if r.running.events else 0
                return wpb.SynchronizeResponse(
                    run=wpb.RunAssignment(lease=self.lease, spec=self.spec),
                    acked_seq=last, report_interval_ms=200)
            if kind == "finished":
                for e in r.finished.events:
                    if e.HasField("step"):
                        self.steps.append((time.time(), e.step))
                self.finished = r.finished
                last = r.finished.events[-1].worker_seq if r.finished.events else 0
                return wpb.SynchronizeResponse(idle=wpb.SynchronizeResponse.Idle(),
                                               acked_seq=last)
            return wpb.SynchronizeResponse(idle=wpb.SynchronizeResponse.Idle(),
                                           report_interval_ms=200)

    def UploadArtifact(self, request_iterator, context):
        header = None
        data = bytearray()
        for part in request_iterator:
            if part.HasField("header"):
                header = part.header
                with self.lock:
                    self.uploads_started.append((time.time(), header.artifact))
                # A server that does not answer, until the test lets it.
                if not self.release.wait(timeout=300):
                    context.abort(grpc.StatusCode.UNAVAILABLE, "never released")
            else:
                data.extend(part.data)
        digest = hashlib.sha256(bytes(data)).hexdigest()
        with self.lock:
            self.uploaded[header.artifact] = bytes(data)
        return pb.Artifact(name=header.artifact, size_bytes=len(data), sha256=digest)

    def QueryUpload(self, request, context):
        return wpb.QueryUploadResponse(received_bytes=0)


class FakeGangSegqatd(wpb_grpc.WorkerServiceServicer):
    """Assigns one data-parallel job to the first two idle workers (rank 0 to
    the first, whose advertised address and port are the rendezvous) and
    answers no upload until released."""

    def __init__(self, spec):
        self.spec = spec
        self.lock = threading.Lock()
        self.idle = []            # (worker_id, master HOST:PORT) in order of arrival
        self.ranks = {}           # worker_id -> rank
        self.steps = {0: [], 1: []}  # rank 0 reports for the gang
        self.finished = {}        # rank -> Finished report
        self.uploads_started = []
        self.uploaded = {}
        self.release = threading.Event()

    def _assignment(self, worker):
        rank = self.ranks[worker]
        lease = wpb.Lease(job="jobs/gang00000001", fencing=1, rank=rank, token="g" * 43)
        return wpb.RunAssignment(lease=lease, spec=self.spec, world_size=2,
                                 master=self.idle[0][1])

    def Synchronize(self, request, context):
        r = request.report
        w = request.worker_id
        with self.lock:
            kind = r.WhichOneof("state")
            if kind == "idle":
                if w not in [i for i, _ in self.idle] and w not in self.finished_workers():
                    self.idle.append((w, "%s:%d" % (request.address, request.rendezvous_port)))
                if len(self.idle) >= 2 and w in [i for i, _ in self.idle[:2]] and \
                        w not in self.finished_workers():
                    self.ranks.setdefault(w, [i for i, _ in self.idle].index(w))
                    return wpb.SynchronizeResponse(run=self._assignment(w),
                                                   report_interval_ms=200)
                return wpb.SynchronizeResponse(idle=wpb.SynchronizeResponse.Idle(),
                                               report_interval_ms=200)
            rank = self.ranks.get(w, 0)
            state = r.running if kind == "running" else r.finished
            for e in state.events:
                if e.HasField("step"):
                    self.steps[rank].append((time.time(), e.step))
            last = state.events[-1].worker_seq if state.events else 0
            if kind == "finished":
                self.finished[rank] = r.finished
                return wpb.SynchronizeResponse(idle=wpb.SynchronizeResponse.Idle(),
                                               acked_seq=last)
            return wpb.SynchronizeResponse(run=self._assignment(w), acked_seq=last,
                                           report_interval_ms=200)

    def finished_workers(self):
        return [w for w, rank in self.ranks.items() if rank in self.finished]

    UploadArtifact = FakeSegqatd.UploadArtifact
    QueryUpload = FakeSegqatd.QueryUpload


def training_spec(data, **fields):
    with open(SYNTHETIC_CFG) as f:
        cfg = f.read()
    return pb.JobSpec(kind=pb.TRAIN, config_yaml=cfg, log_steps=1,
                      overrides=dataset_overrides(data) + [
                          "SOLVER.NUM_EPOCHS", str(EPOCHS), "TRAIN.SNAPSHOT_EPOCH", "1"],
                      **fields)


def serve(fake):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    wpb_grpc.add_WorkerServiceServicer_to_server(fake, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def launch(port, work, name, extra=()):
    """`segqat-worker serve` against the fake; returns (process, its log)."""
    log = open(os.path.join(work, name + ".log"), "w")
    return subprocess.Popen([WORKER, "serve", "--server", "127.0.0.1:%d" % port, "--name", name,
                             "--work-dir", os.path.join(work, name)] + list(extra),
                            stdout=log, stderr=subprocess.STDOUT), log


def shut_down(fake, launched, server, work):
    fake.release.set()
    for worker, _ in launched:
        worker.terminate()
    for worker, log in launched:
        try:
            worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
        log.close()
    server.stop(0)
    if os.environ.get("SEGQAT_KEEP") is None:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print("kept", work)


class StuckUploadsTest(unittest.TestCase):
    def test_training_goes_on_while_every_upload_hangs(self):
        work, data = work_dir_with_dataset("segqat_stuck_", WORKER, train=16)
        fake = FakeSegqatd(training_spec(data))
        server, port = serve(fake)
        worker, log = launch(port, work, "stuck-w")
        try:
            deadline = time.time() + 300
            while not fake.uploads_started:
                self.assertIsNone(worker.poll(), "the worker exited")
                self.assertLess(time.time(), deadline, "no snapshot upload began")
                time.sleep(0.1)
            hang_began, first = fake.uploads_started[0]
            self.assertTrue(first.startswith("snapshots/"), first)
            # Every step of every epoch arrives while that upload hangs.
            total = None
            while True:
                with fake.lock:
                    last = fake.steps[-1][1] if fake.steps else None
                if last is not None and last.step == last.total_steps:
                    total = last.total_steps
                    break
                self.assertLess(time.time() - hang_began, HANG_LIMIT_S,
                                "training stood still behind the stuck upload: last step %s"
                                % (last,))
                time.sleep(0.1)
            with fake.lock:
                epochs_seen = {s.epoch for _, s in fake.steps}
                started = [a for _, a in fake.uploads_started]
            self.assertEqual(len(epochs_seen), EPOCHS, epochs_seen)
            self.assertEqual(started, [first])  # the first still hangs, nothing else began
            self.assertFalse(fake.uploaded)
            # Let the uploads through: the newest snapshot and the outputs go up.
            fake.release.set()
            deadline = time.time() + 300
            while fake.finished is None:
                self.assertLess(time.time(), deadline, "the job never finished")
                time.sleep(0.2)
            self.assertEqual(fake.finished.outcome, wpb.WorkerReport.Finished.SUCCEEDED,
                             fake.finished.error)
            names = set(fake.uploaded)
            self.assertIn("final/model.pt", names)
            self.assertIn("job.log", names)
            snapshots = sorted({n.split("/")[1] for n in names if n.startswith("snapshots/")},
                               key=int)
            # The first (which hung) and the newest; those in between were
            # replaced while they waited.
            self.assertEqual(snapshots[0], first.split("/")[1])
            self.assertEqual(snapshots[-1], str(EPOCHS))
            self.assertIn("snapshots were not uploaded: a newer one replaced each",
                          fake.uploaded["job.log"].decode())
            print("%d steps while the first upload hung; snapshots uploaded: %s"
                  % (total, snapshots))
        finally:
            shut_down(fake, [(worker, log)], server, work)

    def check_no_rank_failed(self, fake):
        with fake.lock:
            failed = {r: f.error for r, f in fake.finished.items()
                      if f.outcome != wpb.WorkerReport.Finished.SUCCEEDED}
        self.assertFalse(failed, "a rank failed while rank 0's upload hung")

    def test_a_data_parallel_gang_trains_on_while_rank_0s_uploads_hang(self):
        collective_timeout = 10
        work, data = work_dir_with_dataset("segqat_stuck_gang_", WORKER, train=16)
        fake = FakeGangSegqatd(training_spec(data, workers=2))
        server, port = serve(fake)
        launched = [launch(port, work, name,
                           ["--threads", "1", "--collective-timeout", str(collective_timeout)])
                    for name in ("gang-a", "gang-b")]
        workers = [w for w, _ in launched]
        try:
            deadline = time.time() + 300
            while not fake.uploads_started:
                for w in workers:
                    self.assertIsNone(w.poll(), "a worker exited")
                self.assertLess(time.time(), deadline, "no snapshot upload began")
                time.sleep(0.1)
            hang_began, first = fake.uploads_started[0]
            self.assertTrue(first.startswith("snapshots/"), first)
            # The gang reaches its last step while rank 0's first upload hangs
            # (rank 0 reports for the gang; each step's gradients are averaged
            # across both ranks, so neither runs ahead of the other).
            while True:
                with fake.lock:
                    last = fake.steps[0][-1][1] if fake.steps[0] else None
                if last is not None and last.step == last.total_steps:
                    break
                self.assertLess(time.time() - hang_began, HANG_LIMIT_S,
                                "the gang stood still behind the stuck upload: %s" % last)
                self.check_no_rank_failed(fake)
                time.sleep(0.1)
            # Hang on, past the collective timeout: no rank may time out (rank
            # 1, which uploads nothing, may end SUCCEEDED meanwhile).
            while time.time() - hang_began < collective_timeout + 5:
                self.check_no_rank_failed(fake)
                time.sleep(0.2)
            self.assertNotIn(0, fake.finished)  # rank 0 still waits for its upload
            fake.release.set()
            deadline = time.time() + 300
            while len(fake.finished) < 2:
                self.assertLess(time.time(), deadline, "the gang never finished")
                time.sleep(0.2)
            for rank in (0, 1):
                self.assertEqual(fake.finished[rank].outcome,
                                 wpb.WorkerReport.Finished.SUCCEEDED, fake.finished[rank].error)
            self.assertIn("final/model.pt", fake.uploaded)
            print("the gang trained %d steps while rank 0's first upload hung for %.0f s"
                  % (last.total_steps, time.time() - hang_began))
        finally:
            shut_down(fake, launched, server, work)


if __name__ == "__main__":
    unittest.main(verbosity=2)
