#!/usr/bin/env python3
"""Runs the Python example client against a real veriface-server (started here on a free loopback port
with the default model and a temporary gallery). ctest runs it as `python_example_client`."""

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


class ExampleClientTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory(prefix="veriface-python-")
        ready = os.path.join(cls.dir.name, "ready.json")
        cls.log = open(os.path.join(cls.dir.name, "server.log"), "w+")
        cls.server = subprocess.Popen(
            [SERVER, "--model", MODEL, "--gallery", os.path.join(cls.dir.name, "gallery.db"),
             "--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--ready-file", ready],
            stdout=cls.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while not os.path.exists(ready):
            if cls.server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + cls.server_log())
            time.sleep(0.05)
        with open(ready) as f:
            cls.address = f"127.0.0.1:{json.load(f)['grpc_port']}"
        cls.client = veriface_client.VerifaceClient(cls.address)
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

    def run_cli(self, *args):
        env = dict(os.environ)
        return subprocess.run([sys.executable, os.path.join(HERE, "veriface_client.py"), "--server", self.address,
                               *args], capture_output=True, text=True, env=env, timeout=120)

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


if __name__ == "__main__":
    unittest.main(verbosity=2)
