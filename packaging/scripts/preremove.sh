#!/bin/sh
# deb: remove | upgrade <new> | deconfigure ...; rpm: 0 (erase) or 1 (upgrade).
# Stop only when the package goes away; an upgrade restarts in postinstall.
set -e
case "$1" in
	remove|0)
		if [ -d /run/systemd/system ]; then
			systemctl disable --now shopbridge.service >/dev/null 2>&1 || true
		fi
		;;
esac
exit 0
