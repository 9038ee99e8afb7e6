"""Starts a real segqatd on a loopback port and gives Python gRPC stubs for
it, generated from proto/ with Debian's python3-grpc-tools, as an MLOps
pipeline would use the API."""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

SOURCE_DIR = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYNTHETIC_CFG = os.path.join(SOURCE_DIR, "configs", "deeplabv3p_mobilenetv2_synthetic.yaml")


def load_stubs(with_workers=False):
    """The generated modules for jobs.proto (and workers.proto if asked)."""
    out = tempfile.mkdtemp(prefix="segqat_stubs_")
    from grpc_tools import protoc
    protos = ["jobs.proto"] + (["workers.proto"] if with_workers else [])
    rc = protoc.main(["protoc", "-I" + os.path.join(SOURCE_DIR, "proto"), "--python_out=" + out,
                      "--grpc_python_out=" + out] +
                     [os.path.join(SOURCE_DIR, "proto", "segqat", "v1", p) for p in protos])
    assert rc == 0, "protoc failed"
    sys.path.insert(0, out)
    from segqat.v1 import jobs_pb2, jobs_pb2_grpc
    if not with_workers:
        return jobs_pb2, jobs_pb2_grpc
    from segqat.v1 import workers_pb2, workers_pb2_grpc
    return jobs_pb2, jobs_pb2_grpc, workers_pb2, workers_pb2_grpc


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Segqatd:
    def __init__(self, binary, data_dir, port, workers=1):
        self.binary, self.data_dir, self.port, self.workers = binary, data_dir, port, workers
        self.proc = None
        self.extra_args = []
        self.log = os.path.join(data_dir + ".log")

    def start(self):
        os.makedirs(self.data_dir, exist_ok=True)
        self.logf = open(self.log, "a")
        self.proc = subprocess.Popen(
            [self.binary, "--listen", "127.0.0.1:%d" % self.port, "--data-dir", self.data_dir,
             "--local-workers", str(self.workers)] + self.extra_args, stdout=self.logf, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while time.time() < deadline:
            with open(self.log) as f:
                if re.search(r"listening on 127\.0\.0\.1:%d" % self.port, f.read()):
                    return self
            if self.proc.poll() is not None:
                raise AssertionError("segqatd exited: " + open(self.log).read())
            time.sleep(0.1)
        raise AssertionError("segqatd did not start: " + open(self.log).read())

    def stop(self, timeout=60):
        """SIGTERM, as an operator would; returns the exit code."""
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=timeout)
        self.logf.close()
        return rc

    def kill(self):
        """SIGKILL, as the OOM killer would."""
        self.proc.kill()
        self.proc.wait(timeout=60)
        self.logf.close()

    def alive(self):
        return self.proc.poll() is None

    @property
    def target(self):
        return "127.0.0.1:%d" % self.port


def work_dir_with_dataset(prefix, worker, train=16, val=4):
    """A fresh temporary folder holding a small generated dataset (64x128
    images) in `dataset/`; returns (folder, dataset folder)."""
    work = tempfile.mkdtemp(prefix=prefix)
    data = os.path.join(work, "dataset")
    subprocess.run([worker, "make-dataset", "--out", data, "--train", str(train), "--val",
                    str(val), "--height", "64", "--width", "128"], check=True,
                   stdout=subprocess.DEVNULL)
    return work, data


def dataset_overrides(data_dir):
    return ["DATASET.DATA_DIR", data_dir,
            "DATASET.TRAIN_FILE_LIST", os.path.join(data_dir, "train_list.txt"),
            "DATASET.VAL_FILE_LIST", os.path.join(data_dir, "val_list.txt"),
            "TRAIN_CROP_SIZE", "(128, 64)", "EVAL_CROP_SIZE", "(128, 64)", "BATCH_SIZE", "4"]


class GrpcAssertions:
    """A unittest.TestCase mixin."""

    def assert_code(self, fn, code, *needles):
        """fn() (a unary call, or a stream read to its end) fails with `code`,
        and its details contain each needle."""
        import grpc
        with self.assertRaises(grpc.RpcError) as cm:
            r = fn()
            if hasattr(r, "__iter__") and not isinstance(r, (bytes, str)):
                list(r)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        for n in needles:
            self.assertIn(n, cm.exception.details())
