"""A bounded loopback load test of segqatd: N clients at once, each submitting
small training jobs, watching them to the end, listing, getting and
downloading their outputs (the API calls a pipeline and a dashboard make),
then going away. Prints p50/p99 per RPC, the errors, and segqatd's RSS and
thread count before the load, at its end, and after the clients have gone (a
leak would show as growth that does not come back).

  /usr/bin/python3 bench/load_bench.py [--clients 16] [--jobs-per-client 2] build/bin

With --queued 10,10000 it measures instead what a long queue costs: for each
depth, segqatd (no workers) is filled with that many queued jobs, then it
times 200 more CreateJob calls and 200 idle reports of a CPU worker (the
queued jobs each need a GPU, so every report walks the whole queue: the
worst case), and samples segqatd's CPU and RSS over 10 idle seconds.
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "service"))
from segqatd_fixture import (SYNTHETIC_CFG, Segqatd, dataset_overrides, free_port,  # noqa: E402
                             load_stubs)

import grpc  # noqa: E402

pb, pb_grpc, wpb, wpb_grpc = load_stubs(with_workers=True)
with open(SYNTHETIC_CFG) as f:
    CONFIG_YAML = f.read()


def proc_status(pid):
    with open("/proc/%d/status" % pid) as f:
        text = f.read()
    rss = int(re.search(r"VmRSS:\s+(\d+)", text).group(1)) / 1024
    threads = int(re.search(r"Threads:\s+(\d+)", text).group(1))
    return rss, threads


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.times = {}
        self.errors = {}

    def call(self, name, fn):
        t0 = time.perf_counter()
        try:
            return fn()
        except grpc.RpcError as e:
            with self.lock:
                key = "%s %s" % (name, e.code().name)
                self.errors[key] = self.errors.get(key, 0) + 1
            return None
        finally:
            with self.lock:
                self.times.setdefault(name, []).append(time.perf_counter() - t0)


def client(target, data, jobs, rec, epochs):
    channel = grpc.insecure_channel(target)
    stub = pb_grpc.JobServiceStub(channel)
    for _ in range(jobs):
        spec = pb.JobSpec(kind=pb.TRAIN, config_yaml=CONFIG_YAML, log_steps=1,
                          overrides=dataset_overrides(data) + ["SOLVER.NUM_EPOCHS", str(epochs)])
        job = rec.call("CreateJob", lambda: stub.CreateJob(pb.CreateJobRequest(spec=spec),
                                                           timeout=60))
        if job is None:
            continue
        # A dashboard's view while it runs.
        rec.call("ListJobs", lambda: stub.ListJobs(pb.ListJobsRequest(page_size=50), timeout=60))
        rec.call("WatchJob (to the end)",
                 lambda: list(stub.WatchJob(pb.WatchJobRequest(name=job.name), timeout=900)))
        done = rec.call("GetJob", lambda: stub.GetJob(pb.GetJobRequest(name=job.name), timeout=60))
        if done is None or done.state != pb.SUCCEEDED:
            with rec.lock:
                rec.errors["job not SUCCEEDED"] = rec.errors.get("job not SUCCEEDED", 0) + 1
            continue
        rec.call("ListArtifacts", lambda: stub.ListArtifacts(
            pb.ListArtifactsRequest(name=job.name), timeout=60))
        rec.call("ReadArtifact (final/model.pt)", lambda: b"".join(c.data for c in stub.ReadArtifact(
            pb.ReadArtifactRequest(name=job.name, artifact="final/model.pt"), timeout=300)))
        rec.call("ListJobs", lambda: stub.ListJobs(pb.ListJobsRequest(page_size=50), timeout=60))
    channel.close()


def percentile(values, q):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def queue_depths(bin_dir, depths):
    print("| queued jobs | CreateJob p50 ms | p99 ms | idle report p50 ms | p99 ms "
          "| idle CPU % | RSS MB |")
    print("|---|---|---|---|---|---|---|")
    for depth in depths:
        work = tempfile.mkdtemp(prefix="segqat_queue_")
        try:
            server = Segqatd(os.path.join(bin_dir, "segqatd"), os.path.join(work, "server"),
                             free_port(), workers=0)
            server.extra_args = ["--max-queued-per-token", "1000000"]
            server.start()
            channel = grpc.insecure_channel(server.target)
            stub = pb_grpc.JobServiceStub(channel)
            wstub = wpb_grpc.WorkerServiceStub(channel)
            spec = pb.JobSpec(kind=pb.TRAIN, config_yaml=CONFIG_YAML, gpus=1,
                              overrides=dataset_overrides("/data"))
            for _ in range(depth):
                stub.CreateJob(pb.CreateJobRequest(spec=spec), timeout=60)
            create, report = [], []
            for _ in range(200):
                t0 = time.perf_counter()
                stub.CreateJob(pb.CreateJobRequest(spec=spec), timeout=60)
                create.append(time.perf_counter() - t0)
            req = wpb.SynchronizeRequest(protocol=wpb.WORKER_PROTOCOL_V1, worker_id="cpu-1",
                                         devices=[pb.Device(kind="cpu")],
                                         report=wpb.WorkerReport(idle=wpb.WorkerReport.Idle()))
            for _ in range(200):
                t0 = time.perf_counter()
                wstub.Synchronize(req, timeout=60)
                report.append(time.perf_counter() - t0)
            c0 = cpu_seconds(server.proc.pid)
            time.sleep(10)
            idle_cpu = 100 * (cpu_seconds(server.proc.pid) - c0) / 10
            rss, _ = proc_status(server.proc.pid)
            channel.close()
            server.stop()
            print("| %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.0f |" % (
                depth, 1000 * percentile(create, 0.5), 1000 * percentile(create, 0.99),
                1000 * percentile(report, 0.5), 1000 * percentile(report, 0.99), idle_cpu, rss))
            sys.stdout.flush()
        finally:
            shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--jobs-per-client", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1, help="segqatd --local-workers")
    ap.add_argument("--queued", help="queue depths to measure, e.g. 10,10000")
    args = ap.parse_args()
    if args.queued:
        queue_depths(args.bin_dir, [int(d) for d in args.queued.split(",")])
        return
    work = tempfile.mkdtemp(prefix="segqat_load_")
    try:
        data = os.path.join(work, "data")
        subprocess.run([os.path.join(args.bin_dir, "segqat-worker"), "make-dataset", "--out", data,
                        "--train", "8", "--val", "4", "--height", "64", "--width", "128"],
                       check=True, stdout=subprocess.DEVNULL)
        server = Segqatd(os.path.join(args.bin_dir, "segqatd"), os.path.join(work, "server"),
                         free_port(), workers=args.workers).start()
        time.sleep(2)
        before = proc_status(server.proc.pid)
        rec = Recorder()
        t0 = time.time()
        threads = [threading.Thread(target=client, args=(server.target, data,
                                                         args.jobs_per_client, rec, args.epochs))
                   for _ in range(args.clients)]
        for t in threads:
            t.start()
        peak = before
        while any(t.is_alive() for t in threads):
            now = proc_status(server.proc.pid)
            peak = (max(peak[0], now[0]), max(peak[1], now[1]))
            time.sleep(0.5)
        for t in threads:
            t.join()
        wall = time.time() - t0
        at_end = proc_status(server.proc.pid)
        time.sleep(10)  # the clients are gone; let the server settle
        after = proc_status(server.proc.pid)
        # A second, identical round: memory that a first round warmed up (caches,
        # arenas) is reused; a leak grows again.
        rec2 = Recorder()
        threads = [threading.Thread(target=client, args=(server.target, data,
                                                         args.jobs_per_client, rec2, args.epochs))
                   for _ in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        time.sleep(10)
        after2 = proc_status(server.proc.pid)
        server.stop()

        n_jobs = args.clients * args.jobs_per_client
        print("segqatd --local-workers %d: %d clients x %d jobs (%d epoch%s each), %.0f s"
              % (args.workers, args.clients, args.jobs_per_client, args.epochs,
                 "" if args.epochs == 1 else "s", wall))
        print()
        print("| RPC | calls | p50 ms | p99 ms |")
        print("|---|---|---|---|")
        for name in sorted(rec.times):
            v = rec.times[name]
            print("| %s | %d | %.1f | %.1f |" % (name, len(v), 1000 * percentile(v, 0.5),
                                                 1000 * percentile(v, 0.99)))
        print()
        errors = dict(rec.errors)
        for k, v in rec2.errors.items():
            errors[k] = errors.get(k, 0) + v
        print("errors: %s" % (", ".join("%s: %d" % kv for kv in sorted(errors.items()))
                              if errors else "none"))
        print()
        print("| segqatd | RSS MB | threads |")
        print("|---|---|---|")
        for label, (rss, th) in (("before", before), ("peak", peak), ("at the end", at_end),
                                 ("10 s after the clients left", after),
                                 ("after a second round of %d jobs" % n_jobs, after2)):
            print("| %s | %.0f | %d |" % (label, rss, th))
        growth = after2[0] - after[0]
        print()
        print("second round grew RSS by %.1f MB and threads by %d" % (growth, after2[1] - after[1]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
