#!/usr/bin/env python3
"""Writes the fuzzers' seed corpora (checked in; run again only when the contract changes).

    make_seeds.py CASEBRIDGE_FUZZ_BINARY

decode/          one file per sample message of Tests/Peers/codec_peer.py (the official Python
                 runtime's encoding), prefixed with the selector byte the harness reads
server-session/  HTTP/2 client sessions after the preface, built with Python's h2: health,
                 reflection and submit calls, pings, settings, resets, window updates
"""
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "Peers"))
import codec_peer  # noqa: E402
import h2.connection  # noqa: E402
import h2.config  # noqa: E402


def decode_seeds(binary):
    names = subprocess.run([binary, "--message-types"], check=True, capture_output=True, text=True).stdout.split()
    folder = os.path.join(HERE, "corpus", "decode")
    for name, sample in codec_peer.SAMPLES.items():
        selector = names.index(sample.DESCRIPTOR.full_name)
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(bytes([selector]) + sample.SerializeToString())


def framed(message):
    return b"\0" + struct.pack(">I", len(message)) + message


def session(build):
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    build(conn)
    data = conn.data_to_send()
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    return b"\0" + data[len(preface):]  # the selector byte (split at 0), then the frames


def call(path, message):
    def build(conn):
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, [(":method", "POST"), (":scheme", "https"), (":path", path), (":authority", "ncct"),
                                   ("content-type", "application/grpc"), ("te", "trailers"), ("grpc-timeout", "5S")])
        conn.send_data(stream, framed(message), end_stream=True)
    return build


def server_session_seeds():
    folder = os.path.join(HERE, "corpus", "server-session")
    request = codec_peer.scripts_request().SerializeToString()
    seeds = {
        "health": call("/grpc.health.v1.Health/Check", b""),
        "reflection": call("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", b"\x3a\x00"),
        "submit": call("/casebridge.v1.CaseExchange/SubmitRequest", request),
        "unknown_method": call("/casebridge.v1.CaseExchange/Nope", b""),
        "ping": lambda conn: conn.ping(b"12345678"),
        "settings": lambda conn: conn.update_settings({4: 1 << 20, 3: 10}),
        "window_update": lambda conn: conn.increment_flow_control_window(1 << 20),
    }

    def reset(conn):
        call("/casebridge.v1.CaseExchange/SubmitRequest", request)(conn)
        conn.reset_stream(1)
    seeds["reset"] = reset
    for name, build in seeds.items():
        with open(os.path.join(folder, name), "wb") as fh:
            fh.write(session(build))


if __name__ == "__main__":
    decode_seeds(sys.argv[1])
    server_session_seeds()
