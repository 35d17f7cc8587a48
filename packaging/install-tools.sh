#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages of packaging/apt-packages.txt that are
# missing; `make tools` and CI (.ci/run) run it. Needs root (apt-get).
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

mapfile -t pkgs < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' packaging/apt-packages.txt | awk '{print $1}')
missing=()
for p in "${pkgs[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
	echo "tools: all ${#pkgs[@]} packages of packaging/apt-packages.txt are installed"
	exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
	echo "tools: missing ${missing[*]}; run as root: sudo make tools (or apt-get install ${missing[*]})" >&2
	exit 1
fi
echo "tools: installing ${missing[*]}"
# Installing must not start daemons (avahi) on the machine's own
# interfaces: forbid service starts for the duration of the install.
made_policy=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	made_policy=1
fi
trap '[ -z "$made_policy" ] || rm -f /usr/sbin/policy-rc.d' EXIT
# apt's lock may be held by another install for a while: wait for it.
apt-get -o DPkg::Lock::Timeout=300 update -qq
apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}"
