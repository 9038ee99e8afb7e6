"""segqatd end to end with real clients: Python gRPC (as a pipeline) and the
segqat CLI, against a real server on a loopback port with a real SQLite file
and artifact directory. One suite over one server, hence its length."""
import hashlib
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unittest

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segqatd_fixture import (SYNTHETIC_CFG, GrpcAssertions, Segqatd,  # noqa: E402
                             dataset_overrides, free_port, load_stubs,
                             work_dir_with_dataset)

pb, pb_grpc = load_stubs()
SEGQATD = os.environ["SEGQATD"]
SEGQAT = os.environ["SEGQAT"]
WORKER = os.environ["SEGQAT_WORKER"]
with open(SYNTHETIC_CFG) as f:
    CONFIG_YAML = f.read()


def spec(kind, data, *overrides, **flags):
    return pb.JobSpec(kind=kind, config_yaml=CONFIG_YAML,
                      overrides=dataset_overrides(data) + list(overrides), log_steps=1, **flags)


class ServiceTest(GrpcAssertions, unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work, cls.data = work_dir_with_dataset("segqat_service_", WORKER)
        cls.server = Segqatd(SEGQATD, os.path.join(cls.work, "server"), free_port()).start()
        cls.channel = grpc.insecure_channel(cls.server.target)
        cls.stub = pb_grpc.JobServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        if cls.server.alive():
            cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def create(self, job_spec, **kw):
        return self.stub.CreateJob(pb.CreateJobRequest(spec=job_spec, **kw), timeout=30)

    def watch(self, name, after=0):
        events = []
        for e in self.stub.WatchJob(pb.WatchJobRequest(name=name, after_seq=after), timeout=600):
            events.append(e)
        return events

    def read_all(self, name, artifact, offset=0, limit=0):
        chunks = list(self.stub.ReadArtifact(pb.ReadArtifactRequest(
            name=name, artifact=artifact, read_offset=offset, read_limit=limit), timeout=60))
        for c in chunks:
            self.assertLessEqual(len(c.data), 1 << 20)
        return b"".join(c.data for c in chunks)

    def test_1_job_runs_streams_and_downloads(self):
        job = self.create(spec(pb.TRAIN, self.data, "SOLVER.NUM_EPOCHS", "2",
                               "TRAIN.SNAPSHOT_EPOCH", "1", do_eval=True),
                          request_id="pipeline-run-1", labels={"team": "seg"})
        again = self.create(spec(pb.TRAIN, self.data, "SOLVER.NUM_EPOCHS", "2"),
                            request_id="pipeline-run-1")
        self.assertEqual(job.name, again.name)
        listed = self.stub.ListJobs(pb.ListJobsRequest(labels={"team": "seg"}), timeout=30)
        self.assertEqual([j.name for j in listed.jobs], [job.name])

        events = self.watch(job.name)
        self.assertEqual([e.seq for e in events], list(range(1, len(events) + 1)))
        states = [e.state.state for e in events if e.HasField("state")]
        self.assertEqual(states, [pb.QUEUED, pb.RUNNING, pb.SUCCEEDED])
        steps = [e.step for e in events if e.HasField("step")]
        self.assertEqual([s.step for s in steps], list(range(1, 9)))  # 4 steps x 2 epochs
        evals = [e.evaluation for e in events if e.HasField("evaluation")]
        self.assertEqual(len(evals), 2)
        self.assertEqual(len(evals[0].class_iou), 19)
        # A finished job replays: the same events again, and after_seq skips.
        self.assertEqual(self.watch(job.name), events)
        self.assertEqual([e.seq for e in self.watch(job.name, after=5)],
                         list(range(6, len(events) + 1)))

        done = self.stub.GetJob(pb.GetJobRequest(name=job.name), timeout=30)
        self.assertEqual(done.state, pb.SUCCEEDED)
        self.assertEqual(done.attempt, 1)
        arts = {a.name: a for a in self.stub.ListArtifacts(
            pb.ListArtifactsRequest(name=job.name), timeout=30).artifacts}
        self.assertIn("final/model.pt", arts)
        self.assertIn("best_model/model.pt", arts)
        model = arts["final/model.pt"]
        data = self.read_all(job.name, "final/model.pt")
        self.assertEqual(len(data), model.size_bytes)
        self.assertEqual(hashlib.sha256(data).hexdigest(), model.sha256)
        # A resumed download: the first part, then the rest from its offset.
        head = self.read_all(job.name, "final/model.pt", limit=1500000)
        self.assertEqual(len(head), 1500000)
        self.assertEqual(head + self.read_all(job.name, "final/model.pt", offset=len(head)), data)
        self.assert_code(lambda: self.read_all(job.name, "final/model.pt",
                                               offset=model.size_bytes + 1),
                         grpc.StatusCode.OUT_OF_RANGE)

        # The CLI downloads byte-identical files and resumes a partial one.
        out = os.path.join(self.work, "download")
        cli = [SEGQAT, "--server", self.server.target]
        subprocess.run(cli + ["download", job.name, "final", "-o", out], check=True,
                       stdout=subprocess.DEVNULL)
        path = os.path.join(out, "final", "model.pt")
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)
        with open(path, "r+b") as f:
            f.truncate(len(data) // 3)
        subprocess.run(cli + ["download", job.name, "final/model.pt", "-o", out], check=True,
                       stdout=subprocess.DEVNULL)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)
        # A file that has the right size but wrong bytes is refused by the
        # digest check and removed; the next download starts over.
        with open(path, "r+b") as f:
            f.seek(100)
            f.write(b"\0" * 16 if data[100:116] != b"\0" * 16 else b"\1" * 16)
        bad = subprocess.run(cli + ["download", job.name, "final/model.pt", "-o", out],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.assertEqual(bad.returncode, 1)
        self.assertIn("sha256 mismatch", bad.stderr)
        self.assertFalse(os.path.exists(path))
        subprocess.run(cli + ["download", job.name, "final/model.pt", "-o", out], check=True,
                       stdout=subprocess.DEVNULL)
        with open(path, "rb") as f:
            self.assertEqual(f.read(), data)
        # The job's log is kept as an artifact, and `segqat logs` replays it.
        self.assertIn("job.log", arts)
        log = self.read_all(job.name, "job.log").decode()
        self.assertIn("[EVAL] epoch=2", log)
        self.assertIn("epoch=2 step=8", log)
        logs = subprocess.run(cli + ["logs", "-f", job.name], check=True, stdout=subprocess.PIPE,
                              text=True).stdout
        self.assertIn("epoch=1 step=1 ", logs)
        self.assertIn("[EVAL] epoch=2", logs)
        self.assertIn("state SUCCEEDED", logs)
        # Without -f: what is stored so far, then exit (here: everything).
        stored = subprocess.run(cli + ["logs", job.name], check=True, stdout=subprocess.PIPE,
                                text=True, timeout=60).stdout
        self.assertEqual(stored, logs)
        self.assertEqual(self.stub.GetJob(pb.GetJobRequest(name=job.name), timeout=30)
                         .last_event_seq, events[-1].seq)
        # --json is the Job in protobuf's JSON mapping.
        js = subprocess.run(cli + ["get", job.name, "--json"], check=True,
                            stdout=subprocess.PIPE, text=True).stdout
        import json
        parsed = json.loads(js)
        self.assertEqual(parsed["state"], "SUCCEEDED")
        self.assertIn({"name": "final/model.pt", "sizeBytes": str(model.size_bytes),
                       "sha256": model.sha256}, parsed["artifacts"])

        # QAT from it, referring to its artifact; then eval --convert.
        qat = self.create(spec(pb.QUANT_TRAIN, self.data, "TRAIN.PRETRAINED_MODEL_DIR",
                               job.name + "/best_model", "SOLVER.LR", "0.0001",
                               "SOLVER.NUM_EPOCHS", "1", not_quant_pattern=["last_conv"]))
        self.assertEqual(self.watch(qat.name)[-1].state.state, pb.SUCCEEDED)
        ev = self.create(spec(pb.EVAL, self.data, "TEST.TEST_MODEL", qat.name + "/final",
                              convert=True))
        evs = self.watch(ev.name)
        self.assertEqual(evs[-1].state.state, pb.SUCCEEDED)
        names = [a.name for a in self.stub.GetJob(pb.GetJobRequest(name=ev.name), timeout=30)
                 .artifacts]
        self.assertIn("int8/model.pt", names)
        self.assertIn("metrics.json", names)
        self.assertEqual(len([e for e in evs if e.HasField("evaluation")]), 1)

    def test_2_bad_input_is_refused_and_server_keeps_serving(self):
        code = grpc.StatusCode
        self.assert_code(lambda: self.create(spec(pb.TRAIN, self.data, "TRAIN.FOO", "1")),
                         code.INVALID_ARGUMENT, "TRAIN.FOO")
        # Dataset paths are read by the worker, on its own disk: segqatd accepts
        # the job, and the worker fails it with a reason naming the key.
        missing = self.create(spec(pb.TRAIN, self.data, "DATASET.TRAIN_FILE_LIST",
                                   "/nonexistent/train.list"))
        self.assertEqual(self.watch(missing.name)[-1].state.state, pb.FAILED)
        failed = self.stub.GetJob(pb.GetJobRequest(name=missing.name), timeout=30)
        self.assertIn("DATASET.TRAIN_FILE_LIST", failed.error)
        self.assert_code(lambda: self.create(spec(pb.TRAIN, self.data, "TRAIN.PRETRAINED_MODEL_DIR",
                                                  "jobs/nosuchjob/final")),
                         code.INVALID_ARGUMENT, "TRAIN.PRETRAINED_MODEL_DIR", "no job nosuchjob")
        self.assert_code(lambda: self.create(pb.JobSpec(kind=99, config_yaml=CONFIG_YAML)),
                         code.INVALID_ARGUMENT, "spec.kind")
        self.assert_code(lambda: self.create(spec(pb.TRAIN, self.data,
                                                  "TRAIN.PRETRAINED_MODEL_DIR",
                                                  "jobs/x/../../../etc")),
                         code.INVALID_ARGUMENT, "escapes")
        self.assert_code(lambda: self.create(pb.JobSpec(config_yaml=CONFIG_YAML)),
                         code.INVALID_ARGUMENT, "kind")
        self.assert_code(lambda: self.stub.GetJob(pb.GetJobRequest(name="jobs/nope"), timeout=30),
                         code.NOT_FOUND)
        self.assert_code(lambda: self.stub.GetJob(pb.GetJobRequest(name="nope"), timeout=30),
                         code.INVALID_ARGUMENT)
        # An error never echoes unbounded input: a 100 kB name comes back cut short.
        with self.assertRaises(grpc.RpcError) as cm:
            self.stub.GetJob(pb.GetJobRequest(name="jobs/" + "x" * 100000), timeout=30)
        self.assertEqual(cm.exception.code(), code.INVALID_ARGUMENT)
        self.assertLess(len(cm.exception.details()), 400, cm.exception.details()[:100])
        self.assert_code(lambda: self.stub.ListJobs(pb.ListJobsRequest(page_token="garbage"),
                                                    timeout=30),
                         code.INVALID_ARGUMENT, "page_token")
        self.assert_code(lambda: self.stub.ListJobs(pb.ListJobsRequest(page_size=-1), timeout=30),
                         code.INVALID_ARGUMENT, "page_size")
        self.assert_code(lambda: self.stub.ListJobs(pb.ListJobsRequest(state=77), timeout=30),
                         code.INVALID_ARGUMENT, "state")
        # Sizes: a config over the 1 MiB default, too many labels or too long a label.
        self.assert_code(lambda: self.create(spec(pb.TRAIN, self.data, "TRAIN.SEED", "1" * (1 << 20))),
                         code.INVALID_ARGUMENT, "spec.overrides", "1048576")
        self.assert_code(lambda: self.create(spec(pb.TRAIN, self.data),
                                             labels={"k%d" % i: "v" for i in range(40)}),
                         code.INVALID_ARGUMENT, "labels")
        self.assert_code(lambda: self.create(spec(pb.TRAIN, self.data), labels={"k": "v" * 300}),
                         code.INVALID_ARGUMENT, "labels")
        # Jobs with large configs (and a long comment is valid YAML) never break
        # ListJobs for everyone: pages end by bytes before the message limit.
        big_yaml = CONFIG_YAML + "\n#" + "x" * (900 << 10) + "\n"
        big = [self.create(pb.JobSpec(kind=pb.TRAIN, config_yaml=big_yaml, log_steps=1,
                                      overrides=dataset_overrides(self.data) +
                                      ["SOLVER.NUM_EPOCHS", "500"])) for _ in range(12)]
        for job in big:
            self.stub.CancelJob(pb.CancelJobRequest(name=job.name), timeout=30)
        listed, token, pages = set(), "", 0
        while pages < 1000:  # each page moves on: a loop here is a bug
            page = self.stub.ListJobs(pb.ListJobsRequest(page_size=500, page_token=token),
                                      timeout=30)
            listed.update(j.name for j in page.jobs)
            pages += 1
            token = page.next_page_token
            if not token:
                break
        self.assertTrue({j.name for j in big} <= listed)
        self.assertGreater(pages, 1)
        some = self.stub.ListJobs(pb.ListJobsRequest(page_size=1), timeout=30).jobs[0].name
        for bad in ("../jobs.db", "/etc/passwd", "final/../../x", ""):
            self.assert_code(lambda: self.read_all(some, bad), code.INVALID_ARGUMENT)
        self.assert_code(lambda: self.read_all(some, "no/such/file"), code.NOT_FOUND)
        # A client that disconnects mid-stream.
        stream = self.stub.WatchJob(pb.WatchJobRequest(name=some), timeout=60)
        next(stream)
        stream.cancel()
        self.assertTrue(self.server.alive())
        self.assertEqual(self.stub.GetJob(pb.GetJobRequest(name=some), timeout=30).name, some)
        # Bytes that are no protobuf message: a bad request naming the method,
        # not UNIMPLEMENTED (gRPC's own answer), for unary and streaming calls.
        for method in ("/segqat.v1.JobService/GetJob", "/segqat.v1.JobService/CreateJob"):
            self.assert_code(lambda: self.channel.unary_unary(method)(b"\xff\xff\xff\xff",
                                                                      timeout=30),
                             code.INVALID_ARGUMENT, method, "could not be parsed")
        self.assert_code(lambda: list(self.channel.unary_stream(
                             "/segqat.v1.JobService/ReadArtifact")(b"\x0a\xff", timeout=30)),
                         code.INVALID_ARGUMENT, "ReadArtifact")
        # Health checking: grpc.health.v1.Health/Check for the whole server (raw
        # protobuf: an empty request; status SERVING = 1).
        check = self.channel.unary_unary("/grpc.health.v1.Health/Check")
        self.assertEqual(check(b"", timeout=30), b"\x08\x01")

    def test_2b_a_failing_job_fails_with_its_reason(self):
        # The config is valid at CreateJob; an image turns out corrupt in training.
        broken = os.path.join(self.work, "broken")
        shutil.copytree(self.data, broken)
        with open(os.path.join(broken, "train_list.txt")) as f:
            first = os.path.join(broken, f.readline().split()[0])
        with open(first, "wb") as f:
            f.write(b"not a png")
        overrides = dataset_overrides(broken)
        run = subprocess.run([SEGQAT, "--server", self.server.target, "train", "--cfg",
                              SYNTHETIC_CFG, "--wait"] + overrides, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, timeout=300)
        self.assertEqual(run.returncode, 1, run.stderr)
        self.assertIn("FAILED", run.stdout + run.stderr)
        # Named by the list's line: the path is the list's bytes, never quoted.
        self.assertIn(os.path.join(broken, "train_list.txt") + " line 1 (its image)",
                      run.stdout + run.stderr)
        self.assertNotIn(first, run.stdout + run.stderr)
        self.assertTrue(self.server.alive())

    def test_2bb_an_error_inside_libtorch_fails_the_job_and_nothing_else(self):
        # A valid config that LibTorch refuses at run time: one image per step
        # leaves ASPP's image pooling a single value per channel for BatchNorm.
        job = self.create(spec(pb.TRAIN, self.data, "BATCH_SIZE", "1",
                               "MODEL.DEEPLAB.ENCODER_WITH_ASPP", "True"))
        self.assertEqual(self.watch(job.name)[-1].state.state, pb.FAILED)
        failed = self.stub.GetJob(pb.GetJobRequest(name=job.name), timeout=30)
        self.assertIn("Expected more than 1 value per channel", failed.error)
        self.assertTrue(self.server.alive())
        after = self.create(spec(pb.TRAIN, self.data, "SOLVER.NUM_EPOCHS", "1"))
        self.assertEqual(self.watch(after.name)[-1].state.state, pb.SUCCEEDED)

    def test_2c_a_damaged_artifact_is_not_served(self):
        job = self.create(spec(pb.TRAIN, self.data, "SOLVER.NUM_EPOCHS", "1"))
        self.assertEqual(self.watch(job.name)[-1].state.state, pb.SUCCEEDED)
        path = os.path.join(self.server.data_dir, "artifacts", "jobs", job.name[5:], "job.log")
        with open(path, "rb") as f:
            good = f.read()
        self.assertEqual(self.read_all(job.name, "job.log"), good)
        for damaged in (bytes([good[0] ^ 1]) + good[1:], good[:-1]):  # flipped, truncated
            with open(path, "wb") as f:
                f.write(damaged)
            self.assert_code(lambda: self.read_all(job.name, "job.log"),
                             grpc.StatusCode.DATA_LOSS, "job.log")
        with open(path, "wb") as f:
            f.write(good)
        self.assertEqual(self.read_all(job.name, "job.log"), good)

    def start_long_job(self):
        """A job that would train for a long time, once it has taken a step;
        returns it and its event stream, positioned after that step."""
        job = self.create(spec(pb.TRAIN, self.data, "SOLVER.NUM_EPOCHS", "500",
                               "TRAIN.SNAPSHOT_EPOCH", "1000"))
        stream = self.stub.WatchJob(pb.WatchJobRequest(name=job.name), timeout=600)
        for e in stream:
            if e.HasField("step"):
                break
        return job, stream

    def test_3_cancel_stops_a_running_job_within_seconds(self):
        job, stream = self.start_long_job()
        t0 = time.time()
        self.stub.CancelJob(pb.CancelJobRequest(name=job.name), timeout=30)
        rest = list(stream)
        self.assertLess(time.time() - t0, 15)
        self.assertEqual(rest[-1].state.state, pb.CANCELLED)
        done = self.stub.GetJob(pb.GetJobRequest(name=job.name), timeout=30)
        self.assertEqual(done.state, pb.CANCELLED)
        self.assertIn("interrupted/model.pt", [a.name for a in done.artifacts])
        self.assert_code(lambda: self.stub.CancelJob(pb.CancelJobRequest(name=job.name),
                                                     timeout=30),
                         grpc.StatusCode.FAILED_PRECONDITION)

    def test_3a_stalled_streams_are_capped_and_memory_stays_bounded(self):
        def rss_mb():
            with open("/proc/%d/status" % self.server.proc.pid) as f:
                return int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1)) / 1024
        done = self.create(spec(pb.TRAIN, self.data, "SOLVER.NUM_EPOCHS", "1"))
        self.assertEqual(self.watch(done.name)[-1].state.state, pb.SUCCEEDED)
        size = [a.size_bytes for a in self.stub.GetJob(pb.GetJobRequest(name=done.name),
                                                       timeout=30).artifacts
                if a.name == "final/model.pt"][0]
        self.assertGreater(size, 4 << 20)  # several chunks: a stalled reader holds one
        before = rss_mb()
        # 100 downloads that read one chunk and stall, 8 per connection (the
        # most one connection may hold): 64 hold a slot, the rest are
        # refused. (No BDP probing: the flow-control window stays small, so a
        # client that stops reading stops the server's writes; a subchannel
        # pool per channel: a TCP connection each.)
        channels = [grpc.insecure_channel(self.server.target,
                                          options=[("grpc.http2.bdp_probe", 0),
                                                   ("grpc.use_local_subchannel_pool", 1)])
                    for _ in range(13)]
        channel = channels[0]
        stub = pb_grpc.JobServiceStub(channel)
        streams, refused = [], 0
        for i in range(100):
            it = pb_grpc.JobServiceStub(channels[i // 8]).ReadArtifact(
                pb.ReadArtifactRequest(name=done.name, artifact="final/model.pt"), timeout=120)
            try:
                next(it)  # the first chunk; then this client stalls
                streams.append(it)
            except grpc.RpcError as e:
                self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, e.details())
                self.assertIn("ReadArtifact", e.details())
                refused += 1
        self.assertEqual(len(streams), 64)
        self.assertEqual(refused, 36)
        grown = rss_mb() - before
        print("segqatd RSS grew %.0f MB for 64 stalled downloads" % grown)
        self.assertLess(grown, 400)
        # WatchJob: 32 open streams per connection.
        job, first = self.start_long_job()
        watchers = []
        for i in range(33):
            it = stub.WatchJob(pb.WatchJobRequest(name=job.name), timeout=120)
            try:
                next(it)
                watchers.append(it)
            except grpc.RpcError as e:
                self.assertEqual(i, 32)
                self.assertEqual(e.code(), grpc.StatusCode.RESOURCE_EXHAUSTED, e.details())
                self.assertIn("connection", e.details())
        self.assertEqual(len(watchers), 32)
        # Another connection still watches; once the stalled streams go, downloads work.
        self.assertTrue(next(self.stub.WatchJob(pb.WatchJobRequest(name=job.name), timeout=60)))
        for it in streams + watchers:
            it.cancel()
        for c in channels:
            c.close()
        self.stub.CancelJob(pb.CancelJobRequest(name=job.name), timeout=30)
        list(first)
        deadline = time.time() + 30
        while True:
            try:
                self.assertEqual(len(self.read_all(done.name, "final/model.pt")), size)
                break
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED or time.time() > deadline:
                    raise
                time.sleep(0.2)

    def test_3b_queue_runs_by_priority_then_age(self):
        blocker, _ = self.start_long_job()
        short = ["SOLVER.NUM_EPOCHS", "1"]
        old_low = self.create(spec(pb.TRAIN, self.data, *short), priority=0)
        high = self.create(spec(pb.TRAIN, self.data, *short), priority=5)
        new_low = self.create(spec(pb.TRAIN, self.data, *short), priority=0)
        workers = self.stub.ListWorkers(pb.ListWorkersRequest(), timeout=30).workers
        self.assertEqual([(w.state, w.job) for w in workers], [("busy", blocker.name)])
        self.stub.CancelJob(pb.CancelJobRequest(name=blocker.name), timeout=30)
        for job in (old_low, high, new_low):
            self.assertEqual(self.watch(job.name)[-1].state.state, pb.SUCCEEDED)
        starts = {j.name: self.stub.GetJob(pb.GetJobRequest(name=j.name), timeout=30).start_time
                  for j in (old_low, high, new_low)}
        order = sorted(starts, key=lambda n: (starts[n].seconds, starts[n].nanos))
        self.assertEqual(order, [high.name, old_low.name, new_low.name])

    def test_4_restart_resumes_the_job_and_watchers_lose_nothing(self):
        job = self.create(spec(pb.TRAIN, self.data, "SOLVER.NUM_EPOCHS", "12",
                               "TRAIN.SNAPSHOT_EPOCH", "4"))
        seen = []
        errors = []

        def watcher():
            after = 0
            deadline = time.time() + 600
            while time.time() < deadline:
                try:
                    ch = grpc.insecure_channel(self.server.target)
                    stub = pb_grpc.JobServiceStub(ch)
                    for e in stub.WatchJob(pb.WatchJobRequest(name=job.name, after_seq=after),
                                           timeout=600):
                        seen.append(e)
                        after = e.seq
                    return
                except grpc.RpcError as err:
                    if err.code() != grpc.StatusCode.UNAVAILABLE:
                        errors.append(err)
                        return
                    time.sleep(0.3)
        t = threading.Thread(target=watcher)
        t.start()
        deadline = time.time() + 300
        while not any(e.HasField("step") and e.step.step >= 6 for e in seen):
            self.assertLess(time.time(), deadline, "the watcher never saw step 6")
            self.assertFalse(errors, errors)
            time.sleep(0.05)
        rc = self.server.stop()
        self.assertEqual(rc, 0)
        self.server.start()
        t.join(timeout=600)
        self.assertFalse(errors, errors)
        self.assertEqual([e.seq for e in seen], list(range(1, len(seen) + 1)))
        states = [e.state.state for e in seen if e.HasField("state")]
        self.assertEqual(states, [pb.QUEUED, pb.RUNNING, pb.QUEUED, pb.RUNNING, pb.SUCCEEDED])
        steps = [e.step.step for e in seen if e.HasField("step")]
        # Resumed, not restarted: every step once, in order (12 epochs x 4).
        self.assertEqual(steps, list(range(1, 49)))
        done = self.stub.GetJob(pb.GetJobRequest(name=job.name), timeout=30)
        self.assertEqual(done.state, pb.SUCCEEDED)
        self.assertEqual(done.attempt, 2)


if __name__ == "__main__":
    unittest.main(verbosity=2)
