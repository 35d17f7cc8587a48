#!/bin/sh
# deb: remove | purge | upgrade ...; rpm: 0 (erase) or 1 (upgrade).
# The store in /var/lib/shopbridge stays unless the package is purged
# (dpkg --purge / apt purge); rpm has no purge: remove it by hand.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" = purge ]; then
	rm -rf /var/lib/shopbridge /etc/shopbridge
	if getent passwd shopbridge >/dev/null 2>&1; then
		userdel shopbridge >/dev/null 2>&1 || true
	fi
	if getent group shopbridge >/dev/null 2>&1; then
		groupdel shopbridge >/dev/null 2>&1 || true
	fi
fi
exit 0
