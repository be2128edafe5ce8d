"""Raw-socket clients that misbehave as no HTTP library will: the ingress tests run them.

Each command prints one result line per finding, read by IngressAbuseTests.swift.
"""
import socket
import sys
import threading
import time


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def read_status(s, timeout):
    """The status code of the answer, 'closed' if the server closed first, 'timeout' if silent."""
    s.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = s.recv(4096)
            if not chunk:
                return "closed" if not data else data.decode(errors="replace")
            data += chunk
    except socket.timeout:
        return "timeout"
    except ConnectionResetError:
        return "closed"
    return data.split(b" ")[1].decode()


def headers_only(port, path, length, token):
    """Sends a request's headers, never its body, and reports the answer."""
    s = connect(port)
    auth = f"Authorization: Bearer {token}\r\n" if token != "-" else ""
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n".encode())
    print("STATUS", read_status(s, 10), flush=True)


def headers_then_body(port, path, length, token, delay):
    """Headers, then waits `delay` seconds before the body: a deferred decision's window."""
    s = connect(port)
    auth = f"Authorization: Bearer {token}\r\n" if token != "-" else ""
    s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Length: {length}\r\n\r\n".encode())
    print("HEADERS-SENT", flush=True)
    status = read_status(s, float(delay))
    if status != "timeout":
        print("STATUS", status, "BEFORE-BODY", flush=True)
        return
    s.sendall(b"x" * int(length))
    print("STATUS", read_status(s, 10), "AFTER-BODY", flush=True)


def slowloris(port, interval, limit):
    """Trickles a request's head, one byte per interval, until the server closes or `limit` s pass."""
    s = connect(port)
    head = b"POST /callbacks/test HTTP/1.1\r\nHost: x\r\n" + b"X-Padding: " + b"a" * 4000
    started = time.monotonic()
    for byte in head:
        if time.monotonic() - started > float(limit):
            print("STILL-OPEN", flush=True)
            return
        try:
            s.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            break
        s.settimeout(float(interval))
        try:
            if s.recv(4096) == b"":
                break
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
    print("CUT-OFF after %.1f s" % (time.monotonic() - started), flush=True)


def flood(port, path, count, concurrency):
    """`count` unauthenticated POSTs with bodies, from `concurrency` threads, one connection each."""
    results = {}
    lock = threading.Lock()
    remaining = [int(count)]

    def worker():
        while True:
            with lock:
                if remaining[0] == 0:
                    return
                remaining[0] -= 1
            try:
                s = connect(port)
                body = b'{"forged":"payload-body-marker"}'
                s.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer forged-token-marker\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body)
                status = read_status(s, 10)
                s.close()
            except OSError as error:
                status = type(error).__name__
            with lock:
                results[status] = results.get(status, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(int(concurrency))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for status, n in sorted(results.items()):
        print("RESULT", status, n, flush=True)


def cap(port, n):
    """Opens n idle connections, then one more: reports whether the extra one is served."""
    held = [connect(port) for _ in range(int(n))]
    time.sleep(0.3)
    extra = connect(port)
    try:
        extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        print("EXTRA", read_status(extra, 5), flush=True)
    except (BrokenPipeError, ConnectionResetError):
        print("EXTRA closed", flush=True)
    # One of the held ones is still served.
    held[0].sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    print("HELD", read_status(held[0], 5), flush=True)
    for s in held:
        s.close()
    extra.close()


if __name__ == "__main__":
    command, arguments = sys.argv[1], sys.argv[2:]
    port = int(arguments[0])
    {"headers-only": headers_only, "headers-then-body": headers_then_body, "slowloris": slowloris,
     "flood": flood, "cap": cap}[command](port, *arguments[1:])
