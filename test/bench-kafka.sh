#!/usr/bin/env bash
# test/bench-kafka.sh: `make bench` against the real 3-node Apache Kafka cluster
# (started here if it is not running, stopped again if this script started it),
# then Kafka's own ProducerPerformance and ConsumerPerformance straight to the cluster and through
# kguard, alternating rounds (PERF_RECORDS records per run). Arguments go to test/bench, e.g.
# `-perf-only` (the Kafka tools' table alone), `-perf-scenario authorization`, `-rounds 3`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash test/deps.sh
started=0
if ! bash test/kafka/cluster.sh status >/dev/null 2>&1; then
	bash test/kafka/cluster.sh start
	started=1
fi
trap '[[ $started == 1 ]] && bash test/kafka/cluster.sh stop' EXIT
eval "$(bash test/kafka/cluster.sh env)"
go run ./test/bench -brokers "$KGUARD_TEST_KAFKA_PLAINTEXT" -perf-tool "${PERF_RECORDS:-100000}" "$@"
