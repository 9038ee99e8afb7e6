"""A full disk under segqatd: its data folder on a small tmpfs that a filler
file has nearly filled, a remote worker (whose own disk is fine) running a
job whose uploads no longer fit. The job must end FAILED with the reason,
never stay RUNNING; no partial file may be listed or left behind; and after
space comes back and segqatd restarts, the store is consistent and the next
job succeeds. Needs to mount a tmpfs (root, as in CI); says SKIPPED otherwise."""
import os
import shutil
import subprocess
import sys
import tempfile
import time

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segqatd_fixture import (SYNTHETIC_CFG, Segqatd, dataset_overrides, free_port,  # noqa: E402
                             load_stubs)

pb, pb_grpc = load_stubs()
SEGQATD = os.environ["SEGQATD"]
WORKER = os.environ["SEGQAT_WORKER"]
with open(SYNTHETIC_CFG) as f:
    CONFIG_YAML = f.read()


def wait_end(stub, name, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = stub.GetJob(pb.GetJobRequest(name=name), timeout=30)
        if job.state in (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED):
            return job
        time.sleep(0.3)
    raise AssertionError("%s did not end: %s" % (name, job))


def main():
    work = tempfile.mkdtemp(prefix="segqat_disk_")
    mnt = os.path.join(work, "small")
    os.makedirs(mnt)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=128m", "tmpfs", mnt],
                      stderr=subprocess.DEVNULL).returncode != 0:
        print("SKIPPED: cannot mount a tmpfs here (needs root)")
        shutil.rmtree(work, ignore_errors=True)
        return
    worker = server = None
    try:
        data = os.path.join(work, "data")
        subprocess.run([WORKER, "make-dataset", "--out", data, "--train", "8", "--val", "4",
                        "--height", "64", "--width", "128"], check=True,
                       stdout=subprocess.DEVNULL)
        port = free_port()
        server = Segqatd(SEGQATD, os.path.join(mnt, "server"), port, workers=0).start()
        stub = pb_grpc.JobServiceStub(grpc.insecure_channel(server.target))
        log = open(os.path.join(work, "worker.log"), "w")
        worker = subprocess.Popen(
            [WORKER, "serve", "--server", server.target, "--name", "w", "--gpus", "none",
             "--work-dir", os.path.join(work, "w")], stdout=log, stderr=subprocess.STDOUT)

        def spec(*overrides):
            return pb.JobSpec(kind=pb.TRAIN, config_yaml=CONFIG_YAML, log_steps=1,
                              overrides=dataset_overrides(data) + list(overrides))

        # A job that fits, to know an upload's size.
        ok = stub.CreateJob(pb.CreateJobRequest(spec=spec("SOLVER.NUM_EPOCHS", "1")), timeout=30)
        first = wait_end(stub, ok.name)
        assert first.state == pb.SUCCEEDED, first.error
        model = [a.size_bytes for a in first.artifacts if a.name == "final/model.pt"][0]
        # Fill the disk but for half a model (the database still has room to record).
        st = os.statvfs(mnt)
        free = st.f_bavail * st.f_frsize
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * max(0, free - model // 2))
        print("disk: %d bytes free for a %d-byte model" % (model // 2, model))

        job = stub.CreateJob(pb.CreateJobRequest(spec=spec("SOLVER.NUM_EPOCHS", "2")), timeout=30)
        done = wait_end(stub, job.name)
        print("job %s: %s" % (pb.JobState.Name(done.state), done.error))
        assert done.state == pb.FAILED, done
        assert "disk full" in done.error or "RESOURCE_EXHAUSTED" in done.error.upper() \
            or "cannot store" in done.error, done.error
        names = [a.name for a in done.artifacts]
        assert "final/model.pt" not in names, names
        for a in done.artifacts:  # what is listed is whole
            path = os.path.join(mnt, "server", "artifacts", "jobs", job.name[5:], a.name)
            assert os.path.getsize(path) == a.size_bytes, (a.name, a.size_bytes)
        uploads = os.path.join(mnt, "server", "artifacts", "uploads")
        left = os.listdir(uploads) if os.path.isdir(uploads) else []
        assert not left, left

        # A disk that fills up entirely while a job runs: not even the job's
        # events or end can be stored. The worker keeps reporting, and once
        # space comes back the end is recorded (never left RUNNING).
        os.remove(filler)
        full = stub.CreateJob(pb.CreateJobRequest(spec=spec("SOLVER.NUM_EPOCHS", "8")),
                              timeout=30)
        deadline = time.time() + 120
        while stub.GetJob(pb.GetJobRequest(name=full.name), timeout=30).state != pb.RUNNING:
            assert time.time() < deadline
            time.sleep(0.2)
        with open(filler, "wb") as f:
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass
        # The worker trains on (its disk is fine), cannot upload, and reports
        # the job FAILED; segqatd cannot store that (nor the job's last
        # events), so the worker keeps reporting.
        deadline = time.time() + 300
        worker_log = os.path.join(work, "worker.log")
        while "upload of job.log" not in open(worker_log).read():
            assert time.time() < deadline, "the worker never gave up its uploads"
            time.sleep(0.5)
        time.sleep(3)  # a few refused reports
        stuck = stub.GetJob(pb.GetJobRequest(name=full.name), timeout=30)
        assert stuck.state == pb.RUNNING, stuck  # its end is not stored yet
        os.remove(filler)
        ended = wait_end(stub, full.name, timeout=60)
        print("disk full mid-job, then freed: %s: %s" % (pb.JobState.Name(ended.state),
                                                        ended.error))
        assert ended.state == pb.FAILED and "disk full" in ended.error, ended
        events = list(stub.WatchJob(pb.WatchJobRequest(name=full.name), timeout=60))
        assert [e.seq for e in events] == list(range(1, len(events) + 1))

        # segqatd restarts: the store is as it was, and work goes on.
        assert server.stop() == 0
        server = Segqatd(SEGQATD, os.path.join(mnt, "server"), port, workers=0).start()
        channel = grpc.insecure_channel(server.target)
        grpc.channel_ready_future(channel).result(timeout=60)  # the log holds the first start too
        stub = pb_grpc.JobServiceStub(channel)
        again = stub.GetJob(pb.GetJobRequest(name=job.name), timeout=30)
        assert again.state == pb.FAILED and again.error == done.error, again
        events = list(stub.WatchJob(pb.WatchJobRequest(name=job.name), timeout=60))
        assert [e.seq for e in events] == list(range(1, len(events) + 1))
        listed = {j.name for j in stub.ListJobs(pb.ListJobsRequest(), timeout=30).jobs}
        assert {ok.name, job.name} <= listed, listed
        after = stub.CreateJob(pb.CreateJobRequest(spec=spec("SOLVER.NUM_EPOCHS", "1")),
                               timeout=30)
        last = wait_end(stub, after.name)
        assert last.state == pb.SUCCEEDED, last
        server.stop()
        print("OK")
    except BaseException:
        for path in (os.path.join(work, "worker.log"),
                     server.log if server is not None else None):
            if path and os.path.exists(path):
                print("--- %s (end)" % path)
                print("".join(open(path).readlines()[-25:]))
        raise
    finally:
        if worker is not None and worker.poll() is None:
            worker.terminate()
            worker.wait(timeout=60)
        if server is not None and server.alive():
            server.proc.kill()
            server.proc.wait(timeout=60)
        subprocess.run(["umount", "-l", mnt])
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
