#!/usr/bin/env bash
# test/compat/perf.sh: Kafka's own load generators (ProducerPerformance, ConsumerPerformance
# from the kafka-tools jar in test/kafka/lib), for benchmarks direct and through kguard.
#
#   perf.sh producer --bootstrap HOST:PORT --topic T --records N [--record-size 1024]
#                    [--payload-file F] [--throughput R] [--acks all] [--prop key=value ...]
#   perf.sh consumer --bootstrap HOST:PORT --topic T --records N [--group G] [--timeout S]
#                    [--prop key=value ...]
#   common:          [--security-protocol P] [--sasl-mechanism M] [--username U]
#                    [--password P] [--ca-file PEM]
#
# Output, unchanged from the tools:
#   producer: the final summary line on stdout ("N records sent, X records/sec (Y MB/sec),
#             A ms avg latency, M ms max latency, ... ms 50th, ... ms 95th, ... ms 99th,
#             ... ms 99.9th."); the progress lines go to stderr.
#   consumer: the tool's header line and its one result line ("start.time, end.time,
#             data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec, ...").
# --throughput defaults to -1 (no throttle); --record-size and --throughput are ignored by
# the consumer. --payload-file: the values are lines of F, picked at random by the tool,
# instead of random bytes of --record-size. The password may come from KGUARD_COMPAT_PASSWORD; it goes to the tool in a
# 0600 properties file, never in argv. Exit status: the tool's, or 1 if it printed no summary
# or the consumer read fewer than N records before --timeout (default 60 s).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA="$HERE/../kafka"
LIB="$KAFKA/lib"

usage() {
	sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	echo "perf.sh: $*" >&2
	exit 2
}

MODE="${1:-}"
[[ "$MODE" == producer || "$MODE" == consumer ]] || usage "first argument must be producer or consumer"
shift
BOOTSTRAP="" TOPIC="" RECORDS="" SIZE=1024 PAYLOAD="" THROUGHPUT=-1 ACKS=all GROUP="" TIMEOUT=60
PROTOCOL=PLAINTEXT MECHANISM=SCRAM-SHA-512 USERNAME="" PASSWORD="${KGUARD_COMPAT_PASSWORD:-}" CAFILE=""
PROPS=()
while (($#)); do
	(($# >= 2)) || usage "missing value for $1"
	case "$1" in
	--bootstrap) BOOTSTRAP="$2" ;;
	--topic) TOPIC="$2" ;;
	--records) RECORDS="$2" ;;
	--record-size) SIZE="$2" ;;
	--payload-file) PAYLOAD="$2" ;;
	--throughput) THROUGHPUT="$2" ;;
	--acks) ACKS="$2" ;;
	--group) GROUP="$2" ;;
	--timeout) TIMEOUT="$2" ;;
	--prop) PROPS+=("$2") ;;
	--security-protocol) PROTOCOL="$2" ;;
	--sasl-mechanism) MECHANISM="$2" ;;
	--username) USERNAME="$2" ;;
	--password) PASSWORD="$2" ;;
	--ca-file) CAFILE="$2" ;;
	*) usage "unknown argument $1" ;;
	esac
	shift 2
done
[[ -n "$BOOTSTRAP" && -n "$TOPIC" ]] || usage "--bootstrap and --topic are required"
[[ "$RECORDS" =~ ^[1-9][0-9]*$ ]] || usage "--records must be a positive integer"
[[ "$SIZE" =~ ^[1-9][0-9]*$ ]] || usage "--record-size must be a positive integer"
[[ "$THROUGHPUT" =~ ^-?[0-9]+$ ]] || usage "--throughput must be an integer (-1: unthrottled)"
[[ "$TIMEOUT" =~ ^[1-9][0-9]*$ ]] || usage "--timeout must be whole seconds"
case "$PROTOCOL" in PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL) ;; *) usage "bad --security-protocol $PROTOCOL" ;; esac
if [[ "$PROTOCOL" == SASL* && (-z "$USERNAME" || -z "$PASSWORD") ]]; then
	usage "SASL needs --username and --password (or KGUARD_COMPAT_PASSWORD)"
fi
compgen -G "$LIB/kafka-tools-*.jar" >/dev/null || {
	echo "perf.sh: no kafka-tools jar in $LIB (run test/deps.sh)" >&2
	exit 1
}

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
CONF="$TMP/client.properties"
jaas_escape() { sed 's/\\/\\\\/g; s/"/\\"/g' <<<"$1"; }
(
	umask 077
	{
		echo "security.protocol=$PROTOCOL"
		if [[ "$PROTOCOL" == SASL* ]]; then
			module=org.apache.kafka.common.security.plain.PlainLoginModule
			[[ "$MECHANISM" == SCRAM* ]] && module=org.apache.kafka.common.security.scram.ScramLoginModule
			echo "sasl.mechanism=$MECHANISM"
			# a properties file: backslashes must be doubled once more
			printf 'sasl.jaas.config=%s required username="%s" password="%s";\n' "$module" \
				"$(jaas_escape "$USERNAME" | sed 's/\\/\\\\/g')" "$(jaas_escape "$PASSWORD" | sed 's/\\/\\\\/g')"
		fi
		if [[ "$PROTOCOL" == *SSL && -n "$CAFILE" ]]; then
			echo "ssl.truststore.type=PEM"
			echo "ssl.truststore.location=$CAFILE"
		fi
		for p in "${PROPS[@]}"; do echo "$p"; done
	} >"$CONF"
)

JAVA=(java -cp "$LIB/*" -Xms256m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20
	-Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA/log4j2-tools.properties")

VALUES=(--record-size "$SIZE")
if [[ -n "$PAYLOAD" ]]; then
	[[ -r "$PAYLOAD" ]] || usage "cannot read --payload-file $PAYLOAD"
	VALUES=(--payload-file "$PAYLOAD")
fi
status=0
if [[ "$MODE" == producer ]]; then
	"${JAVA[@]}" org.apache.kafka.tools.ProducerPerformance \
		--bootstrap-server "$BOOTSTRAP" --topic "$TOPIC" --num-records "$RECORDS" \
		"${VALUES[@]}" --throughput "$THROUGHPUT" \
		--command-config "$CONF" --command-property "acks=$ACKS" >"$TMP/out" || status=$?
	# progress lines to stderr, the summary (the line with the percentiles) to stdout
	grep -v ' 50th' "$TMP/out" >&2 || true
	summary="$(grep ' 50th' "$TMP/out" | tail -n1 || true)"
else
	"${JAVA[@]}" org.apache.kafka.tools.ConsumerPerformance \
		--bootstrap-server "$BOOTSTRAP" --topic "$TOPIC" --num-records "$RECORDS" \
		--group "${GROUP:-perf-consumer-$RANDOM$RANDOM}" --timeout $((TIMEOUT * 1000)) \
		--command-config "$CONF" >"$TMP/out" || status=$?
	# the header and the result line to stdout, anything else (warnings) to stderr
	grep -vE '^(start\.time,|[0-9]{4}-)' "$TMP/out" >&2 || true
	header="$(grep -m1 '^start\.time,' "$TMP/out" || true)"
	result="$(grep -E '^[0-9]{4}-' "$TMP/out" | tail -n1 || true)"
	summary=""
	if [[ -n "$header" && -n "$result" ]]; then
		summary="$header"$'\n'"$result"
		# ConsumerPerformance exits 0 when its timeout cuts it short; a shortfall is a failure
		got="$(awk -F', ' '{ print $5 }' <<<"$result")"
		if ! [[ "$got" =~ ^[0-9]+$ ]] || ((got < RECORDS)); then
			echo "perf.sh: consumer read $got of $RECORDS records before its timeout" >&2
			((status)) || status=1
		fi
	fi
fi
if [[ -z "$summary" ]]; then
	cat "$TMP/out" >&2
	echo "perf.sh: $MODE printed no summary (exit $status)" >&2
	exit $((status ? status : 1))
fi
echo "$summary"
exit "$status"
