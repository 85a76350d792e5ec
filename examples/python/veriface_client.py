#!/usr/bin/env python3
"""A small Veriface client in Python: health, model info, enrol, verify, identify, face quality, gallery report.

It uses Debian's python3-grpcio and python3-protobuf with stubs generated from proto/. The CMake build
writes them to <build>/examples/python/generated; by hand:

    protoc -I proto --python_out=OUT --grpc_python_out=OUT \
        --plugin=protoc-gen-grpc_python=/usr/bin/grpc_python_plugin \
        veriface/v1/veriface.proto grpc_health/v1/health.proto

Then, with a server running:

    VERIFACE_PYTHON_STUBS=OUT /usr/bin/python3 examples/python/veriface_client.py \
        --server localhost:50051 verify a.jpg b.jpg

For a server with TLS add --tls-ca CA.pem (and --tls-cert/--tls-key for mutual TLS, --tls-server-name
when the certificate does not name the dialled host); for one that requires API keys set
$VERIFACE_API_KEY or pass --api-key-file FILE. The key goes with each call as `authorization: Bearer`.
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

    def __init__(self, address, timeout=30.0, tls=False, ca_file=None, cert_file=None, key_file=None,
                 server_name=None, api_key=None):
        """TLS is used when `tls` is true or any of ca_file, cert_file, key_file, server_name is given;
        ca_file None trusts gRPC's default roots. cert_file and key_file (together) are for mutual TLS."""
        options = [("grpc.max_send_message_length", _MAX_MESSAGE),
                   ("grpc.max_receive_message_length", _MAX_MESSAGE)]
        if tls or ca_file or cert_file or key_file or server_name:
            if bool(cert_file) != bool(key_file):
                raise ValueError("a client certificate needs its key: give both cert_file and key_file")
            credentials = grpc.ssl_channel_credentials(
                root_certificates=_read(ca_file) if ca_file else None,
                private_key=_read(key_file) if key_file else None,
                certificate_chain=_read(cert_file) if cert_file else None)
            if server_name:
                options.append(("grpc.ssl_target_name_override", server_name))
            self.channel = grpc.secure_channel(address, credentials, options=options)
        else:
            self.channel = grpc.insecure_channel(address, options=options)
        self.stub = veriface_pb2_grpc.VerifaceStub(self.channel)
        self.health_stub = health_pb2_grpc.HealthStub(self.channel)
        self.timeout = timeout
        self.metadata = [("authorization", "Bearer " + api_key)] if api_key else []

    def close(self):
        self.channel.close()

    def health(self, service=""):
        """'SERVING', 'NOT_SERVING', ... as grpc.health.v1 reports it."""
        reply = self.health_stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=self.timeout)
        return health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)

    def model_info(self):
        return self.stub.GetModelInfo(veriface_pb2.GetModelInfoRequest(), timeout=self.timeout, metadata=self.metadata)

    def enroll(self, identity_id, image_paths, metadata=None, min_quality=None):
        """Adds one template per image to the identity; returns the new template ids. min_quality: "low",
        "medium" or "high" (None: the server's quality.enroll_min_level)."""
        request = veriface_pb2.EnrollRequest(
            identity_id=identity_id,
            metadata=metadata or {},
            images=[_read(p) for p in image_paths],
            # LFW-style photos are centred on their subject; other people may be in the frame.
            face_selection=veriface_pb2.FACE_SELECTION_CENTRAL,
            min_quality=_level(min_quality))
        return list(self.stub.Enroll(request, timeout=self.timeout, metadata=self.metadata).template_ids)

    def faces(self, image_path):
        """Every face in the image with its box, score and quality (no embeddings)."""
        request = veriface_pb2.EmbedRequest(image=_read(image_path), skip_embeddings=True)
        return list(self.stub.Embed(request, timeout=self.timeout, metadata=self.metadata).faces)

    def gallery_report(self, gallery="", target_fars=()):
        """The GalleryReport: how the thresholds do on the gallery's own people."""
        request = veriface_pb2.GalleryReportRequest(gallery=gallery, target_fars=list(target_fars))
        return self.stub.GetGalleryReport(request, timeout=self.timeout, metadata=self.metadata)

    def verify(self, a, b):
        """a and b: an image path, or 'id:NAME' for an enrolled identity. Returns the VerifyResponse."""
        request = veriface_pb2.VerifyRequest(a=_face_input(a), b=_face_input(b))
        return self.stub.Verify(request, timeout=self.timeout, metadata=self.metadata)

    def identify(self, image_path, top_k=5):
        request = veriface_pb2.IdentifyRequest(image=_read(image_path), top_k=top_k)
        return self.stub.Identify(request, timeout=self.timeout, metadata=self.metadata)

    def delete(self, identity_id):
        request = veriface_pb2.DeleteIdentityRequest(identity_id=identity_id)
        return self.stub.DeleteIdentity(request, timeout=self.timeout, metadata=self.metadata)


def _read(path):
    with open(path, "rb") as f:
        return f.read()


def _level(name):
    if name is None:
        return veriface_pb2.QUALITY_LEVEL_UNSPECIFIED
    return veriface_pb2.QualityLevel.Value("QUALITY_LEVEL_" + name.upper())


def quality_text(quality):
    """'HIGH', or 'LOW: LOW_SHARPNESS, EXTREME_POSE' naming what pulled the level down."""
    level = veriface_pb2.QualityLevel.Name(quality.level).replace("QUALITY_LEVEL_", "")
    reasons = [veriface_pb2.QualityReason.Name(i.reason) for i in quality.issues]
    return level + (": " + ", ".join(reasons) if reasons else "")


def _face_input(arg):
    if arg.startswith("id:"):
        return veriface_pb2.FaceInput(identity_id=arg[3:])
    return veriface_pb2.FaceInput(image=_read(arg))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", default=os.environ.get("VERIFACE_SERVER", "localhost:50051"))
    parser.add_argument("--tls", action="store_true", help="use TLS with gRPC's default root CAs")
    parser.add_argument("--tls-ca", default=os.environ.get("VERIFACE_TLS_CA"),
                        help="PEM CA certificate(s) that sign the server's certificate")
    parser.add_argument("--tls-cert", default=os.environ.get("VERIFACE_TLS_CERT"),
                        help="PEM client certificate (mutual TLS)")
    parser.add_argument("--tls-key", default=os.environ.get("VERIFACE_TLS_KEY"), help="its PEM private key")
    parser.add_argument("--tls-server-name", default=os.environ.get("VERIFACE_TLS_SERVER_NAME"),
                        help="the name the server's certificate must carry, if not the --server host")
    parser.add_argument("--api-key-file", help="file whose first line is the API key (default: $VERIFACE_API_KEY)")
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
    quality = commands.add_parser("quality")
    quality.add_argument("image")
    report = commands.add_parser("report")
    report.add_argument("--gallery", default="")
    enroll.add_argument("--min-quality", choices=["low", "medium", "high"])
    args = parser.parse_args(argv)

    api_key = os.environ.get("VERIFACE_API_KEY")
    try:
        if args.api_key_file:
            with open(args.api_key_file) as f:
                api_key = f.readline().strip()
        client = VerifaceClient(args.server, tls=args.tls, ca_file=args.tls_ca, cert_file=args.tls_cert,
                                key_file=args.tls_key, server_name=args.tls_server_name, api_key=api_key)
    except (OSError, ValueError) as e:
        print(f"veriface: {e}", file=sys.stderr)
        return 2
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
            ids = client.enroll(args.identity_id, args.images, min_quality=args.min_quality)
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
        elif args.command == "quality":
            for n, f in enumerate(client.faces(args.image), 1):
                q = f.quality
                print(f"face {n}: {quality_text(q)} ({q.interocular_distance:.0f} px between the eyes, sharpness "
                      f"{q.sharpness:.2f}, yaw {q.yaw:.0f}, pitch {q.pitch:.0f}, brightness {q.brightness:.0f})")
        elif args.command == "report":
            r = client.gallery_report(args.gallery)
            print(f"gallery {r.gallery}: {r.genuine_pairs} genuine and {r.impostor_pairs} impostor pairs")
            for t in r.thresholds:
                print(f"{t.name} {t.threshold:.4f}: FAR {100 * t.far.rate:.3g}% FRR {100 * t.frr.rate:.3g}%")
            for t in r.far_targets:
                print(f"FAR {t.target_far:g}: threshold {t.threshold:.4f}" + ("" if t.reliable else " (not reliable)"))
            for note in r.notes:
                print("note:", note)
    except grpc.RpcError as e:
        print(f"veriface: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    finally:
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
