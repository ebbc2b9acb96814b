#!/usr/bin/env bash
# test/deps.sh: installs everything kguard's test suites need outside Go.
#
#   - Debian packages: kcat (librdkafka), openssl, a JDK 17 (java, javac, keytool), maven,
#     python3 with pip, prometheus (prometheus and promtool, for test/ops), buildah
#     (`make image`, tested by deploy/image_test.go), chromium (renders the compliance
#     report), libnss-myhostname (the SNI test's *.localhost names resolve to loopback
#     without a DNS server; deps.sh also puts `myhostname` in /etc/nsswitch.conf's hosts
#     line when it is missing). `apt-get update` runs only
#     when something is missing.
#   - PyPI: confluent-kafka and kafka-python, pinned in test/compat/python/requirements.txt.
#   - Maven Central: the Apache Kafka broker, tools and client jars named by
#     test/kafka/pom.xml, copied into test/kafka/lib/; Kafka Streams named by
#     test/frameworks/pom.xml, copied into test/frameworks/lib/; the Kafka Connect worker, the
#     FileStream connectors and MirrorMaker 2 named by test/frameworks/connect/pom.xml, copied
#     into test/frameworks/connect/lib/ (all cached in ~/.m2).
#
# Run as root (or with passwordless sudo for apt-get). Quiet when everything is already
# there; on a failure it prints the failing step's output and exits non-zero. Safe to
# run any number of times.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
KAFKA_DIR="$HERE/kafka"
REQS="$HERE/compat/python/requirements.txt"
OUT="$(mktemp)"
trap 'rm -f "$OUT"' EXIT

fail() {
	echo "deps.sh: $1 failed:" >&2
	cat "$OUT" >&2
	exit 1
}

# run STEP CMD...: run quietly, show the output only when it fails.
run() {
	local step="$1"
	shift
	"$@" >"$OUT" 2>&1 || fail "$step"
}

SUDO=""
if [[ "$(id -u)" != 0 ]]; then SUDO="sudo"; fi

# ---- Debian packages -------------------------------------------------------------------

need_pkgs=()
have() { command -v "$1" >/dev/null 2>&1; }
have kcat || need_pkgs+=(kcat)
have openssl || need_pkgs+=(openssl)
if ! have java || ! have keytool || ! java --list-modules 2>/dev/null | grep -q '^jdk.compiler@'; then
	need_pkgs+=(openjdk-17-jdk-headless)
fi
have mvn || need_pkgs+=(maven)
have python3 || need_pkgs+=(python3)
python3 -m pip --version >/dev/null 2>&1 || need_pkgs+=(python3-pip)
have setsid || need_pkgs+=(util-linux)
if ! have prometheus || ! have promtool; then need_pkgs+=(prometheus); fi
have buildah || have podman || need_pkgs+=(buildah)
have chromium || need_pkgs+=(chromium) # renders the compliance report (cmd/kguard TestComplianceReport)
# test/compat TestSNIClients: kcat (getaddrinfo) and Java resolve bootstrap.kafka.localhost
# and broker-N.kafka.localhost to loopback through glibc's nss-myhostname.
dpkg-query -W -f='${Status}' libnss-myhostname 2>/dev/null | grep -q 'ok installed' || need_pkgs+=(libnss-myhostname)

if ((${#need_pkgs[@]} > 0)); then
	export DEBIAN_FRONTEND=noninteractive
	run "apt-get update" $SUDO apt-get update -q
	run "apt-get install ${need_pkgs[*]}" $SUDO apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
	hash -r
fi
if ! grep -qE '^hosts:.*[[:space:]]myhostname([[:space:]]|$)' /etc/nsswitch.conf; then
	if grep -qE '^hosts:.*[[:space:]]files([[:space:]]|$)' /etc/nsswitch.conf; then
		run "nsswitch.conf myhostname" $SUDO sed -i -E '/^hosts:/ s/([[:space:]])files([[:space:]]|$)/\1files myhostname\2/' /etc/nsswitch.conf
	else
		run "nsswitch.conf myhostname" $SUDO sed -i -E '/^hosts:/ s/$/ myhostname/' /etc/nsswitch.conf
	fi
fi

# ---- PyPI --------------------------------------------------------------------------------

# pinned_ok: every "name==version" line of requirements.txt is installed at that version.
pinned_ok() {
	python3 - "$REQS" <<'EOF'
import sys
from importlib import metadata
ok = True
for line in open(sys.argv[1]):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    name, _, want = line.partition("==")
    try:
        ok &= metadata.version(name) == want
    except metadata.PackageNotFoundError:
        ok = False
sys.exit(0 if ok else 1)
EOF
}

if ! pinned_ok; then
	# Debian's own python refuses system-wide installs (PEP 668); the flag is only
	# passed where pip asks for it.
	if ! python3 -m pip install -q --disable-pip-version-check --root-user-action=ignore -r "$REQS" >"$OUT" 2>&1; then
		if grep -q externally-managed "$OUT"; then
			run "pip install -r $REQS" python3 -m pip install -q --disable-pip-version-check \
				--root-user-action=ignore --break-system-packages -r "$REQS"
		else
			fail "pip install -r $REQS"
		fi
	fi
	pinned_ok || {
		echo "pip ran but the pinned versions are not importable by python3" >"$OUT"
		fail "checking $REQS"
	}
fi

# ---- Maven Central -----------------------------------------------------------------------

# Each lib/ holds exactly the jars of its current pom: a stamp records the pom's hash, and a
# changed pom empties lib/ first, so two Kafka versions never share a classpath.
# fetch_jars DIR MARKER: DIR/pom.xml's jars into DIR/lib; MARKER is a glob of a jar that must
# be there afterwards.
fetch_jars() {
	local dir="$1" marker="$2" lib="$1/lib" stamp
	stamp="$(sha256sum "$dir/pom.xml" | cut -d' ' -f1)"
	if [[ "$(cat "$lib/.pom.sha256" 2>/dev/null || true)" != "$stamp" ]] || ! compgen -G "$lib/$marker" >/dev/null; then
		rm -rf "$lib"
		run "mvn dependency:copy-dependencies ($dir/pom.xml)" \
			mvn -q -B -f "$dir/pom.xml" dependency:copy-dependencies -DoutputDirectory="$lib"
		compgen -G "$lib/$marker" >/dev/null || {
			echo "no $marker in $lib after mvn" >"$OUT"
			fail "mvn dependency:copy-dependencies ($dir/pom.xml)"
		}
		echo "$stamp" >"$lib/.pom.sha256"
	fi
}

fetch_jars "$KAFKA_DIR" "kafka_2.13-*.jar"
fetch_jars "$HERE/frameworks" "kafka-streams-*.jar"
fetch_jars "$HERE/frameworks/connect" "connect-runtime-*.jar"
