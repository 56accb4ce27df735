#!/usr/bin/env bash
# Checks the way make gets Go on a machine that has none: in an environment with no go on PATH,
# no GOROOT and DAO_GO_IGNORE_INSTALLED=1 (so /usr/local/go is not used either), scripts/go
# installs go.mod's Go into a temporary directory and builds and tests a package with it.
# .ci/run runs it when CI=true. Needs root, as a fresh install does; removes what it installed.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)

tmp=$(mktemp -d /tmp/dao-install-go.XXXXXX)
trap 'chmod -R u+w "$tmp" 2>/dev/null || true; rm -rf "$tmp"' EXIT

# The system's directories only: none of them holds a go on a machine without Go.
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# What a fresh root shell has, and what reaches the module proxy when the environment says so.
env=(PATH="$path" HOME="${HOME:-/root}" DAO_GO_DIR="$tmp" DAO_GO_IGNORE_INSTALLED=1)
for v in GOPROXY GOSUMDB GONOSUMDB GOPRIVATE GONOPROXY GOINSECURE GOFLAGS GOENV \
	http_proxy https_proxy no_proxy HTTP_PROXY HTTPS_PROXY NO_PROXY; do
	if [ -n "${!v:-}" ]; then
		env+=("$v=${!v}")
	fi
done
fresh() { env -i "${env[@]}" "$@"; }

if other=$(fresh sh -c 'command -v go'); then
	echo "test-install-go: note: $other is on PATH; DAO_GO_IGNORE_INSTALLED=1 keeps it unused" >&2
fi

bin=$(fresh ./scripts/install-go.sh)
case $bin in
"$tmp"/*) ;;
*)
	echo "test-install-go: install-go.sh gave $bin, not a Go under $tmp" >&2
	exit 1
	;;
esac
took=$(($(date +%s) - start))

# Go itself says whether it is new enough for go.mod: with GOTOOLCHAIN=local an older one fails.
fresh GOTOOLCHAIN=local ./scripts/go list -m >/dev/null
fresh GOTOOLCHAIN=local ./scripts/go test -count=1 ./internal/errclass
if [ -n "$(fresh ./scripts/gofmt -l internal/errclass)" ]; then
	echo "test-install-go: gofmt from $bin found unformatted files" >&2
	exit 1
fi
echo "test-install-go: $(fresh ./scripts/go version) installed in ${took}s into a machine with no Go, checked in $(($(date +%s) - start))s"
