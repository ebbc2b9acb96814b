"""Shared command line, record numbering and output for the Python compatibility programs.

Every program of test/compat takes the same arguments and prints one JSON line per
operation on stdout (see docs/testing-kafka.md):

    {"client": "...", "version": "...", "op": "create|metadata|produce|consume|commit|offsets",
     "ok": true, "detail": "...", "brokers": ["host:port", ...]}   # brokers: metadata only

Diagnostics go to stderr. The exit status is non-zero when any operation failed.
"""

import argparse
import json
import os
import sys
import time
import uuid

OPS = ("create", "metadata", "produce", "consume", "commit", "offsets")


def parse_args(prog):
    p = argparse.ArgumentParser(prog=prog, description="kguard client compatibility check")
    p.add_argument("--bootstrap", required=True, help="HOST:PORT[,HOST:PORT...]")
    p.add_argument("--topic", required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--count", type=int, required=True, help="records to produce and consume")
    p.add_argument("--create", action="store_true", help="create the topic (3 partitions, RF 3) first")
    p.add_argument("--partitions", type=int, default=3,
                   help="partition count the metadata must show (default 3)")
    p.add_argument("--security-protocol", default="PLAINTEXT",
                   choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
    p.add_argument("--sasl-mechanism", default="SCRAM-SHA-512")
    p.add_argument("--username")
    p.add_argument("--password", help="or KGUARD_COMPAT_PASSWORD in the environment")
    p.add_argument("--ca-file", help="PEM CA for SSL / SASL_SSL")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds per operation")
    a = p.parse_args()
    if a.count <= 0:
        p.error("--count must be positive")
    if a.password is None:
        a.password = os.environ.get("KGUARD_COMPAT_PASSWORD")
    if a.security_protocol.startswith("SASL") and (not a.username or not a.password):
        p.error("SASL needs --username and --password (or KGUARD_COMPAT_PASSWORD)")
    return a


class Reporter:
    """Prints one JSON line per operation and remembers whether any failed."""

    def __init__(self, client, version):
        self.client = client
        self.version = version
        self.failed = False

    def report(self, op, ok, detail, brokers=None):
        line = {"client": self.client, "version": self.version, "op": op, "ok": bool(ok), "detail": detail}
        if brokers is not None:
            line["brokers"] = brokers
        if not ok:
            self.failed = True
        print(json.dumps(line), flush=True)
        return ok

    def run(self, op, fn):
        """Runs fn() -> (detail[, brokers]); an exception is a failed operation."""
        try:
            res = fn()
        except Exception as e:  # report every failure as a line, never a traceback on stdout
            return self.report(op, False, "%s: %s" % (type(e).__name__, e))
        if isinstance(res, tuple):
            return self.report(op, True, *res)
        return self.report(op, True, res)

    def exit(self):
        sys.exit(1 if self.failed else 0)


class Numbering:
    """Numbered record values that are unique to one run: "<run>:<i>".

    A topic may hold records of earlier runs; the consumer counts only this run's.
    """

    def __init__(self, count):
        self.run = uuid.uuid4().hex[:12]
        self.count = count

    def key(self, i):
        return str(i).encode()

    def value(self, i):
        return ("%s:%d" % (self.run, i)).encode()

    def parse(self, value):
        """Returns the record number, or None for a record of another run."""
        if value is None:
            return None
        try:
            run, _, num = value.decode().partition(":")
            if run != self.run:
                return None
            return int(num)
        except (UnicodeDecodeError, ValueError):
            return None


class Tally:
    """Checks consumed records: each number once, in produce order within a partition."""

    def __init__(self, numbering):
        self.numbering = numbering
        self.seen = {}
        self.dups = 0
        self.out_of_order = 0
        self.last = {}  # partition -> last number seen
        self.next_offsets = {}  # partition -> last consumed offset + 1 (any run's record)

    def add(self, partition, offset, value):
        self.next_offsets[partition] = max(self.next_offsets.get(partition, 0), offset + 1)
        n = self.numbering.parse(value)
        if n is None:
            return
        if n in self.seen:
            self.dups += 1
            return
        self.seen[n] = partition
        if self.last.get(partition, -1) > n:
            self.out_of_order += 1
        self.last[partition] = n

    def complete(self):
        return len(self.seen) == self.numbering.count

    def check(self):
        missing = self.numbering.count - len(self.seen)
        per = {}
        for p in self.seen.values():
            per[p] = per.get(p, 0) + 1
        detail = "%d/%d records received, %d duplicates, %d out of order, per partition %s" % (
            len(self.seen), self.numbering.count, self.dups, self.out_of_order,
            json.dumps({str(k): per[k] for k in sorted(per)}))
        if missing or self.dups or self.out_of_order:
            raise AssertionError(detail)
        return detail


def deadline(seconds):
    end = time.monotonic() + seconds
    return lambda: time.monotonic() < end
