#!/usr/bin/env python3
"""Python grpcio as the other side of gRPC's standard interop cases, over mutual TLS.

    interop.py client --port P --ca CA --cert CERT --key KEY CASE...
        runs each case against a server on 127.0.0.1:P and prints "PASS case" or "FAIL case: why"
    interop.py server --ca CA --cert CERT --key KEY
        serves grpc.testing.TestService on a free port, prints "PORT n", serves until stdin closes

Cases follow gRPC's doc/interop-test-descriptions.md; health and reflection use the official
grpcio-health-checking and grpcio-reflection clients.
"""
import argparse
import os
import sys
import threading
import time
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402
import casebridge_pb  # noqa: E402

empty_pb2, messages_pb2, test_pb2_grpc = casebridge_pb.load_interop()
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"
SERVER_NAME = "ncct.casebridge.test"


def read(path):
    with open(path, "rb") as fh:
        return fh.read()


def expect(condition, why):
    if not condition:
        raise AssertionError(why)


def expect_code(call, code, why=""):
    try:
        call()
    except grpc.RpcError as error:
        expect(error.code() == code, f"expected {code}, got {error.code()}: {error.details()} {why}")
        return error
    raise AssertionError(f"expected {code}, call succeeded {why}")


# --- client cases --------------------------------------------------------------------------------

def empty_unary(stub, channel):
    expect(stub.EmptyCall(empty_pb2.Empty()) == empty_pb2.Empty(), "response is not empty")


def large_unary(stub, channel):
    request = messages_pb2.SimpleRequest(response_size=314159, payload=messages_pb2.Payload(body=b"\0" * 271828))
    response = stub.UnaryCall(request)
    expect(len(response.payload.body) == 314159, f"payload {len(response.payload.body)} bytes")


def near_limit_unary(stub, channel):
    # Request and response close to the 4 MiB default limit.
    size = 4 * 1024 * 1024 - 64
    request = messages_pb2.SimpleRequest(response_size=size, payload=messages_pb2.Payload(body=b"\1" * size))
    response = stub.UnaryCall(request)
    expect(len(response.payload.body) == size, f"payload {len(response.payload.body)} bytes")


def server_streaming(stub, channel):
    sizes = [31415, 9, 2653, 58979]
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=s) for s in sizes])
    got = [len(r.payload.body) for r in stub.StreamingOutputCall(request)]
    expect(got == sizes, f"sizes {got}")


def custom_metadata(stub, channel):
    metadata = ((ECHO_INITIAL, "test_initial_metadata_value"), (ECHO_TRAILING, b"\x0a\x0b\x0a\x0b\x0a\x0b"))
    request = messages_pb2.SimpleRequest(response_size=314159, payload=messages_pb2.Payload(body=b"\0" * 271828))
    response, call = stub.UnaryCall.with_call(request, metadata=metadata)
    check_echo(call.initial_metadata(), call.trailing_metadata())
    duplex = stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=314159)],
        payload=messages_pb2.Payload(body=b"\0" * 271828))]), metadata=metadata)
    for _ in duplex:
        pass
    check_echo(duplex.initial_metadata(), duplex.trailing_metadata())


def check_echo(initial, trailing):
    initial, trailing = dict(initial), dict(trailing)
    expect(initial.get(ECHO_INITIAL) == "test_initial_metadata_value", f"initial metadata {initial}")
    expect(trailing.get(ECHO_TRAILING) == b"\x0a\x0b\x0a\x0b\x0a\x0b", f"trailing metadata {trailing}")


def status_code_and_message(stub, channel):
    status = messages_pb2.EchoStatus(code=2, message="test status message")
    error = expect_code(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status)), grpc.StatusCode.UNKNOWN)
    expect(error.details() == "test status message", f"message {error.details()!r}")
    duplex = stub.FullDuplexCall(iter([messages_pb2.StreamingOutputCallRequest(response_status=status)]))
    error = expect_code(lambda: list(duplex), grpc.StatusCode.UNKNOWN)
    expect(error.details() == "test status message", f"message {error.details()!r}")


def special_status_message(stub, channel):
    text = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n"
    status = messages_pb2.EchoStatus(code=2, message=text)
    error = expect_code(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status)), grpc.StatusCode.UNKNOWN)
    expect(error.details() == text, f"message {error.details()!r}")


def unimplemented_method(stub, channel):
    expect_code(lambda: stub.UnimplementedCall(empty_pb2.Empty()), grpc.StatusCode.UNIMPLEMENTED)


def unimplemented_service(stub, channel):
    other = test_pb2_grpc.UnimplementedServiceStub(channel)
    expect_code(lambda: other.UnimplementedCall(empty_pb2.Empty()), grpc.StatusCode.UNIMPLEMENTED)


def timeout_on_sleeping_server(stub, channel):
    gate = threading.Event()

    def requests():  # one request, then the client keeps the stream open: the server waits ("sleeps")
        yield messages_pb2.StreamingOutputCallRequest(payload=messages_pb2.Payload(body=b"\0" * 27182))
        gate.wait(5)

    duplex = stub.FullDuplexCall(requests(), timeout=0.001)
    expect_code(lambda: list(duplex), grpc.StatusCode.DEADLINE_EXCEEDED)
    gate.set()


def cancel_after_first_response(stub, channel):
    gate = threading.Event()

    def requests():
        yield messages_pb2.StreamingOutputCallRequest(response_parameters=[messages_pb2.ResponseParameters(size=31415)],
                                                      payload=messages_pb2.Payload(body=b"\0" * 27182))
        gate.wait(5)

    duplex = stub.FullDuplexCall(requests())
    first = next(duplex)
    expect(len(first.payload.body) == 31415, "first response size")
    duplex.cancel()
    gate.set()
    expect_code(lambda: next(duplex), grpc.StatusCode.CANCELLED)


def oversized_request(stub, channel):
    size = 5 * 1024 * 1024
    error = expect_code(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(payload=messages_pb2.Payload(body=b"\0" * size))),
                        grpc.StatusCode.RESOURCE_EXHAUSTED)
    expect("limit" in error.details(), f"message {error.details()!r}")


def oversized_response(stub, channel):
    error = expect_code(lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_size=5 * 1024 * 1024)),
                        grpc.StatusCode.RESOURCE_EXHAUSTED)
    expect("limit" in error.details(), f"message {error.details()!r}")


def health(stub, channel):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    health_stub = health_pb2_grpc.HealthStub(channel)
    serving = health_pb2.HealthCheckResponse.SERVING
    expect(health_stub.Check(health_pb2.HealthCheckRequest()).status == serving, "server not SERVING")
    expect(health_stub.Check(health_pb2.HealthCheckRequest(service="grpc.testing.TestService")).status == serving,
           "TestService not SERVING")
    expect_code(lambda: health_stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service")), grpc.StatusCode.NOT_FOUND)
    watch = health_stub.Watch(health_pb2.HealthCheckRequest(service="grpc.testing.TestService"))
    expect(next(watch).status == serving, "Watch did not start with SERVING")
    watch.cancel()


def reflection(stub, channel):
    from google.protobuf.descriptor_pool import DescriptorPool
    from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
    database = ProtoReflectionDescriptorDatabase(channel)
    services = set(database.get_services())
    for name in ("grpc.testing.TestService", "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"):
        expect(name in services, f"{name} not listed in {sorted(services)}")
    pool = DescriptorPool(database)
    method = pool.FindServiceByName("grpc.testing.TestService").FindMethodByName("UnaryCall")
    expect(method.input_type.full_name == "grpc.testing.SimpleRequest", f"input {method.input_type.full_name}")
    submit = pool.FindMethodByName("casebridge.v1.CaseExchange.SubmitRequest")
    expect(submit.output_type.fields_by_name["already_received"].number == 5, "SubmitReceipt.already_received")
    person = pool.FindMessageTypeByName("casebridge.v1.Person")
    expect("native_name" in person.fields_by_name, "Person.native_name")


CASES = {f.__name__: f for f in (empty_unary, large_unary, near_limit_unary, server_streaming, custom_metadata,
                                 status_code_and_message, special_status_message, unimplemented_method,
                                 unimplemented_service, timeout_on_sleeping_server, cancel_after_first_response,
                                 oversized_request, oversized_response, health, reflection)}


def run_client(args):
    credentials = grpc.ssl_channel_credentials(read(args.ca), read(args.key), read(args.cert))
    options = [("grpc.ssl_target_name_override", args.server_name),
               ("grpc.max_receive_message_length", 5 * 1024 * 1024), ("grpc.max_send_message_length", 8 * 1024 * 1024)]
    channel = grpc.secure_channel(f"127.0.0.1:{args.port}", credentials, options=options)
    stub = test_pb2_grpc.TestServiceStub(channel)
    failures = 0
    for name in args.cases:
        try:
            CASES[name](stub, channel)
            print(f"PASS {name}", flush=True)
        except Exception as error:  # one line per case, whatever went wrong
            failures += 1
            print(f"FAIL {name}: {type(error).__name__}: {error}".replace("\n", " "), flush=True)
    channel.close()
    sys.exit(1 if failures else 0)


# --- server --------------------------------------------------------------------------------------

class TestService(test_pb2_grpc.TestServiceServicer):
    def EmptyCall(self, request, context):
        return empty_pb2.Empty()

    def UnaryCall(self, request, context):
        self._echo(context)
        if request.response_status.code:
            context.abort(grpc.StatusCode(_code(request.response_status.code)), request.response_status.message)
        return messages_pb2.SimpleResponse(payload=messages_pb2.Payload(body=b"\0" * request.response_size))

    def StreamingOutputCall(self, request, context):
        self._echo(context)
        for parameters in request.response_parameters:
            if parameters.interval_us:
                time.sleep(parameters.interval_us / 1e6)
            yield messages_pb2.StreamingOutputCallResponse(payload=messages_pb2.Payload(body=b"\0" * parameters.size))
        if request.response_status.code:
            context.abort(grpc.StatusCode(_code(request.response_status.code)), request.response_status.message)

    def FullDuplexCall(self, request_iterator, context):
        self._echo(context)
        for request in request_iterator:
            if request.response_status.code:
                context.abort(grpc.StatusCode(_code(request.response_status.code)), request.response_status.message)
            for parameters in request.response_parameters:
                yield messages_pb2.StreamingOutputCallResponse(payload=messages_pb2.Payload(body=b"\0" * parameters.size))

    @staticmethod
    def _echo(context):
        metadata = dict(context.invocation_metadata())
        if ECHO_INITIAL in metadata:
            context.send_initial_metadata(((ECHO_INITIAL, metadata[ECHO_INITIAL]),))
        if ECHO_TRAILING in metadata:
            context.set_trailing_metadata(((ECHO_TRAILING, metadata[ECHO_TRAILING]),))


def _code(number):
    return next(c for c in grpc.StatusCode if c.value[0] == number).value


def run_server(args):
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    credentials = grpc.ssl_server_credentials([(read(args.key), read(args.cert))], root_certificates=read(args.ca),
                                              require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    print(f"PORT {port}", flush=True)
    sys.stdin.read()  # serve until the test closes our stdin
    server.stop(grace=1)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["client", "server"])
    parser.add_argument("--port", type=int)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--server-name", default=SERVER_NAME)
    parser.add_argument("cases", nargs="*")
    args = parser.parse_intermixed_args()
    if args.mode == "client":
        run_client(args)
    else:
        run_server(args)


if __name__ == "__main__":
    main()
