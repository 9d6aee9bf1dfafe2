#!/usr/bin/env python3
"""A well-known implementation for comparison: Python grpcio serving CaseExchange.SubmitRequest
in memory (no storage), with the same mutual TLS as a node. Prints "PORT n", serves until stdin closes."""
import os
import sys
from concurrent import futures

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "Peers"))
import grpc  # noqa: E402
import casebridge_pb as pb  # noqa: E402


class Exchange(pb.exchange_grpc.CaseExchangeServicer):
    def __init__(self):
        self.seen = {}

    def SubmitRequest(self, request, context):
        receipt = pb.case.SubmitReceipt(request_id=request.request_id, case_id=request.request_id,
                                        status=pb.case.CASE_STATUS_RECEIVED, receiver_node="ncct",
                                        already_received=request.request_id in self.seen)
        self.seen[request.request_id] = True
        return receipt


def main():
    certs = sys.argv[1]
    read = lambda p: open(os.path.join(certs, p), "rb").read()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb.exchange_grpc.add_CaseExchangeServicer_to_server(Exchange(), server)
    credentials = grpc.ssl_server_credentials([(read("nodes/ncct.key"), read("nodes/ncct.pem"))],
                                              root_certificates=read("ca.pem"), require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    print(f"PORT {port}", flush=True)
    sys.stdin.read()
    server.stop(grace=1)


if __name__ == "__main__":
    main()
