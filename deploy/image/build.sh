#!/usr/bin/env bash
# deploy/image/build.sh BINARY IMAGE [ARCHIVE]: builds the kguard runtime image
# (deploy/image/Containerfile, FROM scratch) from an already built static
# binary, without pulling anything, and optionally saves it as a
# docker-archive tarball (for `docker load`, `podman load`, `kind load
# image-archive`, or `skopeo copy` to a registry).
#
# It uses buildah (Debian package `buildah`), else podman. As root in a
# container, overlay storage and OCI runtimes are usually unavailable: the
# build uses the vfs storage driver and chroot isolation, which need neither
# (the Containerfile has no RUN step, so nothing executes inside the image).
# Override with KGUARD_IMAGE_STORAGE_DRIVER (e.g. overlay) on a normal host.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

bin="${1:?usage: build.sh BINARY IMAGE [ARCHIVE]}"
image="${2:?usage: build.sh BINARY IMAGE [ARCHIVE]}"
archive="${3:-}"
driver="${KGUARD_IMAGE_STORAGE_DRIVER:-vfs}"
cacerts="${KGUARD_IMAGE_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

if command -v buildah >/dev/null 2>&1; then
	tool=(buildah --storage-driver "$driver")
	build=("${tool[@]}" bud --isolation chroot)
elif command -v podman >/dev/null 2>&1; then
	tool=(podman --storage-driver "$driver")
	build=("${tool[@]}" build --isolation chroot)
else
	echo "build.sh: neither buildah nor podman is installed (apt-get install buildah)" >&2
	exit 1
fi

# The binary must be static: the image has no libc.
if command -v readelf >/dev/null 2>&1 && readelf -l "$bin" 2>/dev/null | grep -q 'Requesting program interpreter'; then
	echo "build.sh: $bin is dynamically linked; build it with CGO_ENABLED=0 (make build)" >&2
	exit 1
fi
[[ -r "$cacerts" ]] || { echo "build.sh: no CA bundle at $cacerts (apt-get install ca-certificates)" >&2; exit 1; }

ctx="$(mktemp -d)"
trap 'rm -rf "$ctx"' EXIT
cp "$bin" "$ctx/kguard"
cp "$cacerts" "$ctx/ca-certificates.crt"
cp -r policies "$ctx/policies"
rm -f "$ctx/policies/embed.go"
chmod -R a+rX "$ctx"

"${build[@]}" --quiet -f deploy/image/Containerfile -t "$image" "$ctx" >/dev/null
echo "built image $image"
if [[ -n "$archive" ]]; then
	rm -f "$archive"
	"${tool[@]}" push --quiet "$image" "docker-archive:$archive:$image" >/dev/null
	echo "saved $image to $archive"
fi
