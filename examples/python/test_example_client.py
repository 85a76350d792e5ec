#!/usr/bin/env python3
"""Runs the Python example client against a real veriface-server (started here on a free loopback port
with the default model and a temporary gallery). ctest runs it as `python_example_client`."""

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.environ.get("VERIFACE_SOURCE_DIR", os.path.abspath(os.path.join(HERE, "..", "..")))
SHARED = os.environ.get("VERIFACE_SHARED_DIR", os.path.abspath(os.path.join(SOURCE, "..", "shared")))
MODEL = os.environ.get("VERIFACE_MODEL_DIR", os.path.join(SOURCE, "models", "default"))
SERVER = os.environ.get("VERIFACE_SERVER_BINARY", os.path.join(SOURCE, "build", "server", "veriface-server"))
sys.path.insert(0, HERE)

import grpc  # noqa: E402
import veriface_client  # noqa: E402


def lfw(person, n):
    return os.path.join(SHARED, "data", "lfw", person, f"{person}_{n:04d}.jpg")


class ServerTestCase(unittest.TestCase):
    """Starts a veriface-server for the class with `server_args()` added, and a client from `make_client()`."""

    @classmethod
    def server_args(cls):
        return []

    @classmethod
    def make_client(cls):
        return veriface_client.VerifaceClient(cls.address)

    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="veriface-python-")
        ready = os.path.join(cls.dir.name, "ready.json")
        cls.log = open(os.path.join(cls.dir.name, "server.log"), "w+")
        cls.server = subprocess.Popen(
            [SERVER, "--model", MODEL, "--gallery", os.path.join(cls.dir.name, "gallery.db"),
             "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--ready-file", ready,
             *cls.server_args()],
            stdout=cls.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not os.path.exists(ready):
            if cls.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + cls.server_log())
            time.sleep(0.05)
        with open(ready) as f:
            cls.port = json.load(f)["grpc_port"]
        cls.address = f"127.0.0.1:{cls.port}"
        cls.client = cls.make_client()
        while True:
            try:
                if cls.client.health() == "SERVING":
                    break
            except grpc.RpcError:
                pass
            if cls.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server never became SERVING:\n" + cls.server_log())
            time.sleep(0.1)

    @classmethod
    def server_log(cls):
        cls.log.seek(0)
        return cls.log.read()

    @classmethod
    def tearDownClass(cls):
        cls.client.close()
        cls.server.send_signal(signal.SIGTERM)
        code = cls.server.wait(timeout=60)
        cls.log.close()
        cls.dir.cleanup()
        if code != 0:
            raise RuntimeError(f"the server exited with {code} on SIGTERM")

    def run_cli(self, *args, env=None, server=None):
        environment = dict(os.environ)
        environment.pop("VERIFACE_API_KEY", None)
        environment.update(env or {})
        return subprocess.run([sys.executable, os.path.join(HERE, "veriface_client.py"), "--server",
                               server or self.address, *args], capture_output=True, text=True, env=environment,
                              timeout=120)


class ExampleClientTest(ServerTestCase):
    def test_info(self):
        info = self.client.model_info()
        self.assertEqual(info.embedding_dim, 128)
        self.assertTrue(info.model_id)

    def test_enroll_verify_identify_delete(self):
        ids = self.client.enroll("py-Serena_Williams", [lfw("Serena_Williams", 1), lfw("Serena_Williams", 2)],
                                 {"name": "Serena Williams"})
        self.assertEqual(len(ids), 2)
        self.client.enroll("py-Tony_Blair", [lfw("Tony_Blair", 1)])

        same = self.client.verify(lfw("Serena_Williams", 3), "id:py-Serena_Williams")
        self.assertTrue(same.match, same.similarity)
        self.assertIn(same.template_id_b, ids)
        other = self.client.verify(lfw("Serena_Williams", 3), lfw("Tony_Blair", 2))
        self.assertFalse(other.match, other.similarity)

        found = self.client.identify(lfw("Tony_Blair", 3))
        self.assertEqual(found.matches[0].identity_id, "py-Tony_Blair")
        self.assertEqual(self.client.delete("py-Tony_Blair").templates_deleted, 1)
        with self.assertRaises(grpc.RpcError) as error:
            self.client.delete("py-Tony_Blair")
        self.assertEqual(error.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_bad_image_is_invalid_argument(self):
        with tempfile.NamedTemporaryFile(suffix=".jpg") as f:
            f.write(b"not a jpeg")
            f.flush()
            with self.assertRaises(grpc.RpcError) as error:
                self.client.identify(f.name)
        self.assertEqual(error.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("image", error.exception.details())

    def test_quality_and_gallery_report(self):
        faces = self.client.faces(lfw("Colin_Powell", 1))
        self.assertGreaterEqual(len(faces), 1)
        central = faces[0].quality
        self.assertIn(central.level, (veriface_client.veriface_pb2.QUALITY_LEVEL_HIGH,
                                      veriface_client.veriface_pb2.QUALITY_LEVEL_MEDIUM))
        self.assertGreater(central.interocular_distance, 20)
        self.assertGreater(central.sharpness, 0)

        # Two people of two photos each: 2 genuine pairs and 4 impostor pairs, far too few to calibrate on.
        gallery = self.client.stub.CreateGallery(
            veriface_client.veriface_pb2.CreateGalleryRequest(name="py-report"), timeout=30).name
        for person in ("Gerhard_Schroeder", "Jean_Chretien"):
            request = veriface_client.veriface_pb2.EnrollRequest(
                identity_id=person, gallery=gallery, images=[open(lfw(person, n), "rb").read() for n in (1, 2)],
                face_selection=veriface_client.veriface_pb2.FACE_SELECTION_CENTRAL)
            self.client.stub.Enroll(request, timeout=60)
        report = self.client.gallery_report(gallery, [1e-3])
        self.assertEqual((report.genuine_pairs, report.impostor_pairs), (2, 4))
        self.assertEqual(report.thresholds[0].name, "in force")
        self.assertFalse(report.far_targets[0].reliable)
        self.assertTrue(any("reliable" in note for note in report.notes), report.notes)
        r = self.run_cli("report", "--gallery", gallery)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("2 genuine and 4 impostor pairs", r.stdout)
        r = self.run_cli("quality", lfw("Colin_Powell", 1))
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("px between the eyes", r.stdout)

    def test_command_line(self):
        r = self.run_cli("health")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "SERVING\n")
        r = self.run_cli("enroll", "py-cli-Laura_Bush", lfw("Laura_Bush", 1))
        self.assertEqual(r.returncode, 0, r.stderr)
        r = self.run_cli("verify", lfw("Laura_Bush", 3), "id:py-cli-Laura_Bush")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertTrue(r.stdout.startswith("MATCH"), r.stdout)
        r = self.run_cli("verify", lfw("Laura_Bush", 3), "id:py-nobody")
        self.assertEqual(r.returncode, 1)
        self.assertIn("NOT_FOUND", r.stderr)


def openssl(*args):
    subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60)


def make_pki(d):
    """A CA, a server certificate for localhost/127.0.0.1 and a client certificate, made with openssl."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *ec, "-keyout", f"{d}/ca.key", "-out", f"{d}/ca.pem", "-days", "2", "-subj", "/CN=Py CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign")
    for name, ext, serial in [("server", "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth", 1),
                              ("client", "extendedKeyUsage=clientAuth", 2)]:
        with open(f"{d}/{name}.ext", "w") as f:
            f.write("basicConstraints=CA:FALSE\n" + ext + "\n")
        openssl("req", *ec, "-keyout", f"{d}/{name}.key", "-out", f"{d}/{name}.csr", "-subj", f"/CN={name}")
        openssl("x509", "-req", "-in", f"{d}/{name}.csr", "-CA", f"{d}/ca.pem", "-CAkey", f"{d}/ca.key",
                "-set_serial", str(serial), "-days", "2", "-out", f"{d}/{name}.pem", "-extfile", f"{d}/{name}.ext")


class SecureExampleClientTest(ServerTestCase):
    """Mutual TLS and API keys: the example client with its --tls-* options and a key."""

    pki = tempfile.TemporaryDirectory(prefix="veriface-python-pki-")
    reader_key = "py-reader-" + os.urandom(16).hex()
    writer_key = "py-writer-" + os.urandom(16).hex()

    @classmethod
    def server_args(cls):
        d = cls.pki.name
        make_pki(d)
        with open(f"{d}/keys.txt", "w") as f:
            for name, role, key in [("py-board", "reader", cls.reader_key), ("py-ingest", "writer", cls.writer_key)]:
                f.write(f"{name} {role} sha256:{hashlib.sha256(key.encode()).hexdigest()}\n")
        return ["--set", "tls.mode=mtls", "--set", f"tls.cert_file={d}/server.pem", "--set",
                f"tls.key_file={d}/server.key", "--set", f"tls.client_ca_file={d}/ca.pem",
                "--set", "auth.mode=api_keys", "--set", f"auth.api_keys_file={d}/keys.txt"]

    @classmethod
    def make_client(cls):
        d = cls.pki.name
        return veriface_client.VerifaceClient(cls.address, ca_file=f"{d}/ca.pem", cert_file=f"{d}/client.pem",
                                              key_file=f"{d}/client.key", api_key=cls.reader_key)

    @classmethod
    def tearDownClass(cls):
        super().tearDownClass()
        cls.pki.cleanup()

    def tls_args(self):
        d = self.pki.name
        return ["--tls-ca", f"{d}/ca.pem", "--tls-cert", f"{d}/client.pem", "--tls-key", f"{d}/client.key"]

    def test_reader_key_reads_and_may_not_delete(self):
        self.assertEqual(self.client.model_info().embedding_dim, 128)
        with self.assertRaises(grpc.RpcError) as error:
            self.client.delete("py-nobody")
        self.assertEqual(error.exception.code(), grpc.StatusCode.PERMISSION_DENIED)

    def test_command_line_with_tls_and_keys(self):
        localhost = f"localhost:{self.port}"
        r = self.run_cli(*self.tls_args(), "health", server=localhost)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout, "SERVING\n")
        r = self.run_cli(*self.tls_args(), "info", server=localhost)
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAUTHENTICATED", r.stderr)
        r = self.run_cli(*self.tls_args(), "info", server=localhost, env={"VERIFACE_API_KEY": self.reader_key})
        self.assertEqual(r.returncode, 0, r.stderr)
        key_file = os.path.join(self.pki.name, "writer.key")
        with open(key_file, "w") as f:
            f.write(self.writer_key + "\n")
        r = self.run_cli(*self.tls_args(), "--tls-server-name", "localhost", "--api-key-file", key_file,
                         "enroll", "py-tls-Laura_Bush", lfw("Laura_Bush", 1))
        self.assertEqual(r.returncode, 0, r.stderr)
        # Without a client certificate the handshake fails.
        r = self.run_cli("--tls-ca", f"{self.pki.name}/ca.pem", "info", server=localhost,
                         env={"VERIFACE_API_KEY": self.reader_key})
        self.assertEqual(r.returncode, 1)
        self.assertIn("UNAVAILABLE", r.stderr)
        self.assertNotIn(self.reader_key, self.server_log())
        self.assertNotIn(self.writer_key, self.server_log())


if __name__ == "__main__":
    unittest.main(verbosity=2)
