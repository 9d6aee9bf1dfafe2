#!/usr/bin/env python3
"""The official protobuf runtime's side of the codec agreement test.

    codec_peer.py write DIR   encode every sample into DIR/<name>.py.bin
    codec_peer.py check DIR   decode DIR/<name>.swift.bin and compare with the sample

The samples are built here independently of the Swift ones (Tests/CaseBridgeProtoTests/
Samples.swift); the two lists must describe the same values.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import casebridge_pb as pb  # noqa: E402
from grpc_health.v1 import health_pb2  # noqa: E402
from grpc_reflection.v1alpha import reflection_pb2  # noqa: E402

R, C = pb.request, pb.case


def person_khmer():
    return R.Person(person_ref="P1", full_name="Sok Chantha", native_name="សុខ ចាន់ធា", other_names=["Tha", "ចាន់"],
                    nationality="KH", date_of_birth="2001-03-09", sex=R.SEX_FEMALE, phone="+85512345678",
                    languages=["km"], minor=False, needs=["interpreter"], description="red shirt, building B")


def person_chinese():
    return R.Person(person_ref="P2", full_name="Wang Xiaoming", native_name="王小明", nationality="CN",
                    date_of_birth="1999", sex=R.SEX_MALE, languages=["zh-Hans", "en"],
                    travel_document=R.TravelDocument(number="E12345678", issuing_country="CN", kind="passport",
                                                     withheld=True))


def scripts_request():
    return R.InterventionRequest(
        request_id="7d3f2c4e-0b1a-4c5d-9e8f-112233445566", origin_node="embassy-cn", kind=R.REQUEST_KIND_RESCUE,
        urgency=R.URGENCY_IMMEDIATE, persons=[person_khmer(), person_chinese()],
        location=R.Location(province="Preah Sihanouk", district="Prey Nob", site_name="Golden Fortune compound",
                            address="Street 7", coordinates=R.GeoPoint(latitude=10.627, longitude=103.522, accuracy_m=50),
                            detail="4th floor"),
        summary="Contact by messenger 🙏; passports taken; «urgent» — ត្រូវការជំនួយ",
        indicators=[R.CONTROL_INDICATOR_DOCUMENTS_WITHHELD, R.CONTROL_INDICATOR_DETENTION],
        source=R.InformationSource(kind=R.SOURCE_KIND_FAMILY, description="mother's call", received_at_ms=1795000000000),
        consent=R.Consent(basis=R.CONSENT_BASIS_VITAL_INTEREST, note="no contact possible"),
        created_at_ms=1795000100000, origin_reference="CN-PP-2026-0412", contact="Consular desk")


def batch_500():
    persons = []
    for i in range(500):
        persons.append(R.Person(
            person_ref=f"P{i:03d}", full_name=f"Person {i}", nationality="ID",
            date_of_birth=f"{1980 + i % 25}-{1 + i % 12:02d}-{1 + i % 28:02d}", sex=R.SEX_FEMALE if i % 2 else R.SEX_MALE,
            phone=f"+6281200{i:05d}", languages=["id"], minor=i % 7 == 0, needs=["medical"] if i % 11 == 0 else []))
    return R.InterventionRequest(request_id="00000000-0000-4000-8000-000000000500", origin_node="embassy-id",
                                 kind=R.REQUEST_KIND_REPATRIATION, urgency=R.URGENCY_URGENT, persons=persons)


def maximal():
    return R.InterventionRequest(
        request_id="ffffffff-ffff-4fff-bfff-ffffffffffff", origin_node="e" * 64, kind=99, urgency=R.URGENCY_ROUTINE,
        persons=[R.Person(person_ref="X" * 64, full_name="A" * 1000, native_name="ក" * 500, sex=R.SEX_OTHER, minor=True,
                          travel_document=R.TravelDocument())],
        location=R.Location(coordinates=R.GeoPoint(latitude=-90.0, longitude=180.0, accuracy_m=4294967295)),
        summary="x" * 20000, indicators=list(range(1, 11)) + [42],
        source=R.InformationSource(kind=R.SOURCE_KIND_OTHER, received_at_ms=-1),
        created_at_ms=9223372036854775807)


def update_outcomes():
    return C.CaseUpdate(update_id="a1b2c3d4-0000-4000-8000-000000000001", case_id="7d3f2c4e-0b1a-4c5d-9e8f-112233445566",
                        sequence=18446744073709551615, actor_node="ncct", occurred_at_ms=1795000200000, author="Officer Dara",
                        person_outcomes=C.PersonOutcomes(outcomes=[
                            C.PersonOutcome(person_ref="P1", status=C.PERSON_STATUS_RESCUED, note="safe"),
                            C.PersonOutcome(person_ref="P2", status=C.PERSON_STATUS_NOT_FOUND)]))


def update_withdrawal():
    # An empty message set in a oneof must still arrive as set.
    return C.CaseUpdate(update_id="a1b2c3d4-0000-4000-8000-000000000002", case_id="c", sequence=1, actor_node="embassy-cn",
                        withdrawal=C.Withdrawal())


def full_case():
    return C.Case(
        case_id="7d3f2c4e-0b1a-4c5d-9e8f-112233445566", request=scripts_request(), status=C.CASE_STATUS_IN_PROGRESS,
        step=C.BUSINESS_STEP_SHELTERED,
        persons=[C.PersonState(person_ref="P1", status=C.PERSON_STATUS_SHELTERED, updated_at_ms=1795000300000),
                 C.PersonState(person_ref="P2", status=C.PERSON_STATUS_NOT_FOUND, note="moved")],
        outcome_counts=[C.OutcomeCount(status=C.PERSON_STATUS_SHELTERED, count=1),
                        C.OutcomeCount(status=C.PERSON_STATUS_NOT_FOUND, count=1)],
        history=[update_outcomes(), update_withdrawal()],
        deliveries=[C.Delivery(message_id="a1b2c3d4-0000-4000-8000-000000000001", peer_node="embassy-cn",
                               state=C.DELIVERY_STATE_RETRY_WAITING, attempts=3,
                               last_error="UNAVAILABLE: connection refused", queued_at_ms=1,
                               next_attempt_at_ms=2)],
        requesting_node="embassy-cn", created_at_ms=1795000100000, updated_at_ms=1795000300000)


def reflection_response():
    return reflection_pb2.ServerReflectionResponse(
        original_request=reflection_pb2.ServerReflectionRequest(file_containing_symbol="casebridge.v1.CaseExchange"),
        file_descriptor_response=reflection_pb2.FileDescriptorResponse(file_descriptor_proto=[bytes(range(256)), b""]))


SAMPLES = {
    "empty_request": R.InterventionRequest(),
    "scripts_request": scripts_request(),
    "batch_500": batch_500(),
    "maximal": maximal(),
    "update_outcomes": update_outcomes(),
    "update_withdrawal": update_withdrawal(),
    "full_case": full_case(),
    "reflection_response": reflection_response(),
    "health_serving": health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING),
}


def differences(expected, actual):
    names = {f.name for f, _ in expected.ListFields()} | {f.name for f, _ in actual.ListFields()}
    return sorted(n for n in names if getattr(expected, n) != getattr(actual, n))


def main():
    mode, folder = sys.argv[1], sys.argv[2]
    failures = 0
    for name, sample in SAMPLES.items():
        if mode == "write":
            with open(os.path.join(folder, f"{name}.py.bin"), "wb") as fh:
                fh.write(sample.SerializeToString())
            continue
        with open(os.path.join(folder, f"{name}.swift.bin"), "rb") as fh:
            decoded = type(sample)()
            decoded.ParseFromString(fh.read())
        if decoded == sample:
            print(f"ok {name}")
        else:
            failures += 1
            print(f"mismatch {name}: fields {', '.join(differences(sample, decoded))}")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
