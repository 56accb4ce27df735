#!/usr/bin/env bash
# Installs the Debian packages Dao's demo and tests run against, when they are missing.
# Needs root on Debian or Ubuntu. Installs only what is absent; says what it installs.
set -euo pipefail

packages=(containerd runc containernetworking-plugins iptables iproute2 busybox-static docker-registry skopeo etcd-server etcd-client ca-certificates)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing ${missing[*]}; run as root to install them" >&2
	exit 1
fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# The packaged services are not ours: Dao runs private daemons. Keep the system ones stopped
# so that they hold no ports or state a test could collide with.
for svc in containerd docker-registry etcd; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
		systemctl stop "$svc" || true
	fi
done
