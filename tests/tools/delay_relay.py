#!/usr/bin/env python3
"""A TCP relay that delays every chunk by a fixed time, in both directions.

    delay_relay.py LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_MS[:FOR_MS] [LISTEN_HOST:PORT=TARGET_HOST:PORT ...]

The kernel here has no netem qdisc, so the partition tests delay one link with this relay: the node
on one end is configured to reach its peer through it. With FOR_MS, only what passes within FOR_MS
of a connection's start is delayed; later chunks go through at once. It serves until killed."""
import socket
import sys
import threading
import time


def pump(src, dst, delay):
    delay, until = delay
    until = time.monotonic() + until if until is not None else None
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if until is None or time.monotonic() < until:
                time.sleep(delay)
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(listen, target, delay):
    lh, lp = listen.rsplit(":", 1)
    th, tp = target.rsplit(":", 1)
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((lh, int(lp)))
    srv.listen(64)
    while True:
        client, _ = srv.accept()
        try:
            upstream = socket.create_connection((th, int(tp)), timeout=2)
            upstream.settimeout(None)
        except OSError:
            client.close()
            continue
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=pump, args=(a, b, delay), daemon=True).start()


def main():
    spec = sys.argv[3].split(":")
    delay = (int(spec[0]) / 1000.0, int(spec[1]) / 1000.0 if len(spec) > 1 else None)
    pairs = [(sys.argv[1], sys.argv[2])] + [tuple(p.split("=")) for p in sys.argv[4:]]
    for listen, target in pairs[1:]:
        threading.Thread(target=serve, args=(listen, target, delay), daemon=True).start()
    serve(pairs[0][0], pairs[0][1], delay)


if __name__ == "__main__":
    main()
