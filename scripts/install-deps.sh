#!/usr/bin/env bash
# Installs the Debian packages Dao's demo and tests run against, when they are missing.
# Needs root on Debian or Ubuntu. Installs only what is absent; says what it installs.
# Starts, stops and restarts no service: what ran before goes on running, and the services of
# the packages it installs are not started (Dao's demo and tests run private daemons).
set -euo pipefail

packages=(containerd runc containernetworking-plugins iptables iproute2 busybox-static docker-registry skopeo etcd-server etcd-client ca-certificates)

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }

# Docker's containerd.io package ships containerd, its shim and runc, and conflicts with Debian's
# containerd and runc: installing those would remove it, and docker-ce with it. Where it is
# installed, its programs are the ones the tests run.
if installed containerd.io; then
	kept=()
	for p in "${packages[@]}"; do
		case $p in
		containerd | runc) ;;
		*) kept+=("$p") ;;
		esac
	done
	packages=("${kept[@]}")
	for b in containerd containerd-shim-runc-v2 runc; do
		command -v "$b" >/dev/null || echo "install-deps: containerd.io is installed but $b is not on PATH" >&2
	done
fi

missing=()
for p in "${packages[@]}"; do
	installed "$p" || missing+=("$p")
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

# Debian's maintainer scripts start a package's service through invoke-rc.d or
# deb-systemd-invoke, and both ask /usr/sbin/policy-rc.d first: exit status 101 forbids it.
# One that the machine has already (Docker images ship one) is left as it is.
policy=/usr/sbin/policy-rc.d
own_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\n# Written by Dao scripts/install-deps.sh while it installs packages; removed afterwards.\nexit 101\n' >"$policy"
	chmod 755 "$policy"
	own_policy=1
fi
# active tells whether a service runs, by systemd or else by its init script.
systemd=0
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	systemd=1
fi
active() {
	if [ "$systemd" = 1 ]; then
		systemctl is-active --quiet "$1" 2>/dev/null
	else
		[ -x "/etc/init.d/$1" ] && "/etc/init.d/$1" status >/dev/null 2>&1
	fi
}
services=(containerd docker-registry etcd)
was_active=()
for svc in "${services[@]}"; do
	if active "$svc"; then
		was_active+=("$svc")
	fi
done
cleanup() {
	if [ "$own_policy" = 1 ]; then
		rm -f "$policy"
	fi
}
trap cleanup EXIT

apt-get update -qq
apt-get install -y -qq -o DPkg::Lock::Timeout=300 --no-install-recommends "${missing[@]}" >/dev/null

# In case a service was started all the same (a policy-rc.d of the machine's that allows it, a
# socket activation): stop it only when it is one this install started, not one that ran before.
for svc in "${services[@]}"; do
	case " ${was_active[*]} " in
	*" $svc "*) continue ;;
	esac
	if active "$svc"; then
		echo "install-deps: stopping $svc, which installing its package started"
		if [ "$systemd" = 1 ]; then
			systemctl stop "$svc" || true
		else
			"/etc/init.d/$svc" stop >/dev/null || true
		fi
	fi
done
