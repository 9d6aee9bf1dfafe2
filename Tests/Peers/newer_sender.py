#!/usr/bin/env python3
"""A newer embassy node's request: a valid InterventionRequest plus a field this version does not
know (number 99, "from-a-newer-node"), sent with grpcio as raw bytes.

    newer_sender.py PORT CERTS   prints the request id and the receipt's status
"""
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402
import casebridge_pb as pb  # noqa: E402

port, certs = sys.argv[1], sys.argv[2]
read = lambda p: open(os.path.join(certs, p), "rb").read()
request = pb.request.InterventionRequest(request_id=str(uuid.uuid4()), origin_node="embassy-id", kind=pb.request.REQUEST_KIND_TRACE,
                                         persons=[pb.request.Person(person_ref="P1", full_name="Newer Sender Test")])
unknown = b"\x9a\x06\x11from-a-newer-node"  # field 99, length-delimited
credentials = grpc.ssl_channel_credentials(read("ca.pem"), read("nodes/embassy-id.key"), read("nodes/embassy-id.pem"))
channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials, options=[("grpc.ssl_target_name_override", "ncct.casebridge.test")])
submit = channel.unary_unary("/casebridge.v1.CaseExchange/SubmitRequest", request_serializer=lambda raw: raw,
                             response_deserializer=pb.case.SubmitReceipt.FromString)
receipt = submit(request.SerializeToString() + unknown, timeout=10)
print(request.request_id, pb.case.CaseStatus.Name(receipt.status))
