#!/usr/bin/env python3
"""syscall_overhead.py: the lesson of syscall_overhead.c, in Python.

Lesson: system-call overhead. os.write() is a thin wrapper over write(2):
one call per byte is one system call per byte. A buffered file object
(open(..., 'wb', buffering=65536)) gathers the bytes and writes them
in large chunks.
libspy should report: unbuffered-io for the `bytes` mode (python3 is an
ordinary dynamically linked program, so LD_PRELOAD works on it); nothing
for `buffered`.
Run:  python3 demos/syscall_overhead.py [bytes|buffered|all] [N] [FILE]
      LD_PRELOAD=./libspy.so python3 demos/syscall_overhead.py bytes
      spy python3 demos/syscall_overhead.py
Output: mode and counts are deterministic; the time (after a tab) is not.
"""
import os
import sys
import time


def payload(n):
    line = bytes(range(ord("a"), ord("a") + 26)) * 3
    out = bytearray()
    while len(out) < n:
        out += line[:63] + b"\n"
    return bytes(out[:n])


def write_bytes(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for i in range(len(data)):
            os.write(fd, data[i:i + 1])      # the bug: one system call per byte
    finally:
        os.close(fd)
    return len(data)


BUF_SIZE = 64 * 1024


def write_buffered(path, data):
    with open(path, "wb", buffering=BUF_SIZE) as f:   # a 64 KiB buffer
        for i in range(len(data)):
            f.write(data[i:i + 1])           # same loop, but into the buffer
    return -(-len(data) // BUF_SIZE)         # one write per full buffer


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "all"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 100000
    path = sys.argv[3] if len(sys.argv) > 3 else "/dev/null"
    modes = {"bytes": write_bytes, "buffered": write_buffered}
    chosen = list(modes) if mode == "all" else [mode]
    if any(m not in modes for m in chosen):
        print("usage: syscall_overhead.py [bytes|buffered|all] [N] [FILE]", file=sys.stderr)
        return 2
    data = payload(n)
    for m in chosen:
        t0 = time.perf_counter()
        calls = modes[m](path, data)
        t1 = time.perf_counter()
        print("%-9s %d bytes in %d write calls\t%.3f ms" % (m, n, calls, (t1 - t0) * 1e3))
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
