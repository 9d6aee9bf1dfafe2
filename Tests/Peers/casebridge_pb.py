"""Python modules for proto/, generated on the fly with grpcio-tools (never checked in).

The official protobuf and grpcio runtimes act as independent peers in the tests:
they are built from the same proto/ files as the node, by a different implementation.
"""
import glob
import importlib
import os
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO = os.path.join(ROOT, "proto")


def _generate():
    from grpc_tools import protoc
    out = tempfile.mkdtemp(prefix="casebridge-pb-")
    # Only our own package: grpc.health and grpc.reflection come from the official
    # grpcio-health-checking and grpcio-reflection packages, which are the real peers.
    files = sorted(os.path.relpath(p, PROTO) for p in glob.glob(os.path.join(PROTO, "casebridge", "**", "*.proto"), recursive=True))
    args = ["protoc", f"-I{PROTO}", f"--python_out={out}", f"--grpc_python_out={out}"] + files
    if protoc.main(args) != 0:
        raise SystemExit("grpc_tools.protoc failed on proto/")
    sys.path.insert(0, out)


_generate()
request = importlib.import_module("casebridge.v1.request_pb2")
case = importlib.import_module("casebridge.v1.case_pb2")
exchange = importlib.import_module("casebridge.v1.exchange_pb2")
exchange_grpc = importlib.import_module("casebridge.v1.exchange_pb2_grpc")
console = importlib.import_module("casebridge.v1.console_pb2")
console_grpc = importlib.import_module("casebridge.v1.console_pb2_grpc")


def load_interop():
    """grpc.testing modules for the interop peers.

    Python's `grpc` package is grpcio itself, so generated code cannot live under grpc/testing;
    the files are copied under another path. The proto package, and so every name on the wire,
    stays grpc.testing.
    """
    import shutil
    from grpc_tools import protoc
    work = tempfile.mkdtemp(prefix="casebridge-interop-")
    os.makedirs(os.path.join(work, "interop_testing"))
    for name in ("empty.proto", "messages.proto", "test.proto"):
        with open(os.path.join(PROTO, "grpc", "testing", name)) as src:
            text = src.read().replace('import "grpc/testing/', 'import "interop_testing/')
        with open(os.path.join(work, "interop_testing", name), "w") as dst:
            dst.write(text)
    args = ["protoc", f"-I{work}", f"--python_out={work}", f"--grpc_python_out={work}",
            "interop_testing/empty.proto", "interop_testing/messages.proto", "interop_testing/test.proto"]
    if protoc.main(args) != 0:
        raise SystemExit("grpc_tools.protoc failed on proto/grpc/testing")
    sys.path.insert(0, work)
    return (importlib.import_module("interop_testing.empty_pb2"), importlib.import_module("interop_testing.messages_pb2"),
            importlib.import_module("interop_testing.test_pb2_grpc"))
