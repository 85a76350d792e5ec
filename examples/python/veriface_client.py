#!/usr/bin/env python3
"""A small Veriface client in Python: health, model info, enrol, verify, identify.

It uses Debian's python3-grpcio and python3-protobuf with stubs generated from proto/. The CMake build
writes them to <build>/examples/python/generated; by hand:

    protoc -I proto --python_out=OUT --grpc_python_out=OUT \
        --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin \
        veriface/v1/veriface.proto grpc_health/v1/health.proto

Then, with a server running:

    VERIFACE_PYTHON_STUBS=OUT /usr/bin/python3 examples/python/veriface_client.py \
        --server localhost:50051 verify a.jpg b.jpg
"""

import argparse
import os
import sys

if os.environ.get("VERIFACE_PYTHON_STUBS"):
    sys.path.insert(0, os.environ["VERIFACE_PYTHON_STUBS"])

import grpc  # noqa: E402
from grpc_health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from veriface.v1 import veriface_pb2, veriface_pb2_grpc  # noqa: E402

# As large as the server's default message limit: an enrolment may carry several photos.
_MAX_MESSAGE = 64 * 1024 * 1024


class VerifaceClient:
    """One channel to a veriface-server, with a method per call this example needs."""

    def __init__(self, address, timeout=30.0):
        self.channel = grpc.insecure_channel(
            address,
            options=[("grpc.max_send_message_length", _MAX_MESSAGE),
                     ("grpc.max_receive_message_length", _MAX_MESSAGE)])
        self.stub = veriface_pb2_grpc.VerifaceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self.timeout = timeout

    def close(self):
        self.channel.close()

    def health(self, service=""):
        """'SERVING', 'NOT_SERVING', ... as grpc.health.v1 reports it."""
        reply = self.health_stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=self.timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def model_info(self):
        return self.stub.GetModelInfo(veriface_pb2.GetModelInfoRequest(), timeout=self.timeout)

    def enroll(self, identity_id, image_paths, metadata=None):
        """Adds one template per image to the identity; returns the new template ids."""
        request = veriface_pb2.EnrollRequest(
            identity_id=identity_id,
            metadata=metadata or {},
            images=[_read(p) for p in image_paths],
            # LFW-style photos are centred on their subject; other people may be in the frame.
            face_selection=veriface_pb2.FACE_SELECTION_CENTRAL)
        return list(self.stub.Enroll(request, timeout=self.timeout).template_ids)

    def verify(self, a, b):
        """a and b: an image path, or 'id:NAME' for an enrolled identity. Returns the VerifyResponse."""
        request = veriface_pb2.VerifyRequest(a=_face_input(a), b=_face_input(b))
        return self.stub.Verify(request, timeout=self.timeout)

    def identify(self, image_path, top_k=5):
        request = veriface_pb2.IdentifyRequest(image=_read(image_path), top_k=top_k)
        return self.stub.Identify(request, timeout=self.timeout)

    def delete(self, identity_id):
        request = veriface_pb2.DeleteIdentityRequest(identity_id=identity_id)
        return self.stub.DeleteIdentity(request, timeout=self.timeout)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _face_input(arg):
    if arg.startswith("id:"):
        return veriface_pb2.FaceInput(identity_id=arg[3:])
    return veriface_pb2.FaceInput(image=_read(arg))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("VERIFACE_SERVER", "localhost:50051"))
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("health")
    commands.add_parser("info")
    enroll = commands.add_parser("enroll")
    enroll.add_argument("identity_id")
    enroll.add_argument("images", nargs="+")
    verify = commands.add_parser("verify")
    verify.add_argument("a")
    verify.add_argument("b")
    identify = commands.add_parser("identify")
    identify.add_argument("image")
    identify.add_argument("--top-k", type=int, default=5)
    args = parser.parse_args(argv)

    client = VerifaceClient(args.server)
    try:
        if args.command == "health":
            status = client.health()
            print(status)
            return 0 if status == "SERVING" else 1
        if args.command == "info":
            info = client.model_info()
            print(f"{info.model_id}: {info.embedding_dim}-D, threshold {info.default_threshold:.4f} "
                  f"({info.default_threshold_source}), {info.gallery_identities} identities")
        elif args.command == "enroll":
            ids = client.enroll(args.identity_id, args.images)
            print(f"enrolled {len(ids)} template(s) for {args.identity_id}")
        elif args.command == "verify":
            r = client.verify(args.a, args.b)
            print(f"{'MATCH' if r.match else 'NO MATCH'} similarity {r.similarity:.4f} "
                  f"(threshold {r.threshold:.4f})")
        elif args.command == "identify":
            r = client.identify(args.image, args.top_k)
            if not r.matches:
                print("no enrolled identity reaches the threshold")
            for rank, m in enumerate(r.matches, 1):
                print(f"{rank}. {m.identity_id} {m.similarity:.4f}")
    except grpc.RpcError as e:
        print(f"veriface: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
