#!/usr/bin/env python3
"""Reads cases back from a node with grpcio, as another agency's stack would, and checks that what
the node returns is what was sent.

    faithful_reads.py newer PORT CERTS
        As embassy-id: submits a request and a note, each with a field this version does not know
        (number 99), then reads the case back and checks that GetCase returns both byte for byte.
        Connects to 127.0.0.1 without overriding the server name (the certificates carry the IP).
        Prints "ok CASE_ID".
    faithful_reads.py read PORT CERTS AS CASE_ID
        Reads one case as node AS with a 64 MiB receive limit; prints "persons=N history=M bytes=B".
"""
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402
import casebridge_pb as pb  # noqa: E402

UNKNOWN = b"\x9a\x06\x11from-a-newer-node"  # field 99, length-delimited


def channel(port, certs, node):
    read = lambda p: open(os.path.join(certs, p), "rb").read()
    credentials = grpc.ssl_channel_credentials(read("ca.pem"), read(f"nodes/{node}.key"), read(f"nodes/{node}.pem"))
    return grpc.secure_channel(f"127.0.0.1:{port}", credentials,
                               options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)])


def varint(data, i):
    value, shift = 0, 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def raw_fields(data, number):
    """The bytes of every length-delimited field `number` at the top level of `data`."""
    found, i = [], 0
    while i < len(data):
        tag, i = varint(data, i)
        kind = tag & 7
        if kind == 0:
            _, i = varint(data, i)
        elif kind == 1:
            i += 8
        elif kind == 5:
            i += 4
        elif kind == 2:
            length, i = varint(data, i)
            if tag >> 3 == number:
                found.append(data[i:i + length])
            i += length
        else:
            raise SystemExit(f"wire type {kind} in a Case")
    return found


def get_case(chan, case_id):
    get = chan.unary_unary("/casebridge.v1.CaseExchange/GetCase", request_serializer=lambda m: m.SerializeToString(),
                           response_deserializer=lambda raw: raw)
    return get(pb.exchange.GetCaseRequest(case_id=case_id), timeout=60)


def newer(port, certs):
    chan = channel(port, certs, "embassy-id")
    case_id = str(uuid.uuid4())
    request = pb.request.InterventionRequest(request_id=case_id, origin_node="embassy-id", kind=pb.request.REQUEST_KIND_TRACE,
                                             persons=[pb.request.Person(person_ref="P1", full_name="Newer Sender Test")])
    request_bytes = request.SerializeToString() + UNKNOWN
    update = pb.case.CaseUpdate(update_id=str(uuid.uuid4()), case_id=case_id, sequence=1, actor_node="embassy-id",
                                occurred_at_ms=1, note=pb.case.Note(text="from a newer node"))
    update_bytes = update.SerializeToString() + UNKNOWN
    raw = lambda method, out: chan.unary_unary(method, request_serializer=lambda b: b, response_deserializer=out.FromString)
    raw("/casebridge.v1.CaseExchange/SubmitRequest", pb.case.SubmitReceipt)(request_bytes, timeout=10)
    raw("/casebridge.v1.CaseExchange/PushUpdate", pb.case.UpdateReceipt)(update_bytes, timeout=10)
    case = get_case(chan, case_id)
    if raw_fields(case, 2) != [request_bytes]:
        raise SystemExit("GetCase did not return the request byte for byte")
    if raw_fields(case, 7) != [update_bytes]:
        raise SystemExit("GetCase did not return the update byte for byte")
    # The official runtime reads it as a Case, and keeps the unknown field too.
    parsed = pb.case.Case.FromString(case)
    if parsed.request.persons[0].person_ref != "P1" or UNKNOWN not in parsed.request.SerializeToString():
        raise SystemExit("the official runtime lost the request's unknown field")
    print("ok", case_id)


def read(port, certs, node, case_id):
    case = get_case(channel(port, certs, node), case_id)
    parsed = pb.case.Case.FromString(case)
    print(f"persons={len(parsed.persons)} history={len(parsed.history)} bytes={len(case)}")


if __name__ == "__main__":
    mode = sys.argv[1]
    if mode == "newer":
        newer(sys.argv[2], sys.argv[3])
    elif mode == "read":
        read(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    else:
        raise SystemExit(__doc__)
