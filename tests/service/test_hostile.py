"""A hostile client against a real segqatd with --auth-tokens: each test is
one attack that worked before the second hardening round, named after what
now holds. Python gRPC stands in for a forged worker; the honest workers are
segqatd's embedded one and scripted ones that follow the protocol. One
suite over one fixture, hence its length."""
import hashlib
import os
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
from segqatd_fixture import (SYNTHETIC_CFG, GrpcAssertions, Segqatd,  # noqa: E402
                             dataset_overrides, free_port, load_stubs,
                             work_dir_with_dataset)

pb, pb_grpc, wpb, wpb_grpc = load_stubs(with_workers=True)
SEGQATD = os.environ["SEGQATD"]
WORKER = os.environ["SEGQAT_WORKER"]
with open(SYNTHETIC_CFG) as f:
    CONFIG_YAML = f.read()

# name -> (token, role, NAME in the token file)
TOKENS = {
    "alice": ("alice-submitter-token-0001", "submitter", "alice"),
    "viewer": ("viewer-token-00000000001", "viewer", "viewer"),
    "admin": ("admin-token-000000000001", "admin", "ops"),
    "honest": ("honest-worker-token-0001", "worker", "gpu-a"),
    "mallory": ("mallory-worker-token-001", "worker", "mallory-*"),
}


def md(who):
    return [("authorization", "Bearer " + TOKENS[who][0])]


def write_tokens(path):
    with open(path, "w") as f:
        for token, role, name in TOKENS.values():
            f.write("%s %s %s\n" % (token, role, name))
    os.chmod(path, 0o600)


def idle(worker_id):
    return wpb.SynchronizeRequest(protocol=wpb.WORKER_PROTOCOL_V1, worker_id=worker_id,
                                  devices=[pb.Device(kind="cpu")],
                                  report=wpb.WorkerReport(idle=wpb.WorkerReport.Idle()))


def running(worker_id, lease):
    return wpb.SynchronizeRequest(protocol=wpb.WORKER_PROTOCOL_V1, worker_id=worker_id,
                                  report=wpb.WorkerReport(
                                      running=wpb.WorkerReport.Running(lease=lease)))


def finished(worker_id, lease):
    return wpb.SynchronizeRequest(
        protocol=wpb.WORKER_PROTOCOL_V1, worker_id=worker_id,
        report=wpb.WorkerReport(finished=wpb.WorkerReport.Finished(
            lease=lease, outcome=wpb.WorkerReport.Finished.SUCCEEDED)))


def upload(stub, who, worker_id, lease, name, data):
    header = wpb.UploadArtifactRequest.Header(
        lease=lease, artifact=name, size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(), worker_id=worker_id)
    parts = [wpb.UploadArtifactRequest(header=header)] + [
        wpb.UploadArtifactRequest(data=data[i:i + (1 << 20)])
        for i in range(0, len(data), 1 << 20)]
    return stub.UploadArtifact(iter(parts), metadata=md(who), timeout=60)


def metric(port, name, **labels):
    req = urllib.request.Request("http://127.0.0.1:%d/metrics" % port,
                                 headers={"Authorization": "Bearer " + TOKENS["viewer"][0]})
    text = urllib.request.urlopen(req, timeout=10).read().decode()
    want = ",".join('%s="%s"' % kv for kv in sorted(labels.items()))
    m = re.search(r"^%s\{%s\} (\S+)$" % (re.escape(name), re.escape(want)), text, re.M)
    return float(m.group(1)) if m else 0.0


# segqatd cancels a download whose client has read nothing for this long.
STALL_TIMEOUT = 3


class Base(GrpcAssertions, unittest.TestCase):
    workers = 0
    lease_timeout = "30"  # scripted workers report when the test says so

    @classmethod
    def setUpClass(cls):
        cls.work, cls.data = work_dir_with_dataset("segqat_hostile_", WORKER, train=8)
        cls.tokens = os.path.join(cls.work, "tokens")
        write_tokens(cls.tokens)
        cls.metrics_port = free_port()
        cls.server = Segqatd(SEGQATD, os.path.join(cls.work, "server"), free_port(),
                             workers=cls.workers)
        cls.server.extra_args = ["--auth-tokens", cls.tokens, "--lease-timeout", cls.lease_timeout,
                                 "--metrics-address", "127.0.0.1:%d" % cls.metrics_port,
                                 "--download-stall-timeout", str(STALL_TIMEOUT)]
        cls.server.start()
        cls.connect()

    @classmethod
    def connect(cls):
        cls.channel = grpc.insecure_channel(cls.server.target)
        grpc.channel_ready_future(cls.channel).result(timeout=60)
        cls.stub = pb_grpc.JobServiceStub(cls.channel)
        cls.wstub = wpb_grpc.WorkerServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.channel.close()
        if cls.server.alive():
            cls.server.stop()
        if os.environ.get("SEGQAT_KEEP") is None:
            shutil.rmtree(cls.work, ignore_errors=True)
        else:
            print("kept", cls.work)

    def create(self, kind=pb.TRAIN, *overrides, **flags):
        return self.stub.CreateJob(pb.CreateJobRequest(spec=pb.JobSpec(
            kind=kind, config_yaml=CONFIG_YAML, log_steps=1,
            overrides=dataset_overrides(self.data) + list(overrides), **flags)),
            metadata=md("alice"), timeout=30)

    def get(self, name):
        return self.stub.GetJob(pb.GetJobRequest(name=name), metadata=md("viewer"), timeout=30)

    def wait(self, name, states, timeout=600):
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = self.get(name)
            if job.state in states:
                return job
            time.sleep(0.3)
        raise AssertionError("%s never reached %s: %s" % (name, states, self.get(name)))


class ScriptedWorkerTest(Base):
    """segqatd without embedded workers; an honest scripted worker (token
    gpu-a) takes each job, and mallory (token mallory-*) attacks it."""

    def take(self):
        """The honest worker takes the next queued job; its lease."""
        deadline = time.time() + 60
        while time.time() < deadline:
            r = self.wstub.Synchronize(idle("gpu-a"), metadata=md("honest"), timeout=30)
            if r.HasField("run"):
                return r.run.lease
            time.sleep(0.2)
        raise AssertionError("no job was placed")

    def forged(self, job):
        """A lease made from what any viewer sees: the job and its attempt."""
        shown = self.get(job.name)
        return wpb.Lease(job=shown.name, fencing=shown.attempt)

    def test_forged_synchronize_as_another_worker_is_refused(self):
        job = self.create()
        lease = self.take()
        refused = metric(self.metrics_port, "segqat_worker_refused_total", reason="worker_id")
        # Mallory claims the honest worker's id, and the embedded workers'.
        for wid in ("gpu-a", "gpu-a-cuda0", "local-0"):
            self.assert_code(lambda: self.wstub.Synchronize(idle(wid), metadata=md("mallory"),
                                                            timeout=30),
                             grpc.StatusCode.PERMISSION_DENIED, "worker_id")
        self.assertEqual(metric(self.metrics_port, "segqat_worker_refused_total",
                                reason="worker_id"), refused + 3)
        # An admin manages jobs but does not speak as a worker.
        self.assert_code(lambda: self.wstub.Synchronize(idle("gpu-a"), metadata=md("admin"),
                                                        timeout=30),
                         grpc.StatusCode.PERMISSION_DENIED, "Synchronize")
        # The honest worker still holds its job, on its first attempt.
        shown = self.get(job.name)
        self.assertEqual((shown.state, shown.attempt, shown.worker),
                         (pb.RUNNING, 1, "workers/gpu-a"))
        self.wstub.Synchronize(running("gpu-a", lease), metadata=md("honest"), timeout=30)
        self.stub.CancelJob(pb.CancelJobRequest(name=job.name), metadata=md("alice"), timeout=30)
        self.wstub.Synchronize(wpb.SynchronizeRequest(
            protocol=wpb.WORKER_PROTOCOL_V1, worker_id="gpu-a",
            report=wpb.WorkerReport(finished=wpb.WorkerReport.Finished(
                lease=lease, outcome=wpb.WorkerReport.Finished.INTERRUPTED))),
            metadata=md("honest"), timeout=30)
        self.assertEqual(self.wait(job.name, (pb.CANCELLED,)).state, pb.CANCELLED)

    def test_a_replayed_lease_uploads_nothing_and_the_model_is_the_honest_workers(self):
        job = self.create()
        lease = self.take()
        self.assertGreaterEqual(len(lease.token), 32)
        forged = self.forged(job)
        attack = b"mallory's model " * 64
        # Under its own id, under the holder's id, and with the holder's id
        # and an admin's token: all refused, nothing listed.
        self.assert_code(lambda: upload(self.wstub, "mallory", "mallory-1", forged,
                                        "final/model.pt", attack), grpc.StatusCode.ABORTED)
        self.assert_code(lambda: upload(self.wstub, "mallory", "gpu-a", forged,
                                        "final/model.pt", attack),
                         grpc.StatusCode.PERMISSION_DENIED, "worker_id")
        self.assert_code(lambda: upload(self.wstub, "admin", "gpu-a", forged, "final/model.pt",
                                        attack), grpc.StatusCode.PERMISSION_DENIED)
        # The same honest id and token without the lease's secret.
        self.assert_code(lambda: upload(self.wstub, "honest", "gpu-a", forged, "final/model.pt",
                                        attack), grpc.StatusCode.ABORTED, "lease token")
        for req in (running("mallory-1", forged), finished("mallory-1", forged)):
            self.assert_code(lambda: self.wstub.Synchronize(req, metadata=md("mallory"),
                                                            timeout=30),
                             grpc.StatusCode.ABORTED)
        self.assertGreaterEqual(metric(self.metrics_port, "segqat_worker_refused_total",
                                       reason="lease"), 3)
        self.assertEqual([a.name for a in self.get(job.name).artifacts], [])
        self.assertEqual(self.get(job.name).state, pb.RUNNING)
        # GetJob shows the attempt, never the token.
        self.assertNotIn(lease.token.encode(), self.get(job.name).SerializeToString())
        # The honest worker ends the job; its model is what the owner reads.
        honest = b"the honest worker's model " * 64
        upload(self.wstub, "honest", "gpu-a", lease, "final/model.pt", honest)
        self.wstub.Synchronize(finished("gpu-a", lease), metadata=md("honest"), timeout=30)
        done = self.wait(job.name, (pb.SUCCEEDED, pb.FAILED))
        self.assertEqual(done.state, pb.SUCCEEDED, done.error)
        self.assertEqual([(a.name, a.sha256) for a in done.artifacts],
                         [("final/model.pt", hashlib.sha256(honest).hexdigest())])
        read = b"".join(c.data for c in self.stub.ReadArtifact(pb.ReadArtifactRequest(
            name=job.name, artifact="final/model.pt"), metadata=md("alice"), timeout=30))
        self.assertEqual(read, honest)
        # The ended lease cannot be replayed either.
        self.assert_code(lambda: upload(self.wstub, "honest", "gpu-a", lease, "final/x.pt",
                                        attack), grpc.StatusCode.ABORTED)

    def test_a_worker_reads_only_the_jobs_it_holds_and_their_inputs(self):
        first = self.create()
        lease = self.take()
        upload(self.wstub, "honest", "gpu-a", lease, "final/model.pt", b"weights" * 100)
        self.wstub.Synchronize(finished("gpu-a", lease), metadata=md("honest"), timeout=30)
        self.wait(first.name, (pb.SUCCEEDED,))
        other = self.create()
        chained = self.create(pb.EVAL, "TEST.TEST_MODEL", first.name + "/final")
        # Jobs are placed oldest first: `other`, then `chained`.
        held = self.take()
        self.assertEqual(held.job, other.name)
        listing = lambda who, name: self.stub.ListArtifacts(  # noqa: E731
            pb.ListArtifactsRequest(name=name), metadata=md(who), timeout=30)
        listing("honest", other.name)
        self.assert_code(lambda: listing("honest", first.name), grpc.StatusCode.PERMISSION_DENIED,
                         "holds no job")
        self.assert_code(lambda: self.stub.ReadArtifact(pb.ReadArtifactRequest(
            name=first.name, artifact="final/model.pt"), metadata=md("honest"), timeout=30),
            grpc.StatusCode.PERMISSION_DENIED)
        self.wstub.Synchronize(finished("gpu-a", held), metadata=md("honest"), timeout=30)
        eval_lease = self.take()
        self.assertEqual(eval_lease.job, chained.name)
        self.assertEqual([a.name for a in listing("honest", first.name).artifacts],
                         ["final/model.pt"])
        # Mallory holds nothing: reads nothing.
        self.assert_code(lambda: listing("mallory", first.name),
                         grpc.StatusCode.PERMISSION_DENIED)
        self.wstub.Synchronize(finished("gpu-a", eval_lease), metadata=md("honest"), timeout=30)


    def test_a_flipped_byte_in_a_stored_artifact_is_never_served(self):
        job = self.create()
        lease = self.take()
        model = bytes(range(256)) * 64
        upload(self.wstub, "honest", "gpu-a", lease, "final/model.pt", model)
        self.wstub.Synchronize(finished("gpu-a", lease), metadata=md("honest"), timeout=30)
        self.wait(job.name, (pb.SUCCEEDED,))
        read = lambda: b"".join(c.data for c in self.stub.ReadArtifact(  # noqa: E731
            pb.ReadArtifactRequest(name=job.name, artifact="final/model.pt"),
            metadata=md("viewer"), timeout=30))
        self.assertEqual(read(), model)  # verified once, and remembered
        path = os.path.join(self.server.data_dir, "artifacts", "jobs", job.name[5:], "final",
                            "model.pt")
        st = os.stat(path)
        with open(path, "r+b") as f:
            f.seek(1000)
            f.write(bytes([model[1000] ^ 1]))
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
        self.assert_code(read, grpc.StatusCode.DATA_LOSS, "sha256")

    def test_what_segqatd_stores_is_its_users_alone(self):
        job = self.create()
        lease = self.take()
        upload(self.wstub, "honest", "gpu-a", lease, "final/model.pt", b"x" * 100)
        self.wstub.Synchronize(finished("gpu-a", lease), metadata=md("honest"), timeout=30)
        self.wait(job.name, (pb.SUCCEEDED,))
        d = self.server.data_dir
        self.assertEqual(os.stat(d).st_mode & 0o777, 0o700)
        self.assertEqual(os.stat(os.path.join(d, "jobs.db")).st_mode & 0o777, 0o600)
        for root, dirs, files in os.walk(d):
            for n in dirs:
                self.assertEqual(os.stat(os.path.join(root, n)).st_mode & 0o077, 0, n)
            for n in files:
                self.assertEqual(os.stat(os.path.join(root, n)).st_mode & 0o077, 0, n)

    def test_a_huge_crop_is_refused_at_create_naming_the_key(self):
        self.assert_code(lambda: self.create(pb.TRAIN, "TRAIN_CROP_SIZE", "(30000, 30000)"),
                         grpc.StatusCode.INVALID_ARGUMENT, "TRAIN_CROP_SIZE", "8192")
        self.assert_code(lambda: self.create(pb.TRAIN, "TRAIN_CROP_SIZE", "(8192, 8192)",
                                             "BATCH_SIZE", "8"),
                         grpc.StatusCode.INVALID_ARGUMENT, "BATCH_SIZE", "Mpixel")

    def finished_job_with_a_6mib_model(self):
        """A job the honest worker ran, with final/model.pt of 6 MiB; and a
        connection() to read it on."""
        job = self.create()
        lease = self.take()
        upload(self.wstub, "honest", "gpu-a", lease, "final/model.pt", os.urandom(6 << 20))
        self.wstub.Synchronize(finished("gpu-a", lease), metadata=md("honest"), timeout=30)
        self.wait(job.name, (pb.SUCCEEDED,))
        return job, self.connection()

    def connection(self):
        """A channel on a TCP connection of its own (no subchannel shared with
        other channels), without BDP probing (the flow-control window stays
        small, so a client that stops reading stops the server's writes)."""
        return grpc.insecure_channel(self.server.target,
                                     options=[("grpc.http2.bdp_probe", 0),
                                              ("grpc.use_local_subchannel_pool", 1)])

    def test_a_download_whose_client_stops_reading_is_cancelled_and_frees_its_slot(self):
        job, channel = self.finished_job_with_a_6mib_model()
        request = pb.ReadArtifactRequest(name=job.name, artifact="final/model.pt")
        # The viewer's quarter of the downloads, on two connections (each holds
        # an eighth), each read one chunk and stalled.
        channels = [channel, self.connection()]
        stalled = []
        for c in channels:
            stub = pb_grpc.JobServiceStub(c)
            for _ in range(8):
                it = stub.ReadArtifact(request, metadata=md("viewer"), timeout=120)
                next(it)
                stalled.append(it)
        third = self.connection()
        self.assert_code(lambda: next(pb_grpc.JobServiceStub(third).ReadArtifact(
            request, metadata=md("viewer"), timeout=30)),
            grpc.StatusCode.RESOURCE_EXHAUSTED, "viewer has 16 streams open")
        # Past the stall timeout each ends CANCELLED, short of the whole file...
        time.sleep(STALL_TIMEOUT + 2)
        for it in stalled:
            received = 0
            with self.assertRaises(grpc.RpcError) as cm:
                for chunk in it:
                    received += len(chunk.data)
            self.assertEqual(cm.exception.code(), grpc.StatusCode.CANCELLED)
            self.assertLess(received, 5 << 20)
        # ...and the viewer downloads again, whole.
        data = b"".join(c.data for c in pb_grpc.JobServiceStub(channel).ReadArtifact(
            request, metadata=md("viewer"), timeout=60))
        self.assertEqual(len(data), 6 << 20)
        for c in channels + [third]:
            c.close()

    def test_one_viewer_cannot_take_every_download_nor_the_workers_fetches(self):
        first, channel = self.finished_job_with_a_6mib_model()
        # The viewer opens downloads that read one chunk and stall: first on
        # one connection, then on three.
        def stall(c, n):
            stub = pb_grpc.JobServiceStub(c)
            stalled, refused = [], []
            for _ in range(n):
                it = stub.ReadArtifact(pb.ReadArtifactRequest(name=first.name,
                                                              artifact="final/model.pt"),
                                       metadata=md("viewer"), timeout=120)
                try:
                    next(it)
                    stalled.append(it)
                except grpc.RpcError as e:
                    refused.append((e.code(), e.details()))
            return stalled, refused
        stalled, refused = stall(channel, 12)
        self.assertEqual(len(stalled), 8)  # an eighth of --max-downloads (64)
        self.assertEqual({r[0] for r in refused}, {grpc.StatusCode.RESOURCE_EXHAUSTED})
        self.assertIn("this connection has 8 streams open", refused[0][1])
        channels = [channel, self.connection(), self.connection()]
        more, refused = stall(channels[1], 8)
        stalled += more
        more, refused = stall(channels[2], 8)
        stalled += more
        self.assertEqual(len(stalled), 16)  # a quarter of --max-downloads (64)
        self.assertEqual({r[0] for r in refused}, {grpc.StatusCode.RESOURCE_EXHAUSTED})
        self.assertIn("viewer has 16 streams open", refused[0][1])
        # Others still download, and a worker still fetches its job's input.
        chained = self.create(pb.EVAL, "TEST.TEST_MODEL", first.name + "/final")
        held = self.take()
        self.assertEqual(held.job, chained.name)
        data = b"".join(c.data for c in self.stub.ReadArtifact(pb.ReadArtifactRequest(
            name=first.name, artifact="final/model.pt"), metadata=md("honest"), timeout=60))
        self.assertEqual(len(data), 6 << 20)
        data = b"".join(c.data for c in self.stub.ReadArtifact(pb.ReadArtifactRequest(
            name=first.name, artifact="final/model.pt"), metadata=md("alice"), timeout=60))
        self.assertEqual(len(data), 6 << 20)
        for it in stalled:
            it.cancel()
        for c in channels:
            c.close()
        self.wstub.Synchronize(finished("gpu-a", held), metadata=md("honest"), timeout=30)

    def test_every_spec_string_counts_toward_the_size_limits(self):
        # A 5 MiB config_path once bounced between RUNNING and QUEUED for
        # ever (too big for the embedded worker's channel) and, past 8 MiB,
        # broke ListJobs for everyone.
        for size in (5 << 20, 5000):
            self.assert_code(lambda: self.stub.CreateJob(pb.CreateJobRequest(spec=pb.JobSpec(
                kind=pb.TRAIN, config_yaml=CONFIG_YAML, config_path="c" * size,
                overrides=dataset_overrides(self.data))), metadata=md("alice"), timeout=30),
                grpc.StatusCode.INVALID_ARGUMENT, "spec.config_path")
        self.stub.ListJobs(pb.ListJobsRequest(), metadata=md("viewer"), timeout=30)

    def test_slow_header_clients_leave_healthz_and_metrics_answering(self):
        # 20 connections sending a header byte every half second once held
        # every /metrics thread (each read within its timeout) and stopped
        # /healthz from answering. Now one client holds at most 4, the rest
        # get a 503, and a request must arrive within 5 s of its first byte.
        import socket
        slow = []
        for _ in range(20):
            s = socket.socket()
            s.bind(("127.0.0.2", 0))
            s.connect(("127.0.0.1", self.metrics_port))
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
            slow.append(s)
        try:
            start = time.time()
            cut = set()
            while time.time() - start < 8:
                for i, s in enumerate(slow):
                    if i in cut:
                        continue
                    try:
                        s.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        cut.add(i)
                # A liveness probe from another address answers within 1 s.
                t0 = time.time()
                probe = socket.create_connection(("127.0.0.1", self.metrics_port), timeout=1,
                                                 source_address=("127.0.0.3", 0))
                probe.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                answer = b""
                while True:
                    chunk = probe.recv(4096)
                    if not chunk:
                        break
                    answer += chunk
                probe.close()
                self.assertTrue(answer.startswith(b"HTTP/1.1 200"), answer)
                self.assertLess(time.time() - t0, 1.0)
                time.sleep(0.5)
            # By now (8 s of dribbling) every slow connection has been cut.
            for i, s in enumerate(slow):
                s.settimeout(0.5)
                try:
                    s.sendall(b"X-Slow: 1\r\n")
                    data = s.recv(4096)
                    if data == b"" or data.startswith(b"HTTP/1.1 503"):
                        cut.add(i)
                except TimeoutError:  # still open: not cut
                    pass
                except OSError:
                    cut.add(i)
            self.assertEqual(len(cut), 20)
        finally:
            for s in slow:
                s.close()

    def test_reflection_is_off_with_tokens(self):
        info = self.channel.stream_stream(
            "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
            request_serializer=lambda b: b, response_deserializer=lambda b: b)
        list_services = b"\x3a\x00"  # ServerReflectionRequest{list_services: ""}
        self.assert_code(lambda: list(info(iter([list_services]), metadata=md("viewer"),
                                           timeout=30)),
                         grpc.StatusCode.UNIMPLEMENTED)


class EmbeddedWorkerTest(Base):
    """segqatd with its embedded worker, under tokens: the seed's recipe
    chains jobs through their artifacts and survives a restart."""
    workers = 1
    lease_timeout = "4"  # reports (and the job's snapshot) every second

    def test_the_seed_recipe_runs_and_resumes_after_a_restart_under_tokens(self):
        float_job = self.create(pb.TRAIN, "SOLVER.NUM_EPOCHS", "2", do_eval=True)
        done = self.wait(float_job.name, (pb.SUCCEEDED, pb.FAILED))
        self.assertEqual(done.state, pb.SUCCEEDED, done.error)
        qat = self.stub.CreateJob(pb.CreateJobRequest(spec=pb.JobSpec(
            kind=pb.QUANT_TRAIN, config_yaml=CONFIG_YAML, log_steps=1,
            not_quant_pattern=["last_conv"],
            overrides=dataset_overrides(self.data) + [
                "TRAIN.PRETRAINED_MODEL_DIR", float_job.name + "/best_model",
                "SOLVER.LR", "0.0001", "SOLVER.NUM_EPOCHS", "60", "TRAIN.SNAPSHOT_EPOCH", "1"])),
            metadata=md("alice"), timeout=30)
        # segqatd is stopped once the QAT job has uploaded a snapshot.
        deadline = time.time() + 600
        while not self.get(qat.name).snapshot:
            self.assertLess(time.time(), deadline, "no snapshot was uploaded")
            self.assertNotIn(self.get(qat.name).state, (pb.FAILED, pb.SUCCEEDED))
            time.sleep(0.2)
        self.assertEqual(self.server.stop(), 0)
        self.channel.close()
        # The snapshot the job stopped on is damaged on the server's disk (a
        # flipped byte): the job resumes from the snapshot before it.
        stopped_on = os.path.join(self.server.data_dir, "artifacts", "jobs", qat.name[5:],
                                  "interrupted")
        biggest = max((os.path.join(r, n) for r, _, fs in os.walk(stopped_on) for n in fs),
                      key=os.path.getsize)
        with open(biggest, "r+b") as f:
            f.seek(100)
            byte = f.read(1)
            f.seek(100)
            f.write(bytes([byte[0] ^ 0xFF]))
        self.server.start()
        type(self).connect()
        done = self.wait(qat.name, (pb.SUCCEEDED, pb.FAILED))
        self.assertEqual(done.state, pb.SUCCEEDED, done.error)
        self.assertGreaterEqual(done.attempt, 2)
        logs = [e.log.text for e in self.stub.WatchJob(pb.WatchJobRequest(name=qat.name),
                                                        metadata=md("viewer"), timeout=60)
                if e.HasField("log")]
        self.assertTrue([l for l in logs if "cannot fetch snapshot interrupted" in l], logs[-30:])
        self.assertTrue([l for l in logs if "fetched snapshot snapshots/" in l], logs[-30:])
        ev = self.stub.CreateJob(pb.CreateJobRequest(spec=pb.JobSpec(
            kind=pb.EVAL, config_yaml=CONFIG_YAML, convert=True,
            overrides=dataset_overrides(self.data) + ["TEST.TEST_MODEL", qat.name + "/final"])),
            metadata=md("alice"), timeout=30)
        done = self.wait(ev.name, (pb.SUCCEEDED, pb.FAILED))
        self.assertEqual(done.state, pb.SUCCEEDED, done.error)
        self.assertIn("int8/model.pt", [a.name for a in done.artifacts])


    def test_a_job_that_kills_segqatd_three_times_ends_failed_and_segqatd_serves(self):
        # A job whose batch the OOM killer answers took segqatd (and its
        # embedded worker) down at attempt 1, 2, 3, ... for ever. The kernel's
        # SIGKILL, three times while the job runs: the restarted segqatd does
        # not run it a fourth time.
        job = self.create(pb.TRAIN, "SOLVER.NUM_EPOCHS", "500")
        for attempt in (1, 2, 3):
            deadline = time.time() + 120
            while True:
                shown = self.get(job.name)
                if shown.state == pb.RUNNING and shown.attempt == attempt:
                    break
                self.assertNotIn(shown.state, (pb.FAILED, pb.SUCCEEDED), shown.error)
                self.assertLess(time.time(), deadline, "attempt %d never ran: %s" % (attempt, shown))
                time.sleep(0.2)
            self.server.kill()
            self.channel.close()
            self.server.start()
            type(self).connect()
        done = self.wait(job.name, (pb.FAILED, pb.SUCCEEDED), timeout=120)
        self.assertEqual(done.state, pb.FAILED)
        self.assertEqual(done.attempt, 3)
        self.assertIn("its worker was lost 3 times", done.error)
        self.assertIn("--max-attempts 3", done.error)
        # segqatd keeps serving: it stays up, and the next job runs to the end.
        time.sleep(2)
        self.assertTrue(self.server.alive())
        self.assertEqual(self.get(job.name).state, pb.FAILED)
        after = self.create(pb.TRAIN, "SOLVER.NUM_EPOCHS", "1")
        finished_ok = self.wait(after.name, (pb.SUCCEEDED, pb.FAILED))
        self.assertEqual(finished_ok.state, pb.SUCCEEDED, finished_ok.error)

    def test_a_checkpoint_whose_config_links_to_a_secret_quotes_none_of_it(self):
        secret = os.path.join(self.work, "secret")
        with open(secret, "w") as f:
            f.write("topsecretkey: hunter2\nroot:$6$saltsalt$hash:19000:0:99999:7:::\n")
        ckpt = os.path.join(self.work, "linked_ckpt")
        os.makedirs(ckpt)
        with open(os.path.join(ckpt, "checkpoint.yaml"), "w") as f:
            f.write("format: segqat-checkpoint-1\nepoch: 1\nstep: 1\nquantized: false\n")
        os.symlink(secret, os.path.join(ckpt, "config.yaml"))
        job = self.create(pb.EVAL, "TEST.TEST_MODEL", ckpt)
        done = self.wait(job.name, (pb.SUCCEEDED, pb.FAILED))
        self.assertEqual(done.state, pb.FAILED)
        self.assertIn("TEST.TEST_MODEL", done.error)
        for leaked in ("topsecretkey", "hunter2", "saltsalt", "19000"):
            self.assertNotIn(leaked, done.error)

    def test_a_batch_that_cannot_fit_is_refused_by_name_and_not_retried(self):
        with open("/proc/meminfo") as f:
            total_gib = int(f.readline().split()[1]) / (1 << 20)
        if total_gib > 90:
            self.skipTest("this machine could hold the batch (%.0f GiB)" % total_gib)
        # The largest crop the schema allows, once: about 97 GiB to train.
        job = self.create(pb.TRAIN, "TRAIN_CROP_SIZE", "(8192, 4096)", "BATCH_SIZE", "1")
        done = self.wait(job.name, (pb.SUCCEEDED, pb.FAILED))
        self.assertEqual(done.state, pb.FAILED)
        self.assertIn("BATCH_SIZE x TRAIN_CROP_SIZE", done.error)
        self.assertIn("GiB", done.error)
        self.assertEqual((done.attempt, done.lost_attempts), (1, 0))
        self.assertTrue(self.server.alive())


class StartupTest(unittest.TestCase):
    def test_help_exits_zero(self):
        for cmd in ([SEGQATD, "--help"], [WORKER, "serve", "--help"]):
            p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=60)
            self.assertEqual(p.returncode, 0, p.stdout)
            self.assertIn("usage:", p.stdout)

    def test_reflection_stays_on_without_tokens(self):
        port = free_port()
        server = Segqatd(SEGQATD, os.path.join(self.work, "open"), port, workers=0).start()
        try:
            channel = grpc.insecure_channel(server.target)
            info = channel.stream_stream(
                "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
                request_serializer=lambda b: b, response_deserializer=lambda b: b)
            answer = b"".join(info(iter([b"\x3a\x00"]), timeout=30))
            self.assertIn(b"segqat.v1.JobService", answer)
            channel.close()
        finally:
            server.stop()

    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="segqat_hostile_start_")

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    def test_a_token_file_others_may_write_is_refused(self):
        path = os.path.join(self.work, "tokens")
        write_tokens(path)
        os.chmod(path, 0o620)
        p = subprocess.run([SEGQATD, "--data-dir", os.path.join(self.work, "d"),
                            "--listen", "127.0.0.1:%d" % free_port(), "--local-workers", "0",
                            "--auth-tokens", path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("writable by others", p.stdout)
        for token, _, _ in TOKENS.values():
            self.assertNotIn(token, p.stdout)


if __name__ == "__main__":
    unittest.main(verbosity=2)
