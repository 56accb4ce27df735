#!/usr/bin/env bash
# Prints the bin directory of a Go toolchain at least as new as go.mod's `go` line, and installs
# one first when the machine has none: make, through scripts/go, runs every go command with it.
#
# Looked for, in order: the go on PATH, /usr/local/go/bin/go, and the one this script installed
# under $DAO_GO_DIR. To install, it takes the version of go.mod's `toolchain` line (else its `go`
# line) as the module golang.org/toolchain that the Go module proxy serves (what GOTOOLCHAIN
# downloads), fetched and checksum-verified by any go already on the machine or, as root, by
# Debian's golang package, which it installs for that and removes again afterwards.
#
# Environment:
#   DAO_GO_DIR                where installed toolchains live, one directory per version
#                             (default /usr/local/lib/dao as root, else ~/.cache/dao)
#   DAO_GO_IGNORE_INSTALLED=1 use no Go that was on the machine before, not even to download:
#                             only Debian's package and what this script installs (CI's check of a
#                             fresh machine, scripts/test-install-go.sh, sets it)
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd -P)
log() { echo "install-go: $*" >&2; }

if [ "$(id -u)" -eq 0 ]; then
	dir=${DAO_GO_DIR:-/usr/local/lib/dao}
else
	dir=${DAO_GO_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dao}
fi
ignore=${DAO_GO_IGNORE_INSTALLED:-0}
[ "$ignore" = 0 ] || [ "$ignore" = 1 ] || { log "DAO_GO_IGNORE_INSTALLED must be 0 or 1, not $ignore"; exit 1; }

# ver_key prints a Go version (1.26, 1.26.8, go1.27rc1) as one integer that sorts as the versions
# do; a release candidate sorts below its .0 release.
ver_key() {
	[[ $1 =~ ^(go)?([0-9]+)\.([0-9]+)(\.([0-9]+))?(.*)$ ]] || { echo -1; return; }
	local patch=${BASH_REMATCH[5]:-0}
	if [ -z "${BASH_REMATCH[5]}" ] && [ -n "${BASH_REMATCH[6]}" ]; then
		patch=-1
	fi
	echo $((BASH_REMATCH[2] * 1000000 + BASH_REMATCH[3] * 1000 + patch))
}

want=$(awk '$1 == "go" { print $2; exit }' "$repo/go.mod")
toolchain=$(awk '$1 == "toolchain" { sub(/^go/, "", $2); print $2; exit }' "$repo/go.mod")
[ -n "$want" ] || { log "no go line in $repo/go.mod"; exit 1; }
install=$want
if [ -n "$toolchain" ] && [ "$(ver_key "$toolchain")" -gt "$(ver_key "$want")" ]; then
	install=$toolchain
fi
# Since Go 1.21 the first release of 1.N is go1.N.0, which `go 1.N` in go.mod means.
[[ $install == *.*.* || $install == *rc* || $install == *beta* ]] || install=$install.0

# go_version prints the version a go binary reports (go1.26.8), or nothing when it does not run.
# It runs outside the module, so that a go 1.21 or later does not switch toolchains for go.mod,
# and without a GOROOT, which may be meant for another go.
go_version() {
	(cd / && env -u GOROOT GOTOOLCHAIN=local "$1" version 2>/dev/null) | awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^go[0-9]/) { print $i; exit } }'
}

# usable prints the bin directory of the go at $1 when it is at least go.mod's version. Our own
# scripts/go, were it on PATH, is not one: it would ask this script again.
usable() {
	[ -x "$1" ] && [ "$(readlink -f "$1")" != "$repo/scripts/go" ] || return 1
	local v
	v=$(go_version "$1")
	if [ -z "$v" ] || [ "$(ver_key "$v")" -lt "$(ver_key "$want")" ]; then
		return 1
	fi
	dirname "$(readlink -f "$1")"
}

target=$dir/go$install
candidates=()
if [ "$ignore" = 0 ]; then
	candidates+=("$(command -v go || true)" /usr/local/go/bin/go)
fi
candidates+=("$target/bin/go")
for c in "${candidates[@]}"; do
	[ -n "$c" ] || continue
	if usable "$c"; then
		exit 0
	fi
done

mkdir -p "$dir"
# One install at a time: another make may be installing the same version.
exec 9>"$dir/.lock"
flock 9
if usable "$target/bin/go"; then
	exit 0
fi

work=$(mktemp -d "$dir/.install.XXXXXX")
apt_added=()
cleanup() {
	if [ ${#apt_added[@]} -gt 0 ]; then
		log "removing ${apt_added[*]} again"
		DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq -o DPkg::Lock::Timeout=300 "${apt_added[@]}" >/dev/null 2>&1 || log "could not remove ${apt_added[*]}"
	fi
	chmod -R u+w "$work" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

# A go to download with: any that runs `go mod download` (Go 1.13 or later) does, whatever its
# version; else Debian's, installed for the download only.
downloader=
if [ "$ignore" = 0 ]; then
	for c in "$(command -v go || true)" /usr/local/go/bin/go; do
		if [ -n "$c" ] && [ "$(readlink -f "$c")" != "$repo/scripts/go" ] && [ -n "$(go_version "$c")" ]; then
			downloader=$c
			break
		fi
	done
fi
if [ -z "$downloader" ]; then
	for c in /usr/lib/go-*/bin/go /usr/lib/go/bin/go; do
		if [ -x "$c" ] && [ -n "$(go_version "$c")" ]; then
			downloader=$c
		fi
	done
fi
if [ -z "$downloader" ]; then
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
		log "no Go $want or later found (looked at PATH, /usr/local/go and $dir), and none to download one with"
		log "run this as root on Debian or Ubuntu (make deps does), or put a Go $want or later on PATH"
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	# golang-go is only the link /usr/bin/go to a versioned package: install that one, so that
	# no old go shows up on PATH while it is here.
	apt-get update -qq
	pkg=$(apt-cache depends golang-go 2>/dev/null | awk '$1 == "Depends:" && $2 ~ /^golang-[0-9.]+-go$/ { print $2; exit }')
	pkg=${pkg:-golang-go}
	before=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 2>/dev/null | awk '$1 == "ii" { print $2 }' | sort)
	log "installing Debian's $pkg to download Go $install with"
	if ! apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "$pkg" >"$work/apt.log" 2>&1; then
		cat "$work/apt.log" >&2
		exit 1
	fi
	after=$(dpkg-query -W -f='${db:Status-Abbrev} ${Package}\n' 2>/dev/null | awk '$1 == "ii" { print $2 }' | sort)
	mapfile -t apt_added < <(comm -13 <(echo "$before") <(echo "$after"))
	for c in /usr/lib/go-*/bin/go /usr/lib/go/bin/go; do
		if [ -x "$c" ] && [ -n "$(go_version "$c")" ]; then
			downloader=$c
		fi
	done
	[ -n "$downloader" ] || { log "Debian's $pkg installed no go under /usr/lib"; exit 1; }
fi

goarch=$(cd / && env -u GOROOT "$downloader" env GOHOSTARCH)
goos=$(cd / && env -u GOROOT "$downloader" env GOHOSTOS)
[ "$goarch" != arm ] || goarch=armv6l
mod=golang.org/toolchain@v0.0.1-go$install.$goos-$goarch
log "downloading Go $install ($mod) with $(go_version "$downloader")"
# Outside any module, with a module cache of its own that is writable so that it can be removed;
# GOPROXY, GOSUMDB and the like come from the environment and the user's go env file as for any
# go command.
if ! json=$(cd / && env -u GOROOT GOTOOLCHAIN=local GO111MODULE=on GOFLAGS=-modcacherw \
	GOPATH="$work/gopath" GOMODCACHE="$work/gopath/pkg/mod" \
	"$downloader" mod download -json "$mod"); then
	log "could not download $mod: $(echo "$json" | sed -n 's/^[[:space:]]*"Error": "\(.*\)",\{0,1\}$/\1/p')"
	exit 1
fi
extracted=$(echo "$json" | awk -F'"' '$2 == "Dir" { print $4 }')
if [ -z "$extracted" ] || [ ! -f "$extracted/bin/go" ]; then
	log "the download of $mod has no bin/go"
	exit 1
fi
# A module zip keeps no file modes: as the go command does for a toolchain it downloads, make the
# commands executable.
find "$extracted/bin" "$extracted/pkg/tool" -type f -exec chmod a+x {} +
chmod -R u+w,a+rX "$extracted"
rm -rf "$target"
mv "$extracted" "$target"
usable "$target/bin/go" || { log "$target/bin/go does not run as Go $want or later"; exit 1; }
log "installed Go $install in $target"
