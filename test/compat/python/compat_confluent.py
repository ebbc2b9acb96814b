#!/usr/bin/env python3
"""Compatibility check with confluent-kafka (librdkafka): create, metadata, idempotent
acks=all produce, group consume, commit, committed offsets. See compat_common.py."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import confluent_kafka  # noqa: E402
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition  # noqa: E402
from confluent_kafka.admin import AdminClient, NewTopic  # noqa: E402

from compat_common import Numbering, Reporter, Tally, deadline, parse_args  # noqa: E402


def base_conf(a):
    c = {
        "bootstrap.servers": a.bootstrap,
        "client.id": "kguard-compat-confluent",
        "security.protocol": a.security_protocol,
    }
    if a.security_protocol.startswith("SASL"):
        c["sasl.mechanisms"] = a.sasl_mechanism
        c["sasl.username"] = a.username
        c["sasl.password"] = a.password
    if a.security_protocol.endswith("SSL") and a.ca_file:
        c["ssl.ca.location"] = a.ca_file
    return c


def main():
    a = parse_args("compat_confluent.py")
    rep = Reporter("confluent-kafka", "%s (librdkafka %s)" % (confluent_kafka.version()[0] if isinstance(confluent_kafka.version(), tuple) else confluent_kafka.version(), confluent_kafka.libversion()[0]))
    conf = base_conf(a)
    admin = AdminClient(conf)
    tmo = a.timeout

    def topic_metadata():
        md = admin.list_topics(topic=a.topic, timeout=tmo)
        t = md.topics.get(a.topic)
        if t is None:
            raise LookupError("topic %s not in metadata" % a.topic)
        if t.error is not None:
            raise RuntimeError("topic %s: %s" % (a.topic, t.error))
        return md, t

    def create():
        fs = admin.create_topics([NewTopic(a.topic, num_partitions=3, replication_factor=3)],
                                 operation_timeout=tmo, request_timeout=tmo)
        fs[a.topic].result(timeout=tmo)
        # the topic is created; wait until metadata shows every partition with a leader
        more = deadline(tmo)
        while True:
            try:
                _, t = topic_metadata()
                if len(t.partitions) == 3 and all(p.leader >= 0 for p in t.partitions.values()):
                    return "created %s with 3 partitions, replication factor 3" % a.topic
            except (LookupError, RuntimeError):
                pass
            if not more():
                raise TimeoutError("topic created but not visible with leaders in metadata")

    def metadata():
        md, t = topic_metadata()
        brokers = sorted("%s:%d" % (b.host, b.port) for b in md.brokers.values())
        if not brokers:
            raise AssertionError("no brokers listed")
        n = len(t.partitions)
        if n != a.partitions:
            raise AssertionError("topic %s has %d partitions, want %d" % (a.topic, n, a.partitions))
        return "topic %s present, %d partitions, %d brokers" % (a.topic, n, len(brokers)), brokers

    numbering = Numbering(a.count)

    def produce():
        p = Producer(dict(conf, **{"enable.idempotence": True, "acks": "all", "linger.ms": 5}))
        errors = []
        acked = [0]

        def on_delivery(err, msg):
            if err is not None:
                errors.append(str(err))
            else:
                acked[0] += 1

        for i in range(a.count):
            while True:
                try:
                    p.produce(a.topic, key=numbering.key(i), value=numbering.value(i), on_delivery=on_delivery)
                    break
                except BufferError:
                    p.poll(0.1)
            p.poll(0)
        left = p.flush(tmo)
        if left or errors or acked[0] != a.count:
            raise AssertionError("%d/%d acknowledged, %d unflushed, errors: %s" % (acked[0], a.count, left, errors[:3]))
        return "%d records acknowledged (idempotent, acks=all)" % a.count

    consumer = Consumer(dict(conf, **{
        "group.id": a.group,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }))
    tally = Tally(numbering)

    def consume():
        consumer.subscribe([a.topic])
        more = deadline(tmo)
        while not tally.complete() and more():
            msg = consumer.poll(0.5)
            if msg is None:
                continue
            if msg.error() is not None:
                if msg.error().code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(str(msg.error()))
            tally.add(msg.partition(), msg.offset(), msg.value())
        return "group %s: %s" % (a.group, tally.check())

    committed = {}

    def commit():
        offsets = [TopicPartition(a.topic, p, o) for p, o in sorted(tally.next_offsets.items())]
        res = consumer.commit(offsets=offsets, asynchronous=False)
        for tp in res or []:
            if tp.error is not None:
                raise RuntimeError("partition %d: %s" % (tp.partition, tp.error))
            committed[tp.partition] = tp.offset
        if not committed:
            raise AssertionError("nothing committed")
        return "committed %s" % {str(p): o for p, o in sorted(committed.items())}

    def offsets():
        tps = [TopicPartition(a.topic, p) for p in range(a.partitions)]
        got = {tp.partition: tp.offset for tp in consumer.committed(tps, timeout=tmo)}
        for p, o in committed.items():
            if got.get(p) != o:
                raise AssertionError("partition %d: committed %d, fetched %s" % (p, o, got.get(p)))
        return "fetched committed offsets %s" % {str(p): o for p, o in sorted(got.items()) if o >= 0}

    steps = ([("create", create)] if a.create else []) + [
        ("metadata", metadata), ("produce", produce), ("consume", consume),
        ("commit", commit), ("offsets", offsets)]
    try:
        for op, fn in steps:
            if not rep.run(op, fn):
                break
    finally:
        consumer.close()
    rep.exit()


if __name__ == "__main__":
    main()
