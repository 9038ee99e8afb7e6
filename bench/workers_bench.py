"""Throughput of the worker pool and of data-parallel training, side by side in
one run (the machine is shared and noisy: compare the ratios, not the times).

  1. jobs per hour: a queue of identical small training jobs on segqatd
     --local-workers 0 with 1, then 2 `segqat-worker serve` processes;
  2. data-parallel step time: the same global batch on 1 rank and on 2 ranks
     (segqat-worker train --world-size 2) over loopback Gloo.
On one machine the processes split its cores (--threads, at least 2 each), as
separate machines would not have to, and several processes run with
OMP_WAIT_POLICY=PASSIVE: OpenMP threads that spin while they wait (the
default) starve the other processes' threads (measured here: 2 ranks on 2
cores 1.1 steps/s spinning, 3.7 passive; one process alone is 25% faster
spinning, so the single-process runs keep the default).

  /usr/bin/python3 bench/workers_bench.py [--jobs 6] [--epochs 4] build/bin
"""
import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "service"))
from segqatd_fixture import (SYNTHETIC_CFG, Segqatd, dataset_overrides, free_port,  # noqa: E402
                             load_stubs)

import grpc  # noqa: E402

pb, pb_grpc = load_stubs()


def jobs_per_hour(bin_dir, work, data, n_workers, n_jobs, epochs):
    server = Segqatd(os.path.join(bin_dir, "segqatd"), os.path.join(work, "s%d" % n_workers),
                     free_port(), workers=0).start()
    # The workers share the machine's cores, with at least 2 threads each:
    # LibTorch 1.13 runs 1x1 convolutions 4x slower on 1 thread (no oneDNN).
    threads = str(max(2, os.cpu_count() // n_workers))
    env = dict(os.environ, OMP_WAIT_POLICY="PASSIVE") if n_workers > 1 else None
    procs = [subprocess.Popen([os.path.join(bin_dir, "segqat-worker"), "serve", "--server",
                               server.target, "--name", "bench%d" % i, "--gpus", "none",
                               "--threads", threads,
                               "--work-dir", os.path.join(work, "w%d-%d" % (n_workers, i))],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
             for i in range(n_workers)]
    try:
        stub = pb_grpc.JobServiceStub(grpc.insecure_channel(server.target))
        with open(SYNTHETIC_CFG) as f:
            yaml = f.read()
        spec = pb.JobSpec(kind=pb.TRAIN, config_yaml=yaml, log_steps=10,
                          overrides=dataset_overrides(data) + ["SOLVER.NUM_EPOCHS", str(epochs)])
        t0 = time.time()
        names = [stub.CreateJob(pb.CreateJobRequest(spec=spec), timeout=30).name
                 for _ in range(n_jobs)]
        for n in names:
            for _ in stub.WatchJob(pb.WatchJobRequest(name=n), timeout=3600):
                pass
        elapsed = time.time() - t0
        ok = sum(stub.GetJob(pb.GetJobRequest(name=n), timeout=30).state == pb.SUCCEEDED
                 for n in names)
        assert ok == n_jobs, "only %d of %d jobs succeeded" % (ok, n_jobs)
        return n_jobs * 3600 / elapsed
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=120)
        server.stop()


def step_seconds(bin_dir, work, data, ranks, epochs):
    flags = ["train", "--cfg", SYNTHETIC_CFG, "--log_steps", "1"]
    overrides = [
        "DATASET.DATA_DIR", data, "DATASET.TRAIN_FILE_LIST", os.path.join(data, "train_list.txt"),
        "TRAIN_CROP_SIZE", "(256, 128)", "BATCH_SIZE", "8", "SOLVER.NUM_EPOCHS", str(epochs)]
    port = free_port()
    procs = []
    for r in range(ranks):
        extra = ["--world-size", str(ranks), "--rank", str(r), "--master",
                 "127.0.0.1:%d" % port] if ranks > 1 else []
        extra += ["--threads", str(max(2, os.cpu_count() // ranks))]  # ranks share the cores
        procs.append(subprocess.Popen(
            [os.path.join(bin_dir, "segqat-worker")] + flags + extra + overrides +
            ["TRAIN.MODEL_SAVE_DIR", os.path.join(work, "dp%d-%d" % (ranks, r))],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env=dict(os.environ, OMP_WAIT_POLICY="PASSIVE") if ranks > 1 else None))
    logs = [p.communicate(timeout=3600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), logs[0][-2000:]
    rates = [float(x) for x in re.findall(r"step/sec=([0-9.]+)", logs[0])][1:]  # skip warm-up
    return len(rates) / sum(1 / r for r in rates)  # harmonic mean: steps per second


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin_dir")
    ap.add_argument("--jobs", type=int, default=6)
    ap.add_argument("--epochs", type=int, default=4)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="segqat_bench_workers_")
    try:
        data = os.path.join(work, "data")
        subprocess.run([os.path.join(a.bin_dir, "segqat-worker"), "make-dataset", "--out", data,
                        "--train", "32", "--val", "4", "--height", "128", "--width", "256"],
                       check=True, stdout=subprocess.DEVNULL)
        print("cores:", os.cpu_count())
        one = jobs_per_hour(a.bin_dir, work, data, 1, a.jobs, a.epochs)
        two = jobs_per_hour(a.bin_dir, work, data, 2, a.jobs, a.epochs)
        print("jobs per hour: 1 worker %.0f, 2 workers %.0f, ratio %.2f" % (one, two, two / one))
        s1 = step_seconds(a.bin_dir, work, data, 1, a.epochs)
        s2 = step_seconds(a.bin_dir, work, data, 2, a.epochs)
        print("data-parallel steps per second, global batch 8: 1 rank %.2f, 2 ranks %.2f, "
              "ratio %.2f" % (s1, s2, s2 / s1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
