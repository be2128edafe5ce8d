#!/usr/bin/python3
"""Flooding WebSocket server for the WebSocket client benchmark (mutewarden-ws-bench).

Plain sockets, no framework: frames are built once and sent in large `sendall` calls, which
release the GIL and run at memory speed, so the server is not what bounds the client's figure.
Prints `PORT <n>`, then for each connection: the handshake, `--count` text messages of `--size`
bytes, a close frame (1000), and it waits for the client's close.
"""

import argparse
import base64
import hashlib
import signal
import socket
import struct
import threading

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def frame(opcode, payload):
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + payload


def serve(connection, count, size):
    with connection:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = connection.recv(4096)
            if not chunk:
                return
            request += chunk
        key = b""
        for line in request.split(b"\r\n"):
            if line.lower().startswith(b"sec-websocket-key:"):
                key = line.split(b":", 1)[1].strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        connection.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        message = frame(0x1, b"x" * size)
        batch = 256
        block = message * batch
        for _ in range(count // batch):
            connection.sendall(block)
        connection.sendall(message * (count % batch))
        connection.sendall(frame(0x8, struct.pack("!H", 1000)))
        try:
            while connection.recv(65536):
                pass
        except OSError:
            pass


def main():
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--size", type=int, default=1024)
    args = parser.parse_args()
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    print("PORT", listener.getsockname()[1], flush=True)
    while True:
        connection, _ = listener.accept()
        threading.Thread(target=serve, args=(connection, args.count, args.size), daemon=True).start()


if __name__ == "__main__":
    main()
