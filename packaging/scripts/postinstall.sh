#!/bin/sh
# deb: "configure" [old-version]; rpm: 1 (install) or 2 (upgrade).
set -e
install -d -o shopbridge -g shopbridge -m 0750 /var/lib/shopbridge
# The config may hold tokens: readable by the service, not by everyone
# (also when an installer wrote it before the package came).
if [ -f /etc/shopbridge/shopbridge.toml ]; then
	chgrp shopbridge /etc/shopbridge/shopbridge.toml
	chmod 0640 /etc/shopbridge/shopbridge.toml
fi
# The store is the daemon's; a restore as root must not lock it out.
find /var/lib/shopbridge -maxdepth 1 -name 'shopbridge.db*' -exec chown shopbridge:shopbridge {} + 2>/dev/null || true

upgrade=no
case "$1" in
	configure) [ -n "$2" ] && upgrade=yes ;;
	2) upgrade=yes ;;
esac

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload >/dev/null 2>&1 || true
	if [ "$upgrade" = yes ]; then
		# The new binary migrates the store as it opens it.
		systemctl try-restart shopbridge.service >/dev/null 2>&1 || true
	else
		systemctl enable shopbridge.service >/dev/null 2>&1 || true
		systemctl start shopbridge.service || echo "shopbridge: the service did not start; see journalctl -u shopbridge" >&2
	fi
fi
exit 0
