#!/usr/bin/env bash
# test/compat/kcat.sh: compatibility check with kcat (librdkafka), same CLI and output as the
# other programs of test/compat (see docs/testing-kafka.md):
#
#   kcat.sh --bootstrap HOST:PORT --topic T --group G --count N [--create] [--partitions 3]
#           [--security-protocol PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL] [--sasl-mechanism M]
#           [--username U] [--password P] [--ca-file PEM] [--timeout S]
#           [--librdkafka system|pypi] [--property KEY=VALUE]...
#
# --property adds a librdkafka setting to every kcat run (e.g. broker.address.family=v4).
# kcat has no admin API: --create is ignored (a note on stderr, no "create" line); the topic
# must exist. The operations, each printed as one JSON line on stdout:
#   metadata  kcat -L -J -t T: topic present, partition count, the brokers it lists
#   produce   kcat -P with enable.idempotence=true, acks=all; N numbered records "RUN:i" keyed i
#             (kcat exits non-zero when any delivery fails)
#   consume   kcat -G G (balanced consumer group, auto.offset.reset=earliest) to the end of
#             every partition; each of this run's numbers once, in order within a partition
#   commit    the offsets kcat -G commits when it closes (enable.auto.commit, librdkafka's
#             commit on close); checked by the next operation
#   offsets   kcat -C -o stored with group.id G (an OffsetFetch for the group), auto commit
#             off: where it starts in each partition must be the offset after the last
#             record consumed above
#
# --librdkafka pypi runs the same kcat binary with the newer librdkafka bundled in the
# confluent-kafka wheel (Debian 12's librdkafka 2.0.2 cannot do SCRAM against Kafka 4.x
# brokers: it repeats the client nonce, fixed in librdkafka 2.6.1). The password may come
# from KGUARD_COMPAT_PASSWORD; it is passed to kcat in a 0600 config file, never in argv.
set -euo pipefail

usage() {
	sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
	echo "kcat.sh: $*" >&2
	exit 2
}

BOOTSTRAP="" TOPIC="" GROUP="" COUNT="" PARTITIONS=3 PROTOCOL=PLAINTEXT MECHANISM=SCRAM-SHA-512
USERNAME="" PASSWORD="${KGUARD_COMPAT_PASSWORD:-}" CAFILE="" TIMEOUT=60 LIBRDKAFKA=system
PROPS=()
while (($#)); do
	case "$1" in
	--create)
		echo "kcat.sh: kcat has no admin API; --create ignored, the topic must exist" >&2
		shift
		continue
		;;
	--bootstrap | --topic | --group | --count | --partitions | --security-protocol | --sasl-mechanism | --username | --password | --ca-file | --timeout | --librdkafka | --property)
		(($# >= 2)) || usage "missing value for $1"
		;;
	*) usage "unknown argument $1" ;;
	esac
	case "$1" in
	--bootstrap) BOOTSTRAP="$2" ;;
	--topic) TOPIC="$2" ;;
	--group) GROUP="$2" ;;
	--count) COUNT="$2" ;;
	--partitions) PARTITIONS="$2" ;;
	--security-protocol) PROTOCOL="$2" ;;
	--sasl-mechanism) MECHANISM="$2" ;;
	--username) USERNAME="$2" ;;
	--password) PASSWORD="$2" ;;
	--ca-file) CAFILE="$2" ;;
	--timeout) TIMEOUT="$2" ;;
	--librdkafka) LIBRDKAFKA="$2" ;;
	--property)
		[[ "$2" == ?*=* ]] || usage "--property wants KEY=VALUE"
		PROPS+=("$2")
		;;
	esac
	shift 2
done
[[ -n "$BOOTSTRAP" && -n "$TOPIC" && -n "$GROUP" ]] || usage "--bootstrap, --topic and --group are required"
[[ "$COUNT" =~ ^[1-9][0-9]*$ ]] || usage "--count must be a positive integer"
[[ "$PARTITIONS" =~ ^[1-9][0-9]*$ ]] || usage "--partitions must be a positive integer"
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || usage "--timeout must be whole seconds"
case "$PROTOCOL" in PLAINTEXT | SSL | SASL_PLAINTEXT | SASL_SSL) ;; *) usage "bad --security-protocol $PROTOCOL" ;; esac
if [[ "$PROTOCOL" == SASL* && (-z "$USERNAME" || -z "$PASSWORD") ]]; then
	usage "SASL needs --username and --password (or KGUARD_COMPAT_PASSWORD)"
fi
command -v kcat >/dev/null || {
	echo "kcat.sh: kcat not found (run test/deps.sh)" >&2
	exit 1
}

TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

case "$LIBRDKAFKA" in
system) ;;
pypi)
	lib="$(python3 -c 'import confluent_kafka, glob, os
d = os.path.join(os.path.dirname(confluent_kafka.__file__), os.pardir, "confluent_kafka.libs")
print(os.path.realpath(sorted(glob.glob(os.path.join(d, "librdkafka*.so*")))[0]))' 2>/dev/null)" ||
		{
			echo "kcat.sh: no librdkafka in the confluent-kafka wheel (run test/deps.sh)" >&2
			exit 1
		}
	mkdir -p "$TMP/lib"
	ln -s "$lib" "$TMP/lib/librdkafka.so.1"
	export LD_LIBRARY_PATH="$TMP/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
	;;
*) usage "--librdkafka must be system or pypi" ;;
esac

# Client configuration, in a file so that no secret is in argv.
CONF="$TMP/kcat.conf"
(
	umask 077
	{
		echo "bootstrap.servers=$BOOTSTRAP"
		echo "client.id=kguard-compat-kcat"
		echo "security.protocol=$PROTOCOL"
		if [[ "$PROTOCOL" == SASL* ]]; then
			echo "sasl.mechanisms=$MECHANISM"
			echo "sasl.username=$USERNAME"
			echo "sasl.password=$PASSWORD"
		fi
		if [[ "$PROTOCOL" == *SSL && -n "$CAFILE" ]]; then
			echo "ssl.ca.location=$CAFILE"
		fi
		for p in ${PROPS[@]+"${PROPS[@]}"}; do echo "$p"; done
	} >"$CONF"
)

RDK_VERSION="$(kcat -V 2>/dev/null | sed -n 's/.*(.*librdkafka \([0-9.]*\) .*/\1/p' | head -n1)"
VERSION="$(kcat -V 2>/dev/null | sed -n 's/^Version \([0-9.]*\).*/\1/p' | head -n1) (librdkafka ${RDK_VERSION:-?})"
RUN="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"
FAILED=0

# report OP OK DETAIL [BROKERS_CSV]
report() {
	python3 -c '
import json, sys
op, ok, detail, version = sys.argv[1], sys.argv[2] == "true", sys.argv[3], sys.argv[4]
line = {"client": "kcat", "version": version, "op": op, "ok": ok, "detail": detail}
if len(sys.argv) > 5:
    line["brokers"] = [b for b in sys.argv[5].split(",") if b]
print(json.dumps(line), flush=True)
' "$1" "$2" "$3" "$VERSION" "${@:4}"
	if [[ "$2" != true ]]; then FAILED=1; fi
}

finish() { exit "$FAILED"; }

# last_error FILE: the most telling line of a kcat stderr file, for a failed operation:
# an authentication or TLS failure if there was one, else the last error line.
last_error() {
	{ grep -m1 -iE 'authentication|SSL handshake|certificate' "$1" ||
		grep -E 'ERROR|FAIL|rror' "$1" || tail -n 3 "$1"; } | tail -n 1 | cut -c1-400
}

# ---- metadata --------------------------------------------------------------------------
# A topic created a moment ago may not have reached every broker's metadata yet: kcat -L asks
# whichever broker it picks, so an unknown topic, a missing topic or too few partitions are
# asked again (up to 10 times, a second apart), as a client's metadata refresh would.
md_check() {
	python3 - "$TMP/md.json" "$TOPIC" "$PARTITIONS" 2>"$TMP/md.check" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
topic, want = sys.argv[2], int(sys.argv[3])
brokers = sorted(b["name"] for b in m.get("brokers", []))
t = next((t for t in m.get("topics", []) if t.get("topic") == topic), None)
if not brokers:
    sys.exit("no brokers listed")
if t is None:
    sys.exit("topic %s not in metadata" % topic)
if t.get("error"):
    sys.exit("topic %s: %s" % (topic, t["error"]))
n = len(t.get("partitions", []))
if n != want:
    sys.exit("topic %s has %d partitions, want %d" % (topic, n, want))
print("topic %s present, %d partitions, %d brokers" % (topic, n, len(brokers)))
print(",".join(brokers))
EOF
}
for attempt in 1 2 3 4 5 6 7 8 9 10; do
	if ! timeout "$TIMEOUT" kcat -F "$CONF" -L -J -t "$TOPIC" -m "$TIMEOUT" >"$TMP/md.json" 2>"$TMP/md.err"; then
		report metadata false "kcat -L failed: $(last_error "$TMP/md.err")"
		finish
	fi
	if res="$(md_check)"; then
		break
	fi
	if ((attempt == 10)) || ! grep -qiE 'unknown topic|not in metadata|partitions, want|leader not available' "$TMP/md.check"; then
		report metadata false "$(tail -n1 "$TMP/md.check")"
		finish
	fi
	sleep 1
done
report metadata true "$(sed -n 1p <<<"$res")" "$(sed -n 2p <<<"$res")"

# ---- produce -----------------------------------------------------------------------------
if ! awk -v run="$RUN" -v n="$COUNT" 'BEGIN { for (i = 0; i < n; i++) printf "%d\t%s:%d\n", i, run, i }' |
	timeout "$TIMEOUT" kcat -F "$CONF" -P -t "$TOPIC" -K $'\t' \
		-X enable.idempotence=true -X acks=all -X linger.ms=5 \
		-X message.timeout.ms=$((TIMEOUT * 1000)) 2>"$TMP/produce.err"; then
	report produce false "kcat -P failed: $(last_error "$TMP/produce.err")"
	finish
fi
if grep -q 'Delivery failed' "$TMP/produce.err"; then
	report produce false "$(grep -c 'Delivery failed' "$TMP/produce.err") deliveries failed: $(last_error "$TMP/produce.err")"
	finish
fi
report produce true "$COUNT records acknowledged (idempotent, acks=all)"

# ---- consume (and commit on close) ---------------------------------------------------------
if ! timeout "$TIMEOUT" kcat -F "$CONF" -G "$GROUP" -X auto.offset.reset=earliest -e -u \
	-f '%p %o %s\n' "$TOPIC" >"$TMP/consumed" 2>"$TMP/consume.err"; then
	report consume false "kcat -G failed or timed out: $(last_error "$TMP/consume.err")"
	finish
fi
# check prints the consume detail and exits non-zero when a record is missing, duplicated or
# out of order; it writes "partition next_offset" lines to $TMP/next.
if ! detail="$(python3 - "$TMP/consumed" "$RUN" "$COUNT" "$TMP/next" <<'EOF'
import json, sys
path, run, count, nextpath = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
seen, last, per, nxt = {}, {}, {}, {}
dups = ooo = 0
for line in open(path, errors="replace"):
    parts = line.rstrip("\n").split(" ", 2)
    if len(parts) != 3:
        continue
    p, o, v = int(parts[0]), int(parts[1]), parts[2]
    nxt[p] = max(nxt.get(p, 0), o + 1)
    r, _, num = v.partition(":")
    if r != run or not num.isdigit():
        continue
    n = int(num)
    if n in seen:
        dups += 1
        continue
    seen[n] = p
    per[p] = per.get(p, 0) + 1
    if last.get(p, -1) > n:
        ooo += 1
    last[p] = n
with open(nextpath, "w") as f:
    for p in sorted(nxt):
        f.write("%d %d\n" % (p, nxt[p]))
print("%d/%d records received, %d duplicates, %d out of order, per partition %s" % (
    len(seen), count, dups, ooo, json.dumps({str(k): per[k] for k in sorted(per)})))
sys.exit(0 if len(seen) == count and dups == 0 and ooo == 0 else 1)
EOF
)"; then
	report consume false "group $GROUP: $detail"
	finish
fi
report consume true "group $GROUP: $detail"
report commit true "kcat -G committed its positions on close: $(tr '\n' ' ' <"$TMP/next" | sed 's/ $//') (partition offset; verified by offsets)"

# ---- offsets: read the group's committed offsets back ------------------------------------
# A legacy (simple) consumer starting at the stored offsets fetches them from the group
# coordinator (auto.offset.reset=error: no committed offset is an error, not a silent
# fallback to the end). With nothing produced since, each partition starts at its end, which kcat
# reports as "Reached end of topic T [p] at offset X"; a record printed instead shows the
# first offset it was given.
fetched=""
for p in $(cut -d' ' -f1 "$TMP/next"); do
	if ! timeout "$TIMEOUT" kcat -F "$CONF" -C -t "$TOPIC" -p "$p" -o stored -e -c 1 \
		-X group.id="$GROUP" -X enable.auto.commit=false -X enable.auto.offset.store=false \
		-X auto.offset.reset=error \
		-f '%o\n' >"$TMP/stored.$p" 2>"$TMP/stored.$p.err"; then
		report offsets false "kcat -C -o stored failed for partition $p: $(last_error "$TMP/stored.$p.err")"
		finish
	fi
	got="$(head -n1 "$TMP/stored.$p")"
	if [[ -z "$got" ]]; then
		got="$(sed -n 's/.*Reached end of topic .* \['"$p"'\] at offset \([0-9]*\).*/\1/p' "$TMP/stored.$p.err" | head -n1)"
	fi
	want="$(awk -v p="$p" '$1 == p { print $2 }' "$TMP/next")"
	if [[ "$got" != "$want" ]]; then
		report offsets false "partition $p: committed $want, fetched ${got:-nothing}"
		finish
	fi
	fetched+="${fetched:+ }$p $got"
done
report offsets true "fetched committed offsets: $fetched (partition offset)"
finish
