#!/usr/bin/env python3
"""A hostile federation member or stranger, for the node's hardening tests. Each subcommand is
one attack; it runs for a bounded time against 127.0.0.1 only and prints one JSON line saying
what the server did.

    hostile.py ATTACK --port P --ca CA [--cert CERT --key KEY] [--seconds S] [--count N]

ATTACK
  never-read        open a reflection stream with a huge window, send requests, never read
  ping-flood        send PING frames and never read the acks
  decode-bomb       SubmitRequest of 4 MiB holding ~2 million empty persons, N times or for S seconds (grpcio)
  list-flood        N threads calling ListCases (up to 10,000 summaries each) over and over (grpcio)
  rapid-reset       open streams and reset them at once, as fast as possible
  garbage           a valid preface, then bytes that are not HTTP/2 frames
  connection-hog    open N mutually authenticated connections and hold them
  strangers         N TCP connects that send nothing and close at once
  idle-strangers    N TCP connects that send nothing and stay open for S seconds
"""
import argparse
import json
import socket
import ssl
import struct
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

REFLECTION = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"
SUBMIT = "/casebridge.v1.CaseExchange/SubmitRequest"


def tls_socket(args, timeout=10, small_receive_buffer=False):
    """A mutually authenticated TLS socket to the node. A small receive buffer keeps the kernel
    from absorbing what the server sends to a client that never reads, so the server feels it."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(args.ca)
    context.check_hostname = False
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.set_alpn_protocols(["h2"])
    if args.cert:
        context.load_cert_chain(args.cert, args.key)
    raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if small_receive_buffer:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(timeout)
    raw.connect(("127.0.0.1", args.port))
    return context.wrap_socket(raw)


def h2_connection(sock, window=None):
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    conn.initiate_connection()
    if window:
        conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: window})
        conn.increment_flow_control_window(window - 65535)
    sock.sendall(conn.data_to_send())
    return conn


def grpc_headers(path):
    return [(":method", "POST"), (":scheme", "https"), (":path", path), (":authority", "ncct"),
            ("content-type", "application/grpc"), ("te", "trailers")]


def framed(message):
    return b"\0" + struct.pack(">I", len(message)) + message


def server_reaction(sock, conn, seconds=5):
    """Reads until the server closes or `seconds` pass; names what it said."""
    sock.settimeout(0.5)
    deadline = time.time() + seconds
    reaction = {"closed": False, "goaway": None, "resets": 0}
    while time.time() < deadline:
        try:
            data = sock.recv(65536)
        except (socket.timeout, ssl.SSLWantReadError):
            continue
        except OSError as error:
            reaction["closed"] = True
            reaction["error"] = str(error)
            break
        if not data:
            reaction["closed"] = True
            break
        try:
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ConnectionTerminated):
                    code = event.error_code
                    reaction["goaway"] = code.name if hasattr(code, "name") else str(code)
                    if event.additional_data:
                        reaction["goaway_data"] = event.additional_data.decode("utf-8", "replace")
                if isinstance(event, h2.events.StreamReset):
                    reaction["resets"] += 1
        except Exception as error:  # the server's bytes after its GOAWAY are not ours to judge
            reaction["h2_error"] = type(error).__name__
    return reaction


def never_read(args):
    sock = tls_socket(args, small_receive_buffer=True)
    conn = h2_connection(sock, window=2**31 - 1)
    server_reaction(sock, conn, seconds=0.5)  # learn the server's windows, then read no more
    stream = conn.get_next_available_stream_id()
    conn.send_headers(stream, grpc_headers(REFLECTION))
    name = b"casebridge/v1/case.proto"
    request = framed(b"\x1a" + bytes([len(name)]) + name)  # ServerReflectionRequest{file_by_filename}: ~10 KB back
    sent = 0
    deadline = time.time() + args.seconds
    sock.settimeout(2)
    closed = False
    while time.time() < deadline:
        if conn.local_flow_control_window(stream) < len(request) * 64:
            time.sleep(0.1)  # the server stopped reopening our window: it is holding us back
            continue
        conn.send_data(stream, request * 64)
        try:
            sock.sendall(conn.data_to_send())
        except OSError:
            closed = True
            break
        sent += 64
    # Now read: the server should have cut us off (or be holding only a bounded amount).
    reaction = server_reaction(sock, conn, seconds=3)
    reaction["closed"] = closed or reaction["closed"]
    print(json.dumps({"attack": "never-read", "requests_sent": sent, **reaction}))


def flood(args, name, count_label, queue_frames):
    """Sends what `queue_frames(conn)` queues, as fast as the socket takes it, reading nothing,
    then reads to see what the server did. `queue_frames` returns how many it queued."""
    sock = tls_socket(args, small_receive_buffer=True)
    conn = h2_connection(sock)
    sent = 0
    deadline = time.time() + args.seconds
    sock.settimeout(2)
    closed = False
    while time.time() < deadline and not closed:
        sent += queue_frames(conn)
        try:
            sock.sendall(conn.data_to_send())
        except OSError:
            closed = True
    reaction = server_reaction(sock, conn, seconds=3)
    reaction["closed"] = closed or reaction["closed"]
    print(json.dumps({"attack": name, count_label: sent, **reaction}))


def ping_flood(args):
    def pings(conn):
        for n in range(100):
            conn.ping(struct.pack(">Q", n))
        return 100
    flood(args, "ping-flood", "pings_sent", pings)


def decode_bomb(args):
    import grpc
    bomb = b"\x2a\x00" * (2 * 1024 * 1024 - 16)  # field 5 (persons), empty, ~2 million times
    credentials = grpc.ssl_channel_credentials(open(args.ca, "rb").read(), open(args.key, "rb").read(),
                                               open(args.cert, "rb").read())
    options = [("grpc.ssl_target_name_override", "ncct.casebridge.test"),
               ("grpc.max_send_message_length", 8 * 1024 * 1024)]
    codes, details = {}, {}
    slowest = 0.0
    with grpc.secure_channel(f"127.0.0.1:{args.port}", credentials, options) as channel:
        call = channel.unary_unary(SUBMIT, request_serializer=lambda b: b, response_deserializer=lambda b: b)
        deadline = time.time() + args.seconds
        for n in range(args.count):
            if n > 0 and time.time() > deadline:
                break
            started = time.time()
            try:
                call(bomb, timeout=30)
                code, detail = "OK", ""
            except grpc.RpcError as error:
                code, detail = error.code().name, error.details()
            slowest = max(slowest, time.time() - started)
            codes[code] = codes.get(code, 0) + 1
            details.setdefault(code, detail)
    print(json.dumps({"attack": "decode-bomb", "codes": codes, "details": details, "slowest_s": round(slowest, 3)}))


def list_flood(args):
    import threading
    import grpc
    credentials = grpc.ssl_channel_credentials(open(args.ca, "rb").read(), open(args.key, "rb").read(),
                                               open(args.cert, "rb").read())
    options = [("grpc.ssl_target_name_override", "ncct.casebridge.test")]
    codes, lock = {}, threading.Lock()
    request = b"\x18\x90\x4e"  # ListCasesRequest{limit: 10000}
    deadline = time.time() + args.seconds

    def work():
        with grpc.secure_channel(f"127.0.0.1:{args.port}", credentials, options) as channel:
            call = channel.unary_stream("/casebridge.v1.CaseExchange/ListCases", request_serializer=lambda b: b,
                                        response_deserializer=lambda b: b)
            while time.time() < deadline:
                try:
                    for _ in call(request, timeout=30):
                        pass
                    code = "OK"
                except grpc.RpcError as error:
                    code = error.code().name
                with lock:
                    codes[code] = codes.get(code, 0) + 1
    threads = [threading.Thread(target=work) for _ in range(args.count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps({"attack": "list-flood", "codes": codes}))


def rapid_reset(args):
    def open_and_reset(conn):
        for _ in range(50):
            stream = conn.get_next_available_stream_id()
            conn.send_headers(stream, grpc_headers(SUBMIT))
            conn.reset_stream(stream)
        return 50
    flood(args, "rapid-reset", "streams_reset", open_and_reset)


def garbage(args):
    sock = tls_socket(args)
    conn = h2_connection(sock)
    sock.sendall(b"\xff" * 9 + b"not an HTTP/2 frame" * 10)
    reaction = server_reaction(sock, conn, seconds=3)
    print(json.dumps({"attack": "garbage", **reaction}))


def connection_hog(args):
    held, refused = [], 0
    for _ in range(args.count):
        try:
            sock = tls_socket(args, timeout=5)
            conn = h2_connection(sock)
            reaction = server_reaction(sock, conn, seconds=0.3)
            if reaction["closed"] or reaction["goaway"]:
                refused += 1
                sock.close()
            else:
                held.append(sock)
        except OSError:
            refused += 1
    print(json.dumps({"attack": "connection-hog", "held": len(held), "refused": refused}), flush=True)
    time.sleep(args.seconds)
    for sock in held:
        sock.close()


def stranger_connection(args):
    """A plain TCP connection from args.source. Its port is picked at connect time for this
    address only (IP_BIND_ADDRESS_NO_PORT): tens of thousands of closed ones waiting out TIME_WAIT
    then leave the machine's other clients (from 127.0.0.1) ports to connect from."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.IPPROTO_IP, getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24), 1)
        sock.bind((args.source, 0))
        sock.settimeout(5)
        sock.connect(("127.0.0.1", args.port))
    except OSError:
        sock.close()
        raise
    return sock


def strangers(args):
    done = 0
    for _ in range(args.count):
        try:
            stranger_connection(args).close()
            done += 1
        except OSError:
            pass
    print(json.dumps({"attack": "strangers", "connects": done}))


def idle_strangers(args):
    held = []
    for _ in range(args.count):
        try:
            held.append(stranger_connection(args))
        except OSError:
            pass
    print(json.dumps({"attack": "idle-strangers", "held": len(held)}), flush=True)
    time.sleep(args.seconds)
    for sock in held:
        sock.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("attack")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--cert")
    parser.add_argument("--key")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--source", default="127.0.0.1", help="strangers' own address (another loopback one)")
    args = parser.parse_args()
    {"never-read": never_read, "ping-flood": ping_flood, "decode-bomb": decode_bomb, "list-flood": list_flood,
     "rapid-reset": rapid_reset,
     "garbage": garbage, "connection-hog": connection_hog, "strangers": strangers,
     "idle-strangers": idle_strangers}[args.attack](args)


if __name__ == "__main__":
    main()
