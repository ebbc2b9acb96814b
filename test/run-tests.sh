#!/usr/bin/env bash
# test/run-tests.sh: the whole test suite, as `make test` and CI run it.
#
# Installs what the suites need (test/deps.sh), starts the real services
# (an OpenBao dev server, a 3-node Apache Kafka 4.x KRaft cluster), runs the
# Go tests with the race detector, and stops the services whatever happens.
# KGUARD_REQUIRE_SERVICES=1 makes a test that cannot reach a service fail
# instead of skip.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT="$PWD"

step() { printf '\n=== %s (%s)\n' "$1" "$(date -u +%H:%M:%S)"; }

stop_services() {
	step "stopping services"
	bash test/kafka/cluster.sh stop || true
	bash test/openbao.sh stop || true
}
trap stop_services EXIT

step "installing test dependencies"
bash test/deps.sh
go mod download
(cd deploy && go mod download)

step "static checks"
unformatted=$(gofmt -l $(git ls-files '*.go') 2>/dev/null || true)
if [[ -n "$unformatted" ]]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
go vet ./...
(cd deploy && go vet ./...)

step "starting OpenBao"
bash test/openbao.sh start
eval "$(bash test/openbao.sh env)"

step "starting Apache Kafka (3-node KRaft)"
bash test/kafka/cluster.sh start
eval "$(bash test/kafka/cluster.sh env)"

export KGUARD_REQUIRE_SERVICES=1
log=$(mktemp)
trap 'rm -f "$log"; stop_services' EXIT
status=0

# The real-cluster suites print a compatibility table and fault counts:
# run them verbosely on their own (their output is kept to the table, the
# counts and the verdicts), everything else package by package.
step "go test -race (unit, in-process and end-to-end suites)"
set +e
go test -race -p 2 -timeout 20m -count=1 -skip '^TestComplianceReport$' $(go list ./... | grep -v -e /test/compat -e /test/faults -e /test/adversarial -e /test/frameworks -e /test/review -e /test/ops) 2>&1 | tee "$log"
[[ ${PIPESTATUS[0]} == 0 ]] || status=1
# the figures of the in-process data-protection tests (PROTECTION lines; a few seconds)
go test -race -v -count=1 -run 'TestDemoDefaultProducers|TestFormat2DefaultBatches|TestProtectedBatchTooLarge|TestFormat2Sizes' \
	./cmd/kguard ./proxy ./crypto 2>&1 | grep -E 'PROTECTION |^--- FAIL' || true

# deploy/ is its own module (helm and the Kubernetes API types stay out of
# kguard's go.mod): helm lint/template in both modes, strict decoding of the
# manifests, `make image`. The first run builds helm (a few minutes, cached).
step "go test -race: deployment (Helm chart, image)"
(cd deploy && go test -race -p 2 -timeout 15m -count=1 -v ./... 2>&1) | grep -E '^(ok |FAIL|--- FAIL|panic|\s+image_test.go.*IMAGE )|_test.go:' | tee -a "$log"
[[ ${PIPESTATUS[0]} == 0 ]] || status=1

step "go test -race: client compatibility matrix, adversarial suite, frameworks, faults, policy review, operations (Prometheus) and the compliance report against Apache Kafka"
vlog=$(mktemp)
go test -race -v -timeout 20m -count=1 ./test/compat ./test/adversarial ./test/frameworks ./test/faults ./test/review ./test/ops >"$vlog" 2>&1
vstatus=$?
# The compliance report run (cmd/kguard) prints its figures (COMPLIANCE lines).
go test -race -v -timeout 10m -count=1 -run '^TestComplianceReport$' ./cmd/kguard >>"$vlog" 2>&1 || vstatus=1
cat "$vlog" >>"$log"
grep -E '^(\||ok |FAIL|--- FAIL|panic)|(^| )sent[ :=]|lost|duplicated|ATTACK \[|FRAMEWORK |REVIEW |OPS |COMPLIANCE |PROTECTION |SNI |QUOTA ' "$vlog" | grep -v 'logger.go'
if [[ $vstatus != 0 ]]; then
	status=1
	echo "--- failures in detail:"
	# Each failing top-level test's lines (its subtests', t.Log/t.Error
	# output and any race report) up to its FAIL line, without the ATTACK
	# lines that held, then what follows a panic.
	awk '/^=== RUN   [^\/]*$/ {n = 0} {buf[n++] = $0} /^--- FAIL/ {for (i = 0; i < n; i++) print buf[i]; n = 0}' "$vlog" | grep -v 'ATTACK \[.*: held |' | tail -400
	grep -A40 -E '^panic' "$vlog" | head -80
fi
rm -f "$vlog"
set -e

passed=$(grep -cE "^ok " "$log" || true)
failed=$(grep -cE "^FAIL[[:space:]]+github" "$log" || true)
step "go test: $passed packages passed, $failed failed (exit $status)"
exit "$status"
