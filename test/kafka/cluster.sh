#!/usr/bin/env bash
# test/kafka/cluster.sh: a real Apache Kafka 4.x cluster on loopback for kguard's tests.
#
#   cluster.sh start       fresh 3-node KRaft cluster (new CA, certificates, SCRAM users,
#                          storage), waits until it is really ready. No-op when running;
#                          when only some nodes run (after `kill N`) it starts the others.
#   cluster.sh stop        stops every node this script started (pid files). Safe twice.
#   cluster.sh status      per-node pid state and the brokers the cluster lists (exit 0 if all up)
#   cluster.sh env         `export` lines for internal/testenv.NeedKafka
#   cluster.sh kill N      kill -9 node N (1-3)
#   cluster.sh restart N   start node N again (same storage) and wait until it rejoined:
#                          registered, and every partition's ISR full again
#   cluster.sh logs [N]    where the logs are and their tails (or all of node N's log)
#
# Every node is broker and controller, ids 1-3. Per node N:
#   PLAINTEXT  127.0.0.1:1909N   (also inter-broker)
#   SASL_SSL   127.0.0.1:1919N   SCRAM-SHA-512, broker certificate signed by work/tls/ca.pem
#   CONTROLLER 127.0.0.1:1929N
# Users (SCRAM-SHA-512, created at format time): kguard and admin; passwords in work/secrets/.
# The broker jars come from Maven Central through pom.xml into lib/ (test/deps.sh does it;
# this script fetches them itself when lib/ is empty). See docs/testing-kafka.md.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRIPT="$HERE/$(basename "${BASH_SOURCE[0]}")"
LIB="$HERE/lib"
WORK="$HERE/work"
TLS="$WORK/tls"
SECRETS="$WORK/secrets"
LOGS="$WORK/logs"
READY_CLASSES="$LIB/.ready-classes"
NODES=(1 2 3)
READY_TOPIC="kguard-ready"
START_TIMEOUT="${KGUARD_KAFKA_START_TIMEOUT:-180}" # seconds; a start takes 20-70 s here
HEAP="${KGUARD_KAFKA_HEAP:--Xms128m -Xmx512m}"

log() { echo "cluster.sh: $*" >&2; }
die() {
	log "$*"
	exit 1
}

plaintext_addr() { echo "127.0.0.1:1909$1"; }
sasl_addr() { echo "127.0.0.1:1919$1"; }
controller_addr() { echo "127.0.0.1:1929$1"; }
join_addrs() {
	local f="$1" out="" n
	for n in "${NODES[@]}"; do out+="${out:+,}$("$f" "$n")"; done
	echo "$out"
}

check_node() {
	[[ "${1:-}" =~ ^[1-3]$ ]] || die "node must be 1, 2 or 3 (got '${1:-}')"
}

ensure_tools() {
	command -v java >/dev/null || die "java not found (run test/deps.sh)"
	command -v javac >/dev/null || die "javac not found: a JDK is needed (run test/deps.sh)"
	command -v openssl >/dev/null || die "openssl not found (run test/deps.sh)"
	command -v kcat >/dev/null || die "kcat not found (run test/deps.sh)"
	if ! compgen -G "$LIB/kafka_2.13-*.jar" >/dev/null; then
		command -v mvn >/dev/null || die "lib/ is empty and mvn is missing (run test/deps.sh)"
		log "lib/ is empty; fetching the Kafka jars from Maven Central"
		local out
		if ! out="$(mvn -q -B -f "$HERE/pom.xml" dependency:copy-dependencies -DoutputDirectory="$LIB" 2>&1)"; then
			echo "$out" >&2
			die "mvn dependency:copy-dependencies failed"
		fi
	fi
}

kafka_version() {
	local j
	j="$(compgen -G "$LIB/kafka_2.13-*.jar" | head -n1)"
	j="${j##*/kafka_2.13-}"
	echo "${j%.jar}"
}

# java runs a JVM with the lib/ classpath. Extra JVM options come first in $JAVA_OPTS_EXTRA.
# run_java runs a short-lived tool JVM with the lib/ classpath (C1 only and the serial
# collector: they start faster and take less CPU from the brokers beside them).
run_java() {
	java -cp "$LIB/*:$READY_CLASSES" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
		-Djava.awt.headless=true -Dlog4j2.configurationFile="$HERE/log4j2-tools.properties" "$@"
}

# compile_ready compiles Ready.java once into lib/ (git-ignored; rebuilt when it changes).
compile_ready() {
	local sum
	sum="$(sha256sum "$HERE/Ready.java" | cut -d' ' -f1)"
	if [[ "$(cat "$READY_CLASSES/.sha256" 2>/dev/null || true)" == "$sum" && -f "$READY_CLASSES/Ready.class" ]]; then
		return 0
	fi
	rm -rf "$READY_CLASSES"
	mkdir -p "$READY_CLASSES"
	javac -nowarn -cp "$LIB/*" -d "$READY_CLASSES" "$HERE/Ready.java" >"$LOGS/javac-ready.log" 2>&1 ||
		{ cat "$LOGS/javac-ready.log" >&2; die "compiling Ready.java failed"; }
	echo "$sum" >"$READY_CLASSES/.sha256"
}

# ---- pids ------------------------------------------------------------------------------

pidfile() { echo "$WORK/node$1.pid"; }

# node_pid N prints the pid of node N's JVM when it runs (and is really ours).
node_pid() {
	local f pid
	f="$(pidfile "$1")"
	[[ -f "$f" ]] || return 1
	pid="$(cat "$f" 2>/dev/null || true)"
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	[[ -r "/proc/$pid/cmdline" ]] || return 1
	tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "$WORK/node$1/server.properties" || return 1
	echo "$pid"
}

running_nodes() {
	local n
	for n in "${NODES[@]}"; do
		if node_pid "$n" >/dev/null; then echo "$n"; fi
	done
}

# ---- generated material ----------------------------------------------------------------

gen_secret() { openssl rand -hex 16; }

# new_cluster_id prints what `kafka-storage random-uuid` prints (16 random bytes, base64url
# without padding, never starting with '-'), without starting a JVM for it.
new_cluster_id() {
	local id
	while :; do
		id="$(openssl rand -base64 16 | tr '+/' '-_' | tr -d '=\n')"
		[[ "$id" == -* || "$id" == AAAAAAAAAAAAAAAAAAAAA* ]] || break
	done
	echo "$id"
}

gen_tls() {
	mkdir -p "$TLS"
	local storepass
	storepass="$(gen_secret)"
	echo "$storepass" >"$SECRETS/keystore.password"
	(
		cd "$TLS"
		openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 \
			-keyout ca.key -out ca.pem -subj "/CN=kguard test CA" \
			-addext "basicConstraints=critical,CA:TRUE" \
			-addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
		openssl req -newkey rsa:2048 -nodes -sha256 \
			-keyout broker.key -out broker.csr -subj "/CN=localhost" 2>/dev/null
		printf '%s\n' \
			"basicConstraints=CA:FALSE" \
			"keyUsage=critical,digitalSignature,keyEncipherment" \
			"extendedKeyUsage=serverAuth" \
			"subjectAltName=IP:127.0.0.1,DNS:localhost" >broker.ext
		openssl x509 -req -sha256 -days 30 -in broker.csr -CA ca.pem -CAkey ca.key \
			-CAcreateserial -extfile broker.ext -out broker.pem 2>/dev/null
		openssl pkcs12 -export -name broker -in broker.pem -inkey broker.key -certfile ca.pem \
			-out broker.p12 -passout "pass:$storepass"
		rm -f truststore.p12
		keytool -importcert -noprompt -alias kguard-test-ca -file ca.pem \
			-keystore truststore.p12 -storetype PKCS12 -storepass "$storepass" >/dev/null 2>&1
		chmod 600 ca.key broker.key
	) || die "generating the CA and broker certificate failed"
}

write_config() {
	local n="$1" storepass
	storepass="$(cat "$SECRETS/keystore.password")"
	mkdir -p "$WORK/node$n/data"
	cat >"$WORK/node$n/server.properties" <<EOF
# generated by cluster.sh for node $n; regenerated at every fresh start
process.roles=broker,controller
node.id=$n
controller.quorum.voters=1@$(controller_addr 1),2@$(controller_addr 2),3@$(controller_addr 3)
controller.listener.names=CONTROLLER
listeners=PLAINTEXT://$(plaintext_addr "$n"),SASL_SSL://$(sasl_addr "$n"),CONTROLLER://$(controller_addr "$n")
advertised.listeners=PLAINTEXT://$(plaintext_addr "$n"),SASL_SSL://$(sasl_addr "$n")
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT

sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$TLS/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$storepass
listener.name.sasl_ssl.ssl.key.password=$storepass
listener.name.sasl_ssl.ssl.client.auth=none

log.dirs=$WORK/node$n/data
num.partitions=3
default.replication.factor=3
min.insync.replicas=2
offsets.topic.replication.factor=3
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=3
transaction.state.log.min.isr=2
transaction.state.log.num.partitions=6
share.coordinator.state.topic.replication.factor=3
share.coordinator.state.topic.min.isr=2
auto.create.topics.enable=false
unclean.leader.election.enable=false
group.initial.rebalance.delay.ms=0

# small machine: few threads
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
EOF
}

format_node() {
	local n="$1" cid="$2" kpw apw
	kpw="$(cat "$SECRETS/kguard.password")"
	apw="$(cat "$SECRETS/admin.password")"
	run_java -Xmx256m kafka.tools.StorageTool format --ignore-formatted \
		--cluster-id "$cid" --config "$WORK/node$n/server.properties" \
		--add-scram "SCRAM-SHA-512=[name=kguard,password=$kpw]" \
		--add-scram "SCRAM-SHA-512=[name=admin,password=$apw]" \
		>"$LOGS/format-node$n.log" 2>&1
}

# ---- node processes ----------------------------------------------------------------------

launch_node() {
	local n="$1" pid
	mkdir -p "$LOGS"
	# setsid: the JVM leaves the caller's process group and terminal, so a test harness
	# that runs this script does not wait for or signal the brokers. 9>&-: it must not
	# inherit (and so hold) the lock of this script.
	# shellcheck disable=SC2086
	setsid java -cp "$LIB/*" $HEAP \
		-XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
		-XX:+ExplicitGCInvokesConcurrent -XX:+ExitOnOutOfMemoryError \
		-Djava.awt.headless=true \
		-Dlog4j2.configurationFile="$HERE/log4j2-broker.properties" \
		-Dkguard.log.file="$LOGS/node$n.log" \
		-Dkafka.logs.dir="$LOGS" \
		kafka.Kafka "$WORK/node$n/server.properties" \
		</dev/null >>"$LOGS/node$n.out" 2>&1 9>&- &
	pid=$!
	echo "$pid" >"$(pidfile "$n")"
	sleep 0.2
	node_pid "$n" >/dev/null || die "node $n did not start; see $LOGS/node$n.out"
}

# kcat_metadata [N] prints the cluster metadata as JSON, as node N sees it (or any live node).
kcat_metadata() {
	local n nodes=("${NODES[@]}")
	[[ -n "${1:-}" ]] && nodes=("$1")
	for n in "${nodes[@]}"; do
		if kcat -b "$(plaintext_addr "$n")" -L -J -m 3 2>/dev/null; then return 0; fi
	done
	return 1
}

# metadata_state [N] prints "BROKERS UNDER_REPLICATED_PARTITIONS NODE_IDS" from kcat's
# metadata (as node N sees it, when given). A partition without a leader counts as
# under-replicated.
metadata_state() {
	kcat_metadata "${1:-}" | python3 -c '
import json, sys
m = json.load(sys.stdin)
ids = sorted(b["id"] for b in m.get("brokers", []))
under = 0
for t in m.get("topics", []):
    for p in t.get("partitions", []):
        if p.get("leader", -1) < 0 or len(p.get("isrs", [])) < len(p.get("replicas", [])):
            under += 1
print(len(ids), under, ",".join(map(str, ids)))
'
}

dump_logs_and_die() {
	local n
	for n in "${NODES[@]}"; do
		if [[ -f "$LOGS/node$n.log" ]]; then
			log "---- last lines of $LOGS/node$n.log"
			grep -E 'ERROR|FATAL|Exception' "$LOGS/node$n.log" | tail -n 15 >&2 || true
		fi
		if [[ -s "$LOGS/node$n.out" ]]; then
			log "---- last lines of $LOGS/node$n.out"
			tail -n 15 "$LOGS/node$n.out" >&2
		fi
	done
	die "$*"
}

# wait_rejoined N DEADLINE: node N serves requests on its own listener (a KRaft broker
# opens them only after it caught up with the metadata log), its metadata lists every
# broker including itself, and no partition lacks a leader or an in-sync replica.
wait_rejoined() {
	local n="$1" deadline="$2" st=""
	while ((SECONDS < deadline)); do
		node_pid "$n" >/dev/null || dump_logs_and_die "node $n exited while rejoining"
		if st="$(metadata_state "$n" 2>/dev/null)"; then
			local count under ids
			read -r count under ids <<<"$st"
			if [[ ",$ids," == *",$n,"* ]] && ((count == ${#NODES[@]} && under == 0)); then
				return 0
			fi
		fi
		sleep 0.5
	done
	dump_logs_and_die "node $n did not rejoin in time (last metadata: brokers/under-replicated/ids = ${st:-none})"
}

wait_ready() {
	local deadline="$1" n
	# cheap poll first: every broker registered (kcat), then the real check (Java admin + producer)
	while ((SECONDS < deadline)); do
		for n in "${NODES[@]}"; do
			node_pid "$n" >/dev/null || dump_logs_and_die "node $n exited during start"
		done
		local st count
		st="$(metadata_state 2>/dev/null || true)"
		count="${st%% *}"
		if [[ "$count" == "${#NODES[@]}" ]]; then break; fi
		sleep 0.5
	done
	((SECONDS < deadline)) || dump_logs_and_die "brokers did not register in time"
	local left=$((deadline - SECONDS))
	((left > 5)) || left=5
	if ! run_java -Xmx256m Ready "$(join_addrs plaintext_addr)" "$READY_TOPIC" "${#NODES[@]}" "$left" >"$LOGS/ready.log" 2>&1; then
		cat "$LOGS/ready.log" >&2
		dump_logs_and_die "cluster not ready in time"
	fi
	for n in "${NODES[@]}"; do wait_rejoined "$n" "$deadline"; done
}

# ---- commands ----------------------------------------------------------------------------

cmd_start() {
	ensure_tools
	local running deadline=$((SECONDS + START_TIMEOUT)) n
	running="$(running_nodes | tr '\n' ' ')"
	if [[ -n "$running" ]]; then
		local started=0
		mkdir -p "$LOGS"
		compile_ready
		for n in "${NODES[@]}"; do
			if ! node_pid "$n" >/dev/null; then
				log "starting node $n (others already running)"
				launch_node "$n"
				started=1
			fi
		done
		if ((started)); then
			wait_ready "$deadline"
			log "cluster ready"
		else
			log "already running (nodes: $running)"
		fi
		return 0
	fi

	local t0=$SECONDS
	rm -rf "$WORK"
	mkdir -p "$WORK" "$TLS" "$SECRETS" "$LOGS"
	chmod 700 "$SECRETS"
	gen_secret >"$SECRETS/kguard.password"
	gen_secret >"$SECRETS/admin.password"
	gen_tls
	local cid
	cid="$(new_cluster_id)"
	echo "$cid" >"$WORK/cluster.id"
	local format_pids=()
	for n in "${NODES[@]}"; do
		write_config "$n"
		format_node "$n" "$cid" &
		format_pids+=("$!")
	done
	for n in "${!format_pids[@]}"; do
		wait "${format_pids[$n]}" || die "formatting node ${NODES[$n]} failed; see $LOGS/format-node${NODES[$n]}.log"
	done
	compile_ready
	for n in "${NODES[@]}"; do launch_node "$n"; done
	wait_ready "$deadline"
	log "Kafka $(kafka_version) ready in $((SECONDS - t0))s: PLAINTEXT $(join_addrs plaintext_addr), SASL_SSL $(join_addrs sasl_addr)"
}

stop_pids() {
	# stop_pids GRACE_SECONDS N...: SIGTERM, wait, then SIGKILL what is left.
	local grace="$1" n pid
	shift
	local -A pids=()
	for n in "$@"; do
		if pid="$(node_pid "$n")"; then
			pids["$n"]="$pid"
			kill -TERM "$pid" 2>/dev/null || true
		fi
	done
	local deadline=$((SECONDS + grace))
	while ((SECONDS < deadline)); do
		local alive=0
		for n in "${!pids[@]}"; do
			if kill -0 "${pids[$n]}" 2>/dev/null; then alive=1; fi
		done
		((alive)) || break
		sleep 0.3
	done
	for n in "${!pids[@]}"; do
		if kill -0 "${pids[$n]}" 2>/dev/null; then
			log "node $n did not stop in ${grace}s; killing it"
			kill -KILL "${pids[$n]}" 2>/dev/null || true
		fi
	done
	for n in "$@"; do rm -f "$(pidfile "$n")"; done
}

cmd_stop() {
	local running
	running="$(running_nodes | tr '\n' ' ')"
	if [[ -z "$running" ]]; then
		rm -f "$WORK"/node*.pid
		log "not running"
		return 0
	fi
	# All nodes at once: a controlled shutdown needs a controller quorum, which is going
	# away too, so they usually hang; give them a short grace, then kill them. The next
	# start is fresh (new storage), so nothing is lost that a test could need.
	# shellcheck disable=SC2086
	stop_pids 8 $running
	log "stopped (nodes: $running)"
}

cmd_status() {
	local n pid up=0
	for n in "${NODES[@]}"; do
		if pid="$(node_pid "$n")"; then
			echo "node $n: running (pid $pid) PLAINTEXT $(plaintext_addr "$n") SASL_SSL $(sasl_addr "$n")"
			up=$((up + 1))
		else
			echo "node $n: stopped"
		fi
	done
	if ((up > 0)); then
		local st count under ids
		if st="$(metadata_state 2>/dev/null)"; then
			read -r count under ids <<<"$st"
			echo "brokers registered: $count ($ids), under-replicated partitions: $under"
		else
			echo "metadata: no answer"
		fi
	fi
	((up == ${#NODES[@]}))
}

cmd_env() {
	[[ -f "$SECRETS/kguard.password" && -f "$TLS/ca.pem" ]] || die "no cluster state in $WORK; run '$SCRIPT start' first"
	printf 'export KGUARD_TEST_KAFKA_PLAINTEXT=%q\n' "$(join_addrs plaintext_addr)"
	printf 'export KGUARD_TEST_KAFKA_SASL_SSL=%q\n' "$(join_addrs sasl_addr)"
	printf 'export KGUARD_TEST_KAFKA_CA=%q\n' "$TLS/ca.pem"
	printf 'export KGUARD_TEST_KAFKA_USER=%q\n' "kguard"
	printf 'export KGUARD_TEST_KAFKA_PASSWORD=%q\n' "$(cat "$SECRETS/kguard.password")"
	printf 'export KGUARD_TEST_KAFKA_SCRIPT=%q\n' "$SCRIPT"
}

cmd_kill() {
	check_node "${1:-}"
	local pid
	if pid="$(node_pid "$1")"; then
		kill -KILL "$pid"
		while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
		rm -f "$(pidfile "$1")"
		log "node $1 killed (pid $pid)"
	else
		log "node $1 is not running"
	fi
}

cmd_restart() {
	check_node "${1:-}"
	ensure_tools
	local n="$1"
	[[ -f "$WORK/node$n/server.properties" ]] || die "node $n has no storage; run '$SCRIPT start' first"
	if node_pid "$n" >/dev/null; then
		stop_pids 30 "$n"
	fi
	launch_node "$n"
	wait_rejoined "$n" $((SECONDS + START_TIMEOUT))
	log "node $n rejoined"
}

cmd_logs() {
	if [[ -n "${1:-}" ]]; then
		check_node "$1"
		cat "$LOGS/node$1.log"
		return
	fi
	echo "logs: $LOGS"
	local f
	for f in "$LOGS"/node*.log; do
		[[ -f "$f" ]] || continue
		echo "==== $f (last 20 lines)"
		tail -n 20 "$f"
	done
}

# lock serializes the commands that change the cluster: several test runs in one checkout
# may call start or stop at the same time; the second start then finds the cluster running.
lock() {
	local f
	f="/tmp/kguard-kafka-cluster.$(printf '%s' "$HERE" | sha256sum | cut -c1-16).lock"
	exec 9>"$f"
	flock -w 300 9 || die "another cluster.sh holds $f for more than 300 s"
}

case "${1:-}" in
start | stop | kill | restart) lock ;;
esac
case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
env) cmd_env ;;
kill) cmd_kill "${2:-}" ;;
restart) cmd_restart "${2:-}" ;;
logs) cmd_logs "${2:-}" ;;
*)
	echo "usage: $0 start|stop|status|env|kill N|restart N|logs [N]" >&2
	exit 2
	;;
esac
