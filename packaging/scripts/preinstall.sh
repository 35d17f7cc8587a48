#!/bin/sh
# Runs before the files are unpacked (deb: install|upgrade; rpm: 1|2): the
# shopbridge user and group must exist for the config file's group.
set -e
nologin=/usr/sbin/nologin
[ -x "$nologin" ] || nologin=/sbin/nologin
if ! getent group shopbridge >/dev/null 2>&1; then
	groupadd --system shopbridge
fi
if ! getent passwd shopbridge >/dev/null 2>&1; then
	useradd --system --gid shopbridge --home-dir /var/lib/shopbridge --no-create-home \
		--shell "$nologin" --comment "shopbridge daemon" shopbridge
fi
exit 0
