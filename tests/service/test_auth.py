"""Who may do what, and over what: segqatd with --auth-tokens (roles and job
owners), its refusal to run open beyond loopback, TLS and mutual TLS for
workers, with certificates made by openssl at test time. Real server, real
clients (Python gRPC, the segqat CLI, a segqat-worker over mTLS). One suite
over one set of certificates and tokens, hence its length."""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from segqatd_fixture import (SYNTHETIC_CFG, GrpcAssertions, Segqatd,  # noqa: E402
                             dataset_overrides, free_port, load_stubs,
                             work_dir_with_dataset)

pb, pb_grpc, wpb, wpb_grpc = load_stubs(with_workers=True)
SEGQATD = os.environ["SEGQATD"]
SEGQAT = os.environ["SEGQAT"]
WORKER = os.environ["SEGQAT_WORKER"]
with open(SYNTHETIC_CFG) as f:
    CONFIG_YAML = f.read()

TOKENS = {
    "viewer": "v" * 8 + "-viewer-token-0001",
    "alice": "a" * 8 + "-submitter-token-01",
    "bob": "b" * 8 + "-submitter-token-02",
    "worker": "w" * 8 + "-worker-token-00001",
    "admin": "x" * 8 + "-admin-token-000001",
}
ROLES = {"viewer": "viewer", "alice": "submitter", "bob": "submitter", "worker": "worker",
         "admin": "admin"}


def write_tokens(path, mode=0o600):
    with open(path, "w") as f:
        f.write("# TOKEN ROLE NAME\n")
        for name, token in TOKENS.items():
            f.write("%s %s %s\n" % (token, ROLES[name], name))
    os.chmod(path, mode)


def md(who):
    return [("authorization", "Bearer " + TOKENS[who])] if who else []


def make_certs(d):
    """A CA, a server certificate for 127.0.0.1 and a client certificate."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
    p = lambda n: os.path.join(d, n)  # noqa: E731
    ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=segqat-test-ca",
         "-keyout", p("ca.key"), "-out", p("ca.pem"))
    with open(p("san.ext"), "w") as f:
        f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    for who, ext in (("server", ["-extfile", p("san.ext")]), ("client", [])):
        ossl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=segqat-" + who,
             "-keyout", p(who + ".key"), "-out", p(who + ".csr"))
        ossl("x509", "-req", "-in", p(who + ".csr"), "-CA", p("ca.pem"), "-CAkey", p("ca.key"),
             "-CAcreateserial", "-days", "1", "-out", p(who + ".pem"), *ext)
    return {k: p(k) for k in ("ca.pem", "server.pem", "server.key", "client.pem", "client.key")}


def read(path):
    with open(path, "rb") as f:
        return f.read()


class Base(GrpcAssertions, unittest.TestCase):
    def spec(self, *overrides):
        return pb.JobSpec(kind=pb.TRAIN, config_yaml=CONFIG_YAML, log_steps=1,
                          overrides=dataset_overrides(self.data) + list(overrides))

    def wait_end(self, stub, name, who="admin", timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            job = stub.GetJob(pb.GetJobRequest(name=name), metadata=md(who), timeout=30)
            if job.state in (pb.SUCCEEDED, pb.FAILED, pb.CANCELLED):
                return job
            time.sleep(0.5)
        raise AssertionError("%s did not end" % name)


class RefusalsTest(Base):
    def setUp(self):
        self.work = tempfile.mkdtemp(prefix="segqat_auth_refuse_")

    def tearDown(self):
        shutil.rmtree(self.work, ignore_errors=True)

    def start_fails(self, *args):
        p = subprocess.run([SEGQATD, "--data-dir", os.path.join(self.work, "d"),
                            "--local-workers", "0"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
        self.assertNotEqual(p.returncode, 0, p.stdout)
        return p.stdout

    def test_world_readable_token_file_is_refused(self):
        path = os.path.join(self.work, "tokens")
        write_tokens(path, mode=0o644)
        out = self.start_fails("--listen", "127.0.0.1:%d" % free_port(), "--auth-tokens", path)
        self.assertIn("readable by every user", out)
        for token in TOKENS.values():
            self.assertNotIn(token, out)

    def test_bad_role_names_the_line_not_the_token(self):
        path = os.path.join(self.work, "tokens")
        with open(path, "w") as f:
            f.write("secret-token-that-must-not-leak superuser\n")
        os.chmod(path, 0o600)
        out = self.start_fails("--listen", "127.0.0.1:%d" % free_port(), "--auth-tokens", path)
        self.assertIn("line 1", out)
        self.assertIn("superuser", out)
        self.assertNotIn("secret-token-that-must-not-leak", out)

    def test_open_server_only_on_loopback(self):
        out = self.start_fails("--listen", "0.0.0.0:%d" % free_port())
        self.assertIn("--auth-tokens", out)
        # --insecure is the operator saying so.
        port = free_port()
        server = Segqatd(SEGQATD, os.path.join(self.work, "open"), port, workers=0)
        server.extra_args = ["--insecure"]
        server.proc = subprocess.Popen(
            [SEGQATD, "--listen", "0.0.0.0:%d" % port, "--data-dir", server.data_dir,
             "--local-workers", "0", "--insecure"], stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, text=True)
        try:
            line = ""
            deadline = time.time() + 30
            while "listening on" not in line and time.time() < deadline:
                line = server.proc.stdout.readline()
            self.assertIn("listening on 0.0.0.0:%d" % port, line)
        finally:
            server.proc.terminate()
            server.proc.wait(timeout=60)
            server.proc.stdout.close()


class TokensTest(Base):
    @classmethod
    def setUpClass(cls):
        cls.work, cls.data = work_dir_with_dataset("segqat_auth_", WORKER, train=8)
        cls.tokens = os.path.join(cls.work, "tokens")
        write_tokens(cls.tokens)
        cls.server = Segqatd(SEGQATD, os.path.join(cls.work, "server"), free_port(), workers=1)
        cls.metrics_port = free_port()
        cls.server.extra_args = ["--auth-tokens", cls.tokens, "--data-root", cls.data,
                                 "--metrics-address", "127.0.0.1:%d" % cls.metrics_port,
                                 "--metrics-auth"]
        cls.server.start()
        cls.channel = grpc.insecure_channel(cls.server.target)
        cls.stub = pb_grpc.JobServiceStub(cls.channel)
        cls.wstub = wpb_grpc.WorkerServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls):
        cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def create(self, who, *overrides):
        return self.stub.CreateJob(pb.CreateJobRequest(spec=self.spec(*overrides)),
                                   metadata=md(who), timeout=30)

    def test_data_roots(self):
        """Jobs read only under --data-root: absolute paths, `..`, symlinks and
        file-list entries that point elsewhere fail the job, naming the key,
        and no file content shows."""
        os.symlink("/etc", os.path.join(self.data, "etc-link"))
        escaping_list = os.path.join(self.data, "escaping_list.txt")
        with open(escaping_list, "w") as f:
            f.write("../../../../../../etc/passwd ../../../../../../etc/hostname\n")
        cases = [
            (("DATASET.TRAIN_FILE_LIST", "/etc/passwd", "DATASET.SEPARATOR", ":"),
             "DATASET.TRAIN_FILE_LIST"),
            (("DATASET.DATA_DIR", os.path.join(self.data, "..", "..")), "DATASET.DATA_DIR"),
            (("DATASET.TRAIN_FILE_LIST", os.path.join(self.data, "etc-link", "passwd")),
             "DATASET.TRAIN_FILE_LIST"),
            (("TRAIN.PRETRAINED_MODEL_DIR", "/etc/passwd"), "TRAIN.PRETRAINED_MODEL_DIR"),
            (("DATASET.TRAIN_FILE_LIST", escaping_list), "DATASET.TRAIN_FILE_LIST: entry 1"),
        ]
        with open("/etc/passwd") as f:
            secret_lines = [line.strip() for line in f if line.strip()][:3]
        for overrides, key in cases:
            job = self.create("alice", *overrides)
            done = self.wait_end(self.stub, job.name)
            self.assertEqual(done.state, pb.FAILED, overrides)
            self.assertIn(key, done.error)
            self.assertIn("--data-root", done.error)
            for line in secret_lines:
                self.assertNotIn(line, done.error)
                self.assertNotIn(line.split(":")[0] + ":x:", done.error)

    def test_no_or_unknown_token_is_unauthenticated(self):
        s = self.stub
        for meta in ([], [("authorization", "Bearer not-a-token-of-this-server")],
                     [("authorization", TOKENS["admin"])]):  # no "Bearer "
            self.assert_code(lambda: s.ListJobs(pb.ListJobsRequest(), metadata=meta, timeout=30),
                             grpc.StatusCode.UNAUTHENTICATED)
            self.assert_code(lambda: s.GetJob(pb.GetJobRequest(name="jobs/x"), metadata=meta,
                                              timeout=30), grpc.StatusCode.UNAUTHENTICATED)
            self.assert_code(lambda: s.WatchJob(pb.WatchJobRequest(name="jobs/x"), metadata=meta,
                                                timeout=30), grpc.StatusCode.UNAUTHENTICATED)
            self.assert_code(lambda: s.ReadArtifact(pb.ReadArtifactRequest(
                name="jobs/x", artifact="final/model.pt"), metadata=meta, timeout=30),
                grpc.StatusCode.UNAUTHENTICATED)
            self.assert_code(lambda: self.wstub.Synchronize(wpb.SynchronizeRequest(
                protocol=wpb.WORKER_PROTOCOL_V1, worker_id="w1"), metadata=meta, timeout=30),
                grpc.StatusCode.UNAUTHENTICATED)

    def test_roles(self):
        self.assert_code(lambda: self.create("viewer"), grpc.StatusCode.PERMISSION_DENIED,
                         "CreateJob", "viewer")
        self.assert_code(lambda: self.create("worker"), grpc.StatusCode.PERMISSION_DENIED,
                         "CreateJob", "worker")
        self.assert_code(lambda: self.stub.ListJobs(pb.ListJobsRequest(), metadata=md("worker"),
                                                    timeout=30),
                         grpc.StatusCode.PERMISSION_DENIED, "ListJobs")
        self.assert_code(lambda: self.wstub.Synchronize(wpb.SynchronizeRequest(
            protocol=wpb.WORKER_PROTOCOL_V1, worker_id="w1",
            report=wpb.WorkerReport(idle=wpb.WorkerReport.Idle())), metadata=md("alice"),
            timeout=30), grpc.StatusCode.PERMISSION_DENIED, "Synchronize")
        for who in ("viewer", "alice", "admin"):
            self.stub.ListJobs(pb.ListJobsRequest(), metadata=md(who), timeout=30)
        # The health service stays open, for liveness probes.
        check = self.channel.unary_unary("/grpc.health.v1.Health/Check",
                                         request_serializer=lambda _: b"",
                                         response_deserializer=lambda b: b)
        self.assertEqual(check(None, timeout=30), b"\x08\x01")  # SERVING

    def test_owners(self):
        # Alice's job runs to the end on the embedded worker (its own token).
        job = self.create("alice", "SOLVER.NUM_EPOCHS", "1")
        self.assertEqual(job.owner, "alice")
        for who in ("bob", "viewer"):
            self.assert_code(lambda: self.stub.CancelJob(pb.CancelJobRequest(name=job.name),
                                                         metadata=md(who), timeout=30),
                             grpc.StatusCode.PERMISSION_DENIED, "CancelJob")
        done = self.wait_end(self.stub, job.name, who="viewer")
        self.assertEqual(done.state, pb.SUCCEEDED, done.error)
        data = b"".join(c.data for c in self.stub.ReadArtifact(pb.ReadArtifactRequest(
            name=job.name, artifact="final/model.pt"), metadata=md("viewer"), timeout=60))
        self.assertGreater(len(data), 1000)
        # Bob's long job: Alice may not cancel it, Bob may, and so may an admin.
        long = [self.create("bob", "SOLVER.NUM_EPOCHS", "500") for _ in range(2)]
        self.assert_code(lambda: self.stub.CancelJob(pb.CancelJobRequest(name=long[0].name),
                                                     metadata=md("alice"), timeout=30),
                         grpc.StatusCode.PERMISSION_DENIED, "belongs to another caller")
        self.assert_code(lambda: self.stub.DeleteJob(pb.DeleteJobRequest(name=long[0].name),
                                                     metadata=md("bob"), timeout=30),
                         grpc.StatusCode.FAILED_PRECONDITION, "cancel it first")
        for j, who in zip(long, ("bob", "admin")):
            self.stub.CancelJob(pb.CancelJobRequest(name=j.name), metadata=md(who), timeout=30)
            self.assertEqual(self.wait_end(self.stub, j.name).state, pb.CANCELLED)
        # Deleting: only the owner or an admin; then the job and its files are gone.
        self.assert_code(lambda: self.stub.DeleteJob(pb.DeleteJobRequest(name=job.name),
                                                     metadata=md("bob"), timeout=30),
                         grpc.StatusCode.PERMISSION_DENIED, "DeleteJob")
        self.assert_code(lambda: self.stub.DeleteJob(pb.DeleteJobRequest(name=job.name),
                                                     metadata=md("viewer"), timeout=30),
                         grpc.StatusCode.PERMISSION_DENIED, "DeleteJob")
        job_dir = os.path.join(self.server.data_dir, "artifacts", "jobs", job.name[5:])
        self.assertTrue(os.path.exists(os.path.join(job_dir, "final", "model.pt")))
        # What a finished job keeps: its outputs, not its snapshots.
        names = [a.name for a in self.stub.GetJob(pb.GetJobRequest(name=job.name),
                                                  metadata=md("alice"), timeout=30).artifacts]
        self.assertFalse([n for n in names if n.startswith("snapshots/")], names)
        self.assertFalse(os.path.exists(os.path.join(self.server.data_dir, "work", job.name[5:])))
        p = subprocess.run([SEGQAT, "--server", self.server.target, "delete", job.name],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=dict(os.environ, SEGQAT_TOKEN=TOKENS["alice"]), timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout)
        self.assert_code(lambda: self.stub.GetJob(pb.GetJobRequest(name=job.name),
                                                  metadata=md("admin"), timeout=30),
                         grpc.StatusCode.NOT_FOUND)
        self.assertFalse(os.path.exists(job_dir))
        self.stub.DeleteJob(pb.DeleteJobRequest(name=long[0].name), metadata=md("admin"),
                            timeout=30)
        # A request_id is the caller's own.
        first = self.stub.CreateJob(pb.CreateJobRequest(
            spec=self.spec("SOLVER.NUM_EPOCHS", "500"), request_id="r-1"), metadata=md("alice"),
            timeout=30)
        self.assert_code(lambda: self.stub.CreateJob(pb.CreateJobRequest(
            spec=self.spec(), request_id="r-1"), metadata=md("bob"), timeout=30),
            grpc.StatusCode.ALREADY_EXISTS, "request_id")
        self.stub.CancelJob(pb.CancelJobRequest(name=first.name), metadata=md("alice"), timeout=30)

    def test_metrics_behind_tokens_health_open(self):
        url = "http://127.0.0.1:%d" % self.metrics_port
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(url + "/metrics", timeout=10)
        self.assertEqual(cm.exception.code, 401)
        req = urllib.request.Request(url + "/metrics",
                                     headers={"Authorization": "Bearer " + TOKENS["viewer"]})
        text = urllib.request.urlopen(req, timeout=10).read().decode()
        self.assertIn("segqat_jobs", text)
        bad = urllib.request.Request(url + "/metrics",
                                     headers={"Authorization": "Bearer not-a-known-token"})
        with self.assertRaises(urllib.error.HTTPError) as cm:
            urllib.request.urlopen(bad, timeout=10)
        self.assertEqual(cm.exception.code, 401)
        self.assertEqual(urllib.request.urlopen(url + "/healthz", timeout=10).read(), b"ok\n")

    def test_cli_sends_the_token(self):
        base = [SEGQAT, "--server", self.server.target, "list"]
        env = {k: v for k, v in os.environ.items() if k != "SEGQAT_TOKEN"}
        p = subprocess.run(base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=env, timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("UNAUTHENTICATED", p.stdout.upper())
        p = subprocess.run(base, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=dict(env, SEGQAT_TOKEN=TOKENS["viewer"]), timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout)
        token_file = os.path.join(self.work, "viewer.token")
        with open(token_file, "w") as f:
            f.write(TOKENS["viewer"] + "\n")
        p = subprocess.run(base + ["--token-file", token_file], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, env=env, timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout)
        p = subprocess.run([SEGQAT, "--server", self.server.target, "train", "--cfg",
                            SYNTHETIC_CFG] + dataset_overrides(self.data),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                           env=dict(env, SEGQAT_TOKEN=TOKENS["viewer"]), timeout=60)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("PERMISSION_DENIED", p.stdout.upper())


class TlsTest(Base):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="segqat_tls_")
        cls.certs = make_certs(cls.work)
        cls.data = os.path.join(cls.work, "dataset")
        subprocess.run([WORKER, "make-dataset", "--out", cls.data, "--train", "8", "--val", "4",
                        "--height", "64", "--width", "128"], check=True, stdout=subprocess.DEVNULL)
        cls.tokens = os.path.join(cls.work, "tokens")
        write_tokens(cls.tokens)
        c = cls.certs
        cls.server = Segqatd(SEGQATD, os.path.join(cls.work, "server"), free_port(), workers=0)
        cls.server.extra_args = ["--auth-tokens", cls.tokens, "--tls-cert", c["server.pem"],
                                 "--tls-key", c["server.key"], "--tls-client-ca", c["ca.pem"]]
        cls.server.start()
        cls.worker = None

    @classmethod
    def tearDownClass(cls):
        if cls.worker is not None and cls.worker.poll() is None:
            cls.worker.terminate()
            cls.worker.wait(timeout=120)
        cls.server.stop()
        shutil.rmtree(cls.work, ignore_errors=True)

    def channel(self, client_cert=False):
        c = self.certs
        creds = grpc.ssl_channel_credentials(
            root_certificates=read(c["ca.pem"]),
            private_key=read(c["client.key"]) if client_cert else None,
            certificate_chain=read(c["client.pem"]) if client_cert else None)
        return grpc.secure_channel(self.server.target, creds)

    def test_tls_round_trip_and_no_plaintext(self):
        stub = pb_grpc.JobServiceStub(self.channel())
        stub.ListJobs(pb.ListJobsRequest(), metadata=md("viewer"), timeout=30)
        plain = pb_grpc.JobServiceStub(grpc.insecure_channel(self.server.target))
        self.assert_code(lambda: plain.ListJobs(pb.ListJobsRequest(), metadata=md("viewer"),
                                                timeout=10), grpc.StatusCode.UNAVAILABLE)
        p = subprocess.run([SEGQAT, "--server", self.server.target, "--tls-ca",
                            self.certs["ca.pem"], "list"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True,
                           env=dict(os.environ, SEGQAT_TOKEN=TOKENS["viewer"]), timeout=60)
        self.assertEqual(p.returncode, 0, p.stdout)

    def test_workers_need_a_client_certificate(self):
        req = wpb.SynchronizeRequest(protocol=wpb.WORKER_PROTOCOL_V1, worker_id="worker-probe",
                                     report=wpb.WorkerReport(idle=wpb.WorkerReport.Idle()),
                                     draining=True)
        bare = wpb_grpc.WorkerServiceStub(self.channel())
        self.assert_code(lambda: bare.Synchronize(req, metadata=md("worker"), timeout=30),
                         grpc.StatusCode.UNAUTHENTICATED, "client certificate")
        mutual = wpb_grpc.WorkerServiceStub(self.channel(client_cert=True))
        mutual.Synchronize(req, metadata=md("worker"), timeout=30)
        # A real worker over mutual TLS runs a job end to end.
        c = self.certs
        log = open(os.path.join(self.work, "worker.log"), "w")
        type(self).worker = subprocess.Popen(
            [WORKER, "serve", "--server", self.server.target, "--name", "worker-tls",
             "--work-dir", os.path.join(self.work, "w"), "--tls-ca", c["ca.pem"],
             "--tls-cert", c["client.pem"], "--tls-key", c["client.key"]],
            stdout=log, stderr=subprocess.STDOUT,
            env=dict(os.environ, SEGQAT_TOKEN=TOKENS["worker"]))
        stub = pb_grpc.JobServiceStub(self.channel())
        job = stub.CreateJob(pb.CreateJobRequest(spec=self.spec("SOLVER.NUM_EPOCHS", "1")),
                             metadata=md("alice"), timeout=30)
        done = self.wait_end(stub, job.name)
        log.close()
        self.assertEqual(done.state, pb.SUCCEEDED, done.error + read(log.name).decode())
        self.assertEqual(done.worker, "workers/worker-tls")


if __name__ == "__main__":
    unittest.main(verbosity=2)
