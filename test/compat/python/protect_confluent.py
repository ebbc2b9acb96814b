"""Transactional, gzip-compressed produce with confluent-kafka (librdkafka), for the data
protection test of test/compat (TestDataProtectionRealClients).

    protect_confluent.py --bootstrap HOST:PORT --topic T --payload-file F --abort-file A
                         --username U --sasl-mechanism M [--timeout S]
    protect_confluent.py --defaults --bootstrap HOST:PORT --topic T --payload-file F --username U

With --defaults, every line of F is produced by a producer with librdkafka's default settings
(batching, no compression, no transaction) and no abort file is read (TestProtectionDefaultBatches).

Every line of F is produced in one committed transaction; then every line of A in a
second transaction that is aborted. The password comes from KGUARD_COMPAT_PASSWORD. It
prints one JSON line {"committed": n, "aborted": m, "version": "..."} and exits non-zero
on any error.
"""

import argparse
import json
import os
import sys
import uuid

import confluent_kafka


def lines(path):
    with open(path, "rb") as f:
        return [line.rstrip(b"\n") for line in f if line.strip()]


def main():
    p = argparse.ArgumentParser(prog="protect_confluent.py")
    p.add_argument("--bootstrap", required=True)
    p.add_argument("--topic", required=True)
    p.add_argument("--payload-file", required=True)
    p.add_argument("--abort-file")
    p.add_argument("--defaults", action="store_true")
    p.add_argument("--username", required=True)
    p.add_argument("--sasl-mechanism", default="SCRAM-SHA-512")
    p.add_argument("--timeout", type=float, default=60.0)
    a = p.parse_args()
    password = os.environ.get("KGUARD_COMPAT_PASSWORD")
    if not password:
        p.error("KGUARD_COMPAT_PASSWORD is not set")

    errors = []

    def delivered(err, _msg):
        if err is not None:
            errors.append(str(err))

    conn = {
        "bootstrap.servers": a.bootstrap,
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": a.sasl_mechanism,
        "sasl.username": a.username,
        "sasl.password": password,
    }
    if a.defaults:
        prod = confluent_kafka.Producer(conn)
        values = lines(a.payload_file)
        for i, v in enumerate(values):
            while True:
                try:
                    prod.produce(a.topic, value=v, key=str(i).encode(), on_delivery=delivered)
                    break
                except BufferError:  # local queue full: let deliveries drain
                    prod.poll(0.1)
            prod.poll(0)
        left = prod.flush(a.timeout)
        if errors or left:
            print("delivery errors: %s, %d undelivered" % (errors[:5], left), file=sys.stderr)
            return 1
        print(json.dumps({"produced": len(values), "version": "confluent-kafka %s (librdkafka %s)" % (
            confluent_kafka.version()[0], confluent_kafka.libversion()[0])}))
        return 0
    if not a.abort_file:
        p.error("--abort-file is required without --defaults")

    prod = confluent_kafka.Producer({
        "bootstrap.servers": a.bootstrap,
        "client.id": "kguard-compat-protect-confluent",
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanisms": a.sasl_mechanism,
        "sasl.username": a.username,
        "sasl.password": password,
        "transactional.id": "compat-enc-tx-" + uuid.uuid4().hex[:8],
        "compression.type": "gzip",
        "linger.ms": 20,
    })
    prod.init_transactions(a.timeout)

    committed = lines(a.payload_file)
    prod.begin_transaction()
    for i, v in enumerate(committed):
        prod.produce(a.topic, value=v, key=str(i).encode(), on_delivery=delivered)
        prod.poll(0)
    prod.commit_transaction(a.timeout)

    aborted = lines(a.abort_file)
    prod.begin_transaction()
    for i, v in enumerate(aborted):
        prod.produce(a.topic, value=v, key=("abort-%d" % i).encode(), on_delivery=delivered)
        prod.poll(0)
    prod.flush(a.timeout)  # the records reach the log before the abort marker
    prod.abort_transaction(a.timeout)

    if errors:
        print("delivery errors: %s" % errors[:5], file=sys.stderr)
        return 1
    print(json.dumps({"committed": len(committed), "aborted": len(aborted),
                      "version": "confluent-kafka %s (librdkafka %s)" % (
                          confluent_kafka.version()[0], confluent_kafka.libversion()[0])}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
