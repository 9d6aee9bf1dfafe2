#!/usr/bin/env python3
"""An NCCT node written from proto/ alone, with grpcio, in memory: the independent implementation
`casebridge conformance --as embassy` is tried against. With --break RULE it breaks one rule of the
contract on purpose, so the tests can show the kit naming it.

    fake_ncct.py --ca CA --cert CERT --key KEY --caller NODE_ID [--break RULE]
        prints "PORT n" and serves until its standard input closes.

It trusts that every caller is --caller (it does not read the client certificate's SAN): enough
for a conformance peer, not for a real node.
"""
import argparse
import re
import sys
import time
from concurrent import futures

import os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import grpc  # noqa: E402
from grpc_health.v1 import health, health_pb2, health_pb2_grpc  # noqa: E402
import casebridge_pb as pb  # noqa: E402

R, C, X = pb.request, pb.case, pb.exchange
BREAKS = ["submit-idempotency", "reused-request-id", "unknown-fields", "update-idempotency", "gap-trailer",
          "refusal-blocks", "skipped", "entered-in-error", "role"]
OPEN = {C.CASE_STATUS_RECEIVED, C.CASE_STATUS_ACKNOWLEDGED, C.CASE_STATUS_IN_PROGRESS, C.CASE_STATUS_INFO_REQUESTED,
        C.CASE_STATUS_ON_HOLD}
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


class Refusal(Exception):
    def __init__(self, code, message, trailer=None):
        super().__init__(message)
        self.code, self.message, self.trailer = code, message, trailer


def now_ms():
    return int(time.time() * 1000)


class Case:
    def __init__(self, request, raw):
        self.request, self.raw = request, raw
        self.status = C.CASE_STATUS_RECEIVED
        self.persons = [C.PersonState(person_ref=p.person_ref, status=C.PERSON_STATUS_PENDING) for p in request.persons]
        self.entries = {}  # sequence -> (update_id, raw bytes or b"", refusal (code name, reason) or None)
        self.order = []  # sequences in the order they were taken
        self.created = self.updated = now_ms()


class FakeNCCT:
    def __init__(self, caller, broken):
        self.caller, self.broken, self.cases = caller, broken, {}

    # -- SubmitRequest ------------------------------------------------------------------------
    def submit(self, raw, context):
        request = R.InterventionRequest.FromString(raw)
        if request.origin_node != self.caller:
            raise Refusal(grpc.StatusCode.PERMISSION_DENIED, f"origin_node {request.origin_node} is not the caller")
        for i, person in enumerate(request.persons):
            if person.phone and not E164.match(person.phone):
                raise Refusal(grpc.StatusCode.INVALID_ARGUMENT, f"persons[{i}].phone: must be E.164")
        case = self.cases.get(request.request_id)
        if case:
            if case.request != request and "reused-request-id" not in self.broken:
                raise Refusal(grpc.StatusCode.ALREADY_EXISTS, "request_id was already used for other content")
            again = "submit-idempotency" not in self.broken
            return C.SubmitReceipt(request_id=request.request_id, case_id=request.request_id, status=case.status,
                                   already_received=again, receiver_node="ncct", received_at_ms=case.created)
        self.cases[request.request_id] = Case(request, raw)
        return C.SubmitReceipt(request_id=request.request_id, case_id=request.request_id,
                               status=C.CASE_STATUS_RECEIVED, receiver_node="ncct", received_at_ms=now_ms())

    # -- PushUpdate ---------------------------------------------------------------------------
    def push(self, raw, context):
        update = C.CaseUpdate.FromString(raw)
        if update.actor_node != self.caller:
            raise Refusal(grpc.StatusCode.PERMISSION_DENIED, "actor_node is not the caller")
        case = self.cases.get(update.case_id)
        if case is None:
            raise Refusal(grpc.StatusCode.NOT_FOUND, f"no case {update.case_id}")
        change = update.WhichOneof("change")
        if change in ("step_change", "person_outcomes", "information_request"):
            raise Refusal(grpc.StatusCode.PERMISSION_DENIED, "only NCCT makes this change")
        if change == "status_change" and update.status_change.to_status != C.CASE_STATUS_ENTERED_IN_ERROR \
                and "role" not in self.broken:
            raise Refusal(grpc.StatusCode.PERMISSION_DENIED, "an embassy may only set entered_in_error")
        for sequence, (update_id, stored, refusal) in case.entries.items():
            if update_id == update.update_id:
                first = C.CaseUpdate.FromString(stored)
                del first.skipped_sequences[:]
                again = C.CaseUpdate()
                again.CopyFrom(update)
                del again.skipped_sequences[:]
                if first != again:
                    raise Refusal(grpc.StatusCode.ALREADY_EXISTS, "update_id was already used for other content")
                if "update-idempotency" in self.broken:
                    raise Refusal(grpc.StatusCode.ALREADY_EXISTS, "sequence already taken")
                if refusal:
                    raise Refusal(getattr(grpc.StatusCode, refusal[0]), refusal[1])
                return C.UpdateReceipt(update_id=update.update_id, case_id=update.case_id, sequence=sequence,
                                       already_applied=True, status=case.status, applied_at_ms=now_ms())
        last = max(case.entries) if case.entries else 0
        if update.sequence <= last:
            raise Refusal(grpc.StatusCode.ALREADY_EXISTS, "sequence already taken",
                          ("casebridge-expected-sequence", str(last + 1)))
        skipped = set() if "skipped" in self.broken else set(update.skipped_sequences)
        missing = last + 1
        while missing < update.sequence and missing in skipped:
            missing += 1
        if missing != update.sequence:
            trailer = None if "gap-trailer" in self.broken else ("casebridge-expected-sequence", str(missing))
            raise Refusal(grpc.StatusCode.FAILED_PRECONDITION, f"sequence gap: expected {missing}", trailer)
        for sequence in range(last + 1, update.sequence):
            case.entries[sequence] = (f"skipped/{sequence}", b"", ("SKIPPED", "the sender gave up on it"))
            case.order.append(sequence)
        try:
            self.apply(case, update, change)
        except Refusal as refusal:
            if "refusal-blocks" not in self.broken:
                case.entries[update.sequence] = (update.update_id, raw, (refusal.code.name, refusal.message))
                case.order.append(update.sequence)
            raise
        case.entries[update.sequence] = (update.update_id, raw, None)
        case.order.append(update.sequence)
        case.updated = now_ms()
        return C.UpdateReceipt(update_id=update.update_id, case_id=update.case_id, sequence=update.sequence,
                               status=case.status, applied_at_ms=now_ms())

    def apply(self, case, update, change):
        terminal = case.status not in OPEN
        if change == "note":
            return
        if change == "information_provided":
            if terminal:
                raise Refusal(grpc.StatusCode.FAILED_PRECONDITION, "the case takes only notes")
            if case.status == C.CASE_STATUS_INFO_REQUESTED:
                case.status = C.CASE_STATUS_ACKNOWLEDGED
        elif change == "withdrawal":
            if case.status != C.CASE_STATUS_WITHDRAWN:
                if terminal:
                    raise Refusal(grpc.StatusCode.FAILED_PRECONDITION, "the case cannot be withdrawn now")
                case.status = C.CASE_STATUS_WITHDRAWN
        elif change == "status_change":
            to = update.status_change.to_status
            if to == C.CASE_STATUS_ENTERED_IN_ERROR and "entered-in-error" in self.broken and terminal:
                raise Refusal(grpc.StatusCode.FAILED_PRECONDITION, "the case is closed")
            case.status = to
        else:
            raise Refusal(grpc.StatusCode.INVALID_ARGUMENT, "change: an update must carry one change")

    # -- Reads --------------------------------------------------------------------------------
    def get_case(self, request, context):
        case = self.cases.get(request.case_id)
        if case is None:
            raise Refusal(grpc.StatusCode.NOT_FOUND, f"no case {request.case_id}")
        view = C.Case(case_id=request.case_id, status=case.status, persons=case.persons,
                      requesting_node=case.request.origin_node, created_at_ms=case.created, updated_at_ms=case.updated)
        out = view.SerializeToString()
        request_bytes = case.raw
        if "unknown-fields" in self.broken:
            copy = R.InterventionRequest.FromString(case.raw)
            copy.DiscardUnknownFields()
            request_bytes = copy.SerializeToString()
        out += field(2, request_bytes)
        for sequence in case.order:
            update_id, stored, refusal = case.entries[sequence]
            if refusal is None:
                out += field(7, stored)
        for sequence in case.order:
            update_id, stored, refusal = case.entries[sequence]
            if refusal is not None:
                skipped = refusal[0] == "SKIPPED"
                entry = C.RefusedUpdate(update_id="" if skipped else update_id, actor_node=self.caller, sequence=sequence,
                                        code=refusal[0], reason=refusal[1]).SerializeToString()
                out += field(12, entry + (b"" if skipped else field(7, stored)))
        return out

    def list_cases(self, request, context):
        # As the contract says: most recently updated first, then by case id; after the cursor; a page.
        listed = sorted(self.cases.items(), key=lambda item: (-item[1].updated, item[0]))
        if request.HasField("after"):
            cursor = (-request.after.updated_at_ms, request.after.case_id)
            listed = [item for item in listed if (-item[1].updated, item[0]) > cursor]
        listed = [item for item in listed if item[1].updated >= request.updated_since_ms]
        for case_id, case in listed[:min(request.limit or 100, 10000)]:
            yield C.CaseSummary(case_id=case_id, requesting_node=case.request.origin_node, kind=case.request.kind,
                                status=case.status, person_count=len(case.persons),
                                embassy_sequence=max(case.entries) if case.entries else 0, test=case.request.test,
                                created_at_ms=case.created, updated_at_ms=case.updated)


def varint(value):
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def field(number, data):
    return varint(number << 3 | 2) + varint(len(data)) + data


def answering(handler):
    def run(request, context):
        try:
            return handler(request, context)
        except Refusal as refusal:
            if refusal.trailer:
                context.set_trailing_metadata((refusal.trailer,))
            context.abort(refusal.code, refusal.message)
    return run


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--caller", required=True)
    parser.add_argument("--break", dest="broken", action="append", default=[], choices=BREAKS)
    args = parser.parse_args()
    fake = FakeNCCT(args.caller, set(args.broken))
    identity = lambda b: b
    handlers = grpc.method_handlers_generic_handler("casebridge.v1.CaseExchange", {
        "SubmitRequest": grpc.unary_unary_rpc_method_handler(answering(fake.submit), request_deserializer=identity,
                                                             response_serializer=C.SubmitReceipt.SerializeToString),
        "PushUpdate": grpc.unary_unary_rpc_method_handler(answering(fake.push), request_deserializer=identity,
                                                          response_serializer=C.UpdateReceipt.SerializeToString),
        "GetCase": grpc.unary_unary_rpc_method_handler(answering(fake.get_case),
                                                       request_deserializer=X.GetCaseRequest.FromString,
                                                       response_serializer=identity),
        "ListCases": grpc.unary_stream_rpc_method_handler(fake.list_cases,
                                                          request_deserializer=X.ListCasesRequest.FromString,
                                                          response_serializer=C.CaseSummary.SerializeToString),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handlers,))
    checker = health.HealthServicer()
    checker.set("casebridge.v1.CaseExchange", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(checker, server)
    read = lambda p: open(p, "rb").read()
    credentials = grpc.ssl_server_credentials([(read(args.key), read(args.cert))], root_certificates=read(args.ca),
                                              require_client_auth=True)
    port = server.add_secure_port("127.0.0.1:0", credentials)
    server.start()
    print(f"PORT {port}", flush=True)
    sys.stdin.read()
    server.stop(grace=1)


if __name__ == "__main__":
    main()
