"""Server CPU per mutually authenticated TLS 1.3 handshake, full and resumed (a TLS 1.3 ticket),
for any server on loopback. The client is Python's ssl module: it connects, sends the HTTP/2
preface, reads the server's SETTINGS (the ticket comes before them) and closes, one connection at
a time, so the server's CPU over the run divided by the connections is what one handshake costs it
(with accepting and closing the connection)."""
import socket
import ssl
import time


def connect_many(port, certs, count, resume):
    """Opens `count` connections one after another; returns how many resumed a session."""
    context = ssl.create_default_context(cafile=f"{certs}/ca.pem")
    context.check_hostname = False
    context.load_cert_chain(f"{certs}/nodes/embassy-id.pem", f"{certs}/nodes/embassy-id.key")
    context.set_alpn_protocols(["h2"])
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    session, resumed = None, 0
    for _ in range(count):
        sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port)), session=session if resume else None)
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        sock.recv(65536)
        resumed += sock.session_reused
        session = sock.session
        sock.close()
    return resumed


def measure(name, port, pid, certs, cpu_seconds, count=1000):
    """Rows for full and resumed handshakes against the server `pid` listening on `port`."""
    rows = []
    for resume in (False, True):
        connect_many(port, certs, 50, resume)  # warm-up
        before, started = cpu_seconds(pid), time.time()
        resumed = connect_many(port, certs, count, resume)
        cpu, seconds = cpu_seconds(pid) - before, time.time() - started
        rows.append({"workload": f"{name}_handshake_{'resumed' if resume else 'full'}", "connections": count,
                     "resumed": resumed, "connections_per_s": round(count / seconds),
                     "server_cpu_us_per_handshake": round(cpu * 1e6 / count)})
    return rows
