#!/usr/bin/env python3
"""A TLS client that does what a CaseBridge node must refuse, with Python's ssl module.

    tls_probe.py PORT CA MODE [CERT KEY]
      MODE no-cert   TLS 1.3 and ALPN h2, but no client certificate
           tls12     a client that speaks at most TLS 1.2 (with a valid certificate)
           no-alpn   TLS 1.3 with a valid certificate, but no ALPN
           garbage   a valid connection that then sends a TLS record that does not decrypt (an error),
                     then a second connection offering the first one's ticket
           close     the same, but the first connection is closed in order: the control for "garbage"
Prints "ACCEPTED" if the server answered HTTP/2, else "REFUSED <reason>"; for garbage and close,
"RESUMED" or "FULL" for the second connection.
"""
import socket
import ssl
import sys
import time

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])  # preface + empty SETTINGS


def ended_then_resumed(port, context, error):
    """Whether a connection offering the ticket of one that ended in an error (or in order) resumes."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5)
    tls = context.wrap_socket(raw)
    tls.sendall(PREFACE)
    tls.recv(9)  # the server's SETTINGS: its ticket came before them
    session = tls.session
    if error:  # an application-data record of zeros, beside the TLS layer: the server cannot decrypt it
        with socket.socket(fileno=socket.dup(tls.fileno())) as raw:
            raw.sendall(bytes([23, 3, 3, 0, 32]) + bytes(32))
            time.sleep(0.3)
    tls.close()
    time.sleep(0.5)  # for the server to see the connection end
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            context.wrap_socket(raw, session=session) as tls:
        tls.sendall(PREFACE)
        tls.recv(9)
        return tls.session_reused


def main():
    port, ca, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca)
    context.check_hostname = False
    if mode != "no-alpn":
        context.set_alpn_protocols(["h2"])
    if mode == "tls12":
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    else:
        context.minimum_version = ssl.TLSVersion.TLSv1_3
    if mode != "no-cert":
        context.load_cert_chain(sys.argv[4], sys.argv[5])
    if mode in ("garbage", "close"):
        print("RESUMED" if ended_then_resumed(port, context, mode == "garbage") else "FULL")
        return
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with context.wrap_socket(raw) as tls:
                tls.sendall(PREFACE)
                data = tls.recv(9)
                if len(data) == 9 and data[3] == 4:  # a SETTINGS frame: the server speaks HTTP/2 to us
                    print("ACCEPTED")
                else:
                    print(f"REFUSED connection closed ({len(data)} bytes)")
    except (ssl.SSLError, OSError) as error:
        print(f"REFUSED {error}")


if __name__ == "__main__":
    main()
