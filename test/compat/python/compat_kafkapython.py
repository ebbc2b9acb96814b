#!/usr/bin/env python3
"""Compatibility check with kafka-python (pure Python client): create, metadata,
idempotent acks=all produce, group consume, commit, committed offsets. See compat_common.py."""

import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import kafka  # noqa: E402
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer  # noqa: E402
from kafka.structs import OffsetAndMetadata, TopicPartition  # noqa: E402

from compat_common import Numbering, Reporter, Tally, deadline, parse_args  # noqa: E402


def base_conf(a):
    c = {
        "bootstrap_servers": a.bootstrap.split(","),
        "client_id": "kguard-compat-kafkapython",
        "security_protocol": a.security_protocol,
        "request_timeout_ms": int(a.timeout * 1000),
    }
    if a.security_protocol.startswith("SASL"):
        c["sasl_mechanism"] = a.sasl_mechanism
        c["sasl_plain_username"] = a.username
        c["sasl_plain_password"] = a.password
    if a.security_protocol.endswith("SSL"):
        c["ssl_cafile"] = a.ca_file
        c["ssl_check_hostname"] = True
    return c


def main():
    logging.basicConfig(stream=sys.stderr, level=logging.ERROR)
    a = parse_args("compat_kafkapython.py")
    rep = Reporter("kafka-python", kafka.__version__)
    conf = base_conf(a)
    tmo = a.timeout
    tmo_ms = int(tmo * 1000)
    admin = None
    consumer = None
    numbering = Numbering(a.count)
    tally = Tally(numbering)
    committed = {}

    def get_admin():
        nonlocal admin
        if admin is None:
            admin = KafkaAdminClient(**conf)
        return admin

    def topic_partitions():
        topics = get_admin().describe_topics([a.topic])
        t = next((t for t in topics if t.get("name", t.get("topic")) == a.topic), None)
        if t is None:
            raise LookupError("topic %s not in metadata" % a.topic)
        if t.get("error_code", 0) != 0:
            raise RuntimeError("topic %s: error code %d" % (a.topic, t["error_code"]))
        return t["partitions"]

    def create():
        get_admin().create_topics({a.topic: {"num_partitions": 3, "replication_factor": 3}},
                                  timeout_ms=tmo_ms)
        more = deadline(tmo)
        while True:
            try:
                parts = topic_partitions()
                if len(parts) == 3 and all(p.get("leader_id", p.get("leader", -1)) >= 0 for p in parts):
                    return "created %s with 3 partitions, replication factor 3" % a.topic
            except (LookupError, RuntimeError):
                pass
            if not more():
                raise TimeoutError("topic created but not visible with leaders in metadata")

    def metadata():
        cluster = get_admin().describe_cluster()
        brokers = sorted("%s:%d" % (b["host"], b["port"]) for b in cluster["brokers"])
        if not brokers:
            raise AssertionError("no brokers listed")
        n = len(topic_partitions())
        if n != a.partitions:
            raise AssertionError("topic %s has %d partitions, want %d" % (a.topic, n, a.partitions))
        return "topic %s present, %d partitions, %d brokers" % (a.topic, n, len(brokers)), brokers

    def produce():
        p = KafkaProducer(enable_idempotence=True, acks="all", linger_ms=5, **conf)
        try:
            futures = [p.send(a.topic, key=numbering.key(i), value=numbering.value(i)) for i in range(a.count)]
            p.flush(timeout=tmo)
            acked, errors = 0, []
            for f in futures:
                try:
                    f.get(timeout=tmo)
                    acked += 1
                except Exception as e:  # a failed delivery
                    errors.append("%s: %s" % (type(e).__name__, e))
        finally:
            p.close(timeout=tmo)
        if errors or acked != a.count:
            raise AssertionError("%d/%d acknowledged, errors: %s" % (acked, a.count, errors[:3]))
        return "%d records acknowledged (idempotent, acks=all)" % a.count

    def consume():
        nonlocal consumer
        consumer = KafkaConsumer(group_id=a.group, auto_offset_reset="earliest",
                                 enable_auto_commit=False, **conf)
        consumer.subscribe([a.topic])
        more = deadline(tmo)
        while not tally.complete() and more():
            for tp, msgs in consumer.poll(timeout_ms=500).items():
                for m in msgs:
                    tally.add(tp.partition, m.offset, m.value)
        return "group %s: %s" % (a.group, tally.check())

    def commit():
        offsets = {TopicPartition(a.topic, p): OffsetAndMetadata(o, "", -1)
                   for p, o in sorted(tally.next_offsets.items())}
        if not offsets:
            raise AssertionError("nothing to commit")
        consumer.commit(offsets=offsets, timeout_ms=tmo_ms)
        for tp, om in offsets.items():
            committed[tp.partition] = om.offset
        return "committed %s" % {str(p): o for p, o in sorted(committed.items())}

    def offsets():
        got = {}
        for p in range(a.partitions):
            o = consumer.committed(TopicPartition(a.topic, p), timeout_ms=tmo_ms)
            if o is not None:
                got[p] = o
        for p, o in committed.items():
            if got.get(p) != o:
                raise AssertionError("partition %d: committed %d, fetched %s" % (p, o, got.get(p)))
        return "fetched committed offsets %s" % {str(p): o for p, o in sorted(got.items())}

    steps = ([("create", create)] if a.create else []) + [
        ("metadata", metadata), ("produce", produce), ("consume", consume),
        ("commit", commit), ("offsets", offsets)]
    try:
        for op, fn in steps:
            if not rep.run(op, fn):
                break
    finally:
        if consumer is not None:
            consumer.close()
        if admin is not None:
            admin.close()
    rep.exit()


if __name__ == "__main__":
    main()
