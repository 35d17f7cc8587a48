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
else
	# No systemd running (a container, WSL, another init): the unit does
	# nothing here. Say so, and how to run it by hand.
	echo "shopbridge: systemd is not running on this machine, so the shopbridge service was not started."
	if [ "$upgrade" = yes ]; then
		echo "shopbridge: if you run it by hand, restart it to run the new version."
	fi
	echo "shopbridge: start it by hand (as root, in a terminal that stays open):"
	echo "shopbridge:     runuser -u shopbridge -- /usr/bin/shopbridge run"
	echo "shopbridge: it reads /etc/shopbridge/shopbridge.toml; check it with: shopbridge status"
fi
exit 0
