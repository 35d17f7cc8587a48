#!/usr/bin/env bash
# Heavy packaging tests (CI runs them as root; see docs/packaging-tests.md).
#
#   packaging/test.sh [all|version|scripts|packages|deb|systemd|wine|msi]...   (default: all)
#
#   version   packaging/version.sh: tags, dev builds, package versions
#   scripts   postinstall with and without systemd running (stubbed commands)
#   packages  contents, owners, modes, conffiles and scripts of the .deb and
#             .rpm; archives; SHA256SUMS; systemd-analyze verify on the unit;
#             no hang-injection code in the released binary
#   deb       .deb install, upgrade (receipts in the outbox survive, the
#             edited config stays), an upgrade that migrates the store to
#             the next schema (a test build), a downgrade below it that refuses
#             to start and leaves the store alone, reinstalling the newer
#             one, remove (data kept), purge (data gone) on this machine
#   systemd   a Debian guest under QEMU with systemd as PID 1 (see "systemd in
#             a Debian guest" below): the deb part there, apt install, restart
#             after SIGKILL, the watchdog restarting a hung test build, start
#             at boot, journald, stop, apt remove and purge
#   wine      the Windows build under Wine in a loopback-only network
#             namespace: run serves hello/list/bill/receipt, keeps its store
#             across a restart; install/status/stop/start/uninstall
#   msi       msiexec /i installs and starts the service, status/stop/start
#             work, msiexec /x removes it
#
# A part whose tools are missing is skipped with a message, or fails when
# STRICT=1 or SHOPBRIDGE_STRICT=1 (CI). Needs (apt): wine wine64
# gcc-mingw-w64-x86-64 wixl msitools rpm systemd curl zip unzip iproute2
# qemu-system-x86 debootstrap e2fsprogs, and /dev/kvm for systemd.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
STRICT=${STRICT:-${SHOPBRIDGE_STRICT:-0}}
WORK=$(mktemp -d /tmp/shopbridge-pkgtest.XXXXXX)
NS=sbpkg$$
PORT=18480
failures=0
skips=0

log() { printf '== %s\n' "$*"; }
fail() { printf 'FAIL: %s\n' "$*" >&2; failures=$((failures + 1)); }
skip() {
	if [[ $STRICT == 1 ]]; then fail "cannot run: $*"; else printf 'SKIP: %s\n' "$*"; skips=$((skips + 1)); fi
}
need() { for t in "$@"; do command -v "$t" >/dev/null 2>&1 || { skip "$section: $t not installed"; return 1; }; done; }
check() { # check "what" command...
	local what=$1; shift
	if "$@" >"$WORK/check.out" 2>&1; then printf 'ok   %s\n' "$what"; else fail "$what"; sed 's/^/     /' "$WORK/check.out" >&2; fi
}
eq() { [[ "$1" == "$2" ]] || { echo "got [$1], want [$2]"; return 1; }; }
# What packaging/monitoring ships for a chain's Prometheus and Grafana, in
# every package (docs/monitoring.md; README.md is that doc).
MONITORING=(README.md grafana-fleet.json grafana-shop.json prometheus.yml shopbridge-alerts.yml shops.yml)
monitoring_list() { printf '%s\n' "${MONITORING[@]}" | sed "s|^|$1|" | sort; } # monitoring_list PREFIX

cleanup() {
	set +e
	if [[ -n ${WINEPREFIX:-} && -d ${WINEPREFIX:-/nonexistent} ]]; then ip netns exec "$NS" wineserver -k >/dev/null 2>&1; fi
	ip netns del "$NS" >/dev/null 2>&1
	if [[ ${DEB_TOUCHED:-0} == 1 ]]; then dpkg --purge shopbridge >/dev/null 2>&1; fi
	[[ -n ${DAEMON_PID:-} ]] && kill "$DAEMON_PID" 2>/dev/null
	rm -rf "$WORK"
}
trap cleanup EXIT

# ---- build: an "old" and a "new" release from this tree ----
# PKGS names a directory with them built already (old/, new/, next/: the
# systemd guest runs the deb part on the host's builds).
OLD=${PKGS:-$WORK}/old NEW=${PKGS:-$WORK}/new
build() {
	[[ -f $NEW/SHA256SUMS ]] && return 0
	if [[ -n ${PKGS:-} ]]; then
		[[ -n $(ls "$NEW"/shopbridge_*_amd64.deb 2>/dev/null) ]] && return 0
		fail "PKGS=$PKGS holds no new/shopbridge_*_amd64.deb"; return 1
	fi
	log "building v0.0.1 (deb, msi) and v0.0.2 (all formats, linux/amd64 + windows/amd64)"
	local formats="tar zip deb rpm sums" oldformats=deb oldplatforms=linux/amd64
	if command -v wixl >/dev/null; then
		formats="$formats msi" oldformats="deb msi" oldplatforms="linux/amd64 windows/amd64"
	fi
	OUT=$OLD VERSION=v0.0.1 PLATFORMS="$oldplatforms" FORMATS="$oldformats" packaging/dist.sh >/dev/null
	OUT=$NEW VERSION=v0.0.2 PLATFORMS="linux/amd64 windows/amd64" FORMATS="$formats" packaging/dist.sh >/dev/null
}

# A "next" release for the downgrade test: v0.0.3, linked to write the store
# schema after this tree's (storage.schemaOverride; migrations past
# SchemaVersion are no-ops), which v0.0.2 and v0.0.1 refuse. Test-only,
# .deb only.
SCHEMA=${SCHEMA:-$(sed -n 's/^const SchemaVersion = \([0-9]*\)$/\1/p' storage/store.go)}
NEXT_SCHEMA=$((SCHEMA + 1))
NEXT=${PKGS:-$WORK}/next
build_next() {
	[[ -f $NEXT/shopbridge_0.0.3-1_amd64.deb ]] && return 0
	log "building v0.0.3 (deb, linux/amd64) writing store schema $NEXT_SCHEMA (test build)"
	if ! OUT=$NEXT VERSION=v0.0.3 PLATFORMS=linux/amd64 FORMATS=deb \
		EXTRA_LDFLAGS="-X github.com/shopbridge/shopbridge/storage.schemaOverride=$NEXT_SCHEMA" \
		packaging/dist.sh >"$WORK/next-build.log" 2>&1; then
		fail "building v0.0.3"; sed 's/^/     /' "$WORK/next-build.log" >&2
	fi
}

# ---- packages ----
test_packages() {
	section=packages
	need dpkg-deb rpm systemd-analyze tar unzip sha256sum || return 0
	build
	local deb rpmf
	deb=$(ls "$NEW"/shopbridge_*_amd64.deb) rpmf=$(ls "$NEW"/shopbridge-*.x86_64.rpm)
	log "deb $(basename "$deb")"
	dpkg-deb -c "$deb" | awk '{print $1, $2, $6}' >"$WORK/deb.list"
	check "deb: /usr/bin/shopbridge root:root 0755" grep -qx -- '-rwxr-xr-x root/root ./usr/bin/shopbridge' "$WORK/deb.list"
	check "deb: config root:shopbridge 0640" grep -qx -- '-rw-r----- root/shopbridge ./etc/shopbridge/shopbridge.toml' "$WORK/deb.list"
	check "deb: unit root:root 0644" grep -qx -- '-rw-r--r-- root/root ./usr/lib/systemd/system/shopbridge.service' "$WORK/deb.list"
	for f in "${MONITORING[@]}"; do
		check "deb: monitoring/$f root:root 0644" grep -qx -- "-rw-r--r-- root/root ./usr/share/shopbridge/monitoring/$f" "$WORK/deb.list"
	done
	for f in README.md README.ru.md docs/install.md; do
		check "deb: doc/$f root:root 0644" grep -qx -- "-rw-r--r-- root/root ./usr/share/doc/shopbridge/$f" "$WORK/deb.list"
	done
	check "deb: nothing else shipped" eq "$(grep -vc '^d' "$WORK/deb.list")" $((3 + ${#MONITORING[@]} + 2 + $(ls docs/*.md | wc -l)))
	check "deb: config is a conffile" eq "$(dpkg-deb -f "$deb" Package && dpkg-deb --ctrl-tarfile "$deb" | tar -xOf - ./conffiles)" "shopbridge
/etc/shopbridge/shopbridge.toml"
	mkdir -p "$WORK/ctrl" && dpkg-deb -e "$deb" "$WORK/ctrl"
	for s in preinst postinst prerm postrm; do
		check "deb: $s present, executable, valid sh" test -x "$WORK/ctrl/$s" -a -n "$(sh -n "$WORK/ctrl/$s" && echo ok)"
	done
	check "deb: postinst enables and starts where systemd runs" grep -q 'systemctl start shopbridge.service' "$WORK/ctrl/postinst"
	check "deb: prerm stops on removal" grep -q 'systemctl disable --now shopbridge.service' "$WORK/ctrl/prerm"
	check "deb: postrm deletes data only on purge" grep -q 'if \[ "$1" = purge \]' "$WORK/ctrl/postrm"
	check "deb: version" eq "$(dpkg-deb -f "$deb" Version)" "0.0.2-1"

	log "rpm $(basename "$rpmf")"
	rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$rpmf" >"$WORK/rpm.list" 2>/dev/null
	check "rpm: /usr/bin/shopbridge root:root 0755" grep -qx -- '-rwxr-xr-x root:root /usr/bin/shopbridge' "$WORK/rpm.list"
	check "rpm: config root:shopbridge 0640" grep -qx -- '-rw-r----- root:shopbridge /etc/shopbridge/shopbridge.toml' "$WORK/rpm.list"
	check "rpm: unit root:root 0644" grep -qx -- '-rw-r--r-- root:root /usr/lib/systemd/system/shopbridge.service' "$WORK/rpm.list"
	check "rpm: monitoring files root:root 0644" eq "$(grep ' /usr/share/shopbridge/monitoring/' "$WORK/rpm.list" | sort)" "$(monitoring_list '-rw-r--r-- root:root /usr/share/shopbridge/monitoring/')"
	check "rpm: config is %config(noreplace)" eq "$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$rpmf" 2>/dev/null | grep shopbridge.toml)" "/etc/shopbridge/shopbridge.toml cn"
	rpm -qp --scripts "$rpmf" >"$WORK/rpm.scripts" 2>/dev/null
	for s in preinstall postinstall preuninstall postuninstall; do
		check "rpm: $s scriptlet" grep -q "^$s scriptlet" "$WORK/rpm.scripts"
	done
	check "rpm: version" eq "$(rpm -qp --qf '%{VERSION}-%{RELEASE}' "$rpmf" 2>/dev/null)" "0.0.2-1"

	log "archives and sums"
	check "tar.gz: binary, config, unit" eq "$(tar -tzf "$NEW"/shopbridge_0.0.2_linux_amd64.tar.gz | grep -v '/$' | sed 's|^[^/]*/||' | grep -v -e README -e ^monitoring/ -e ^docs/ | sort | tr '\n' ' ')" "shopbridge shopbridge.service shopbridge.toml "
	check "tar.gz: monitoring files" eq "$(tar -tzf "$NEW"/shopbridge_0.0.2_linux_amd64.tar.gz | grep -v '/$' | sed 's|^[^/]*/||' | grep ^monitoring/ | sort)" "$(monitoring_list monitoring/)"
	check "zip: exe and config" eq "$(unzip -Z1 "$NEW"/shopbridge_0.0.2_windows_amd64.zip | grep -v '/$' | sed 's|^[^/]*/||' | grep -v -e README -e ^monitoring/ -e ^docs/ | sort | tr '\n' ' ')" "shopbridge.exe shopbridge.toml "
	check "zip: monitoring files beside the exe" eq "$(unzip -Z1 "$NEW"/shopbridge_0.0.2_windows_amd64.zip | grep -v '/$' | sed 's|^[^/]*/||' | grep ^monitoring/ | sort)" "$(monitoring_list monitoring/)"
	if [[ -n $(ls "$NEW"/shopbridge_*_windows_amd64.msi 2>/dev/null) ]] && need msiinfo; then
		# The File table's FileName is "SHORT~1|long name" where 8.3 differs.
		check "msi: monitoring files in INSTALLDIR\\monitoring" eq "$(msiinfo export "$NEW"/shopbridge_*_windows_amd64.msi File | awk -F'\t' '$2 == "Monitoring" {n = $3; sub(/.*\|/, "", n); print n}' | sort)" "$(monitoring_list '')"
		check "msi: monitoring folder under INSTALLDIR" sh -c "msiinfo export '$(ls "$NEW"/shopbridge_*_windows_amd64.msi)' Directory | grep -qP '^MONITORINGDIR\tINSTALLDIR\t(.*\|)?monitoring\r?$'"
	fi
	check "SHA256SUMS verifies" sh -c "cd '$NEW' && sha256sum -c --quiet SHA256SUMS"
	check "SHA256SUMS lists every package" eq "$(wc -l <"$NEW/SHA256SUMS")" "$(ls "$NEW" | grep -cE '\.(tar\.gz|zip|deb|rpm|msi)$')"
	check "dist leaves only the release files and SHA256SUMS (no build/)" eq "$(ls -A "$NEW" | grep -cvE '\.(tar\.gz|zip|deb|rpm|msi)$|^SHA256SUMS$')" 0

	log "systemd-analyze verify"
	mkdir -p "$WORK/unitroot/usr/bin"
	tar -xzf "$NEW"/shopbridge_0.0.2_linux_amd64.tar.gz -C "$WORK" 
	sed "s|^ExecStart=/usr/bin/shopbridge|ExecStart=$WORK/shopbridge_0.0.2_linux_amd64/shopbridge|" \
		"$WORK/shopbridge_0.0.2_linux_amd64/shopbridge.service" >"$WORK/shopbridge.service"
	check "systemd-analyze verify shopbridge.service" sh -c "out=\$(systemd-analyze verify '$WORK/shopbridge.service' 2>&1); echo \"\$out\"; [ -z \"\$out\" ]"
	check "unit: Type=notify, NotifyAccess=main, WatchdogSec=30s" sh -c "grep -qx Type=notify '$WORK/shopbridge.service' && grep -qx NotifyAccess=main '$WORK/shopbridge.service' && grep -qx WatchdogSec=30s '$WORK/shopbridge.service'"

	log "release binary: no test-build hang injection"
	local bin=$WORK/shopbridge_0.0.2_linux_amd64/shopbridge
	check "no hang-injection code in the released binary" sh -c "! grep -aq 'hang injected' '$bin'"
	check "no build tags in the released binary" sh -c "! go version -m '$bin' | grep -q -- '-tags='"
	check "released binary's version is no TEST BUILD" sh -c "'$bin' version | grep -q 'shopbridge v0.0.2' && ! '$bin' version | grep -q 'TEST BUILD'"
}

# ---- deb install / upgrade / remove / purge ----
wait_http() { # wait_http URL: up to 60 s
	for _ in $(seq 1 300); do curl -fsS -m 2 "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
	echo "no answer from $1"; return 1
}
status_field() { curl -fsS -m 5 "http://127.0.0.1:$PORT/admin/api/status" | sed -n "s/^  \"$1\": \([0-9]*\),*$/\1/p" | head -1; }
# The daemon under test reads a config the test writes before the package
# goes in (dpkg keeps it: --force-confold): loopback only, no mDNS, an
# upstream that refuses, so receipts wait in the outbox. Where systemd runs
# the package starts the service itself and the test drives it through
# systemctl; elsewhere it runs the binary as the shopbridge user, as the
# unit does.
seed_config() {
	mkdir -p /etc/shopbridge
	cat >/etc/shopbridge/shopbridge.toml <<CONF
listen = "127.0.0.1:$PORT"
mdns = false
upstream = "http://127.0.0.1:9"
CONF
}
have_systemd() { [[ -d /run/systemd/system ]]; }
start_daemon() {
	if have_systemd; then
		systemctl start shopbridge.service
		DAEMON_RUN=$(systemctl show -p InvocationID --value shopbridge)
	else
		DAEMON_RUN=$(($(stat -c %s "$WORK/daemon.log" 2>/dev/null || echo 0) + 1))
		runuser -u shopbridge -- /usr/bin/shopbridge run >>"$WORK/daemon.log" 2>&1 &
		DAEMON_PID=$!
	fi
	wait_http "http://127.0.0.1:$PORT/healthz"
}
# daemon_output prints what the daemon started last has logged: its part of
# the journal, or of the log of the runs by hand.
daemon_output() {
	if have_systemd; then
		journalctl -q -o cat _SYSTEMD_INVOCATION_ID="$DAEMON_RUN"
	else
		tail -c +"$DAEMON_RUN" "$WORK/daemon.log"
	fi
}
# daemon_logged ERE: the last daemon run logged a line matching the
# extended regexp (journald may lag).
daemon_logged() {
	local out
	for _ in $(seq 1 150); do
		out=$(daemon_output)
		grep -qE -- "$1" <<<"$out" && return 0
		sleep 0.2
	done
	printf 'the daemon did not log [%s]; it logged:\n%s\n' "$1" "$out"; return 1
}
daemon_not_logged() { # daemon_not_logged ERE, after the run stopped
	local out
	out=$(daemon_output)
	! grep -E -- "$1" <<<"$out"
}
stop_daemon() {
	if have_systemd; then
		systemctl stop shopbridge.service
	else
		kill -TERM "$DAEMON_PID"; wait "$DAEMON_PID" || true; DAEMON_PID=
	fi
}

test_deb() {
	section=deb
	[[ $(id -u) == 0 ]] || { skip "deb: needs root"; return 0; }
	need dpkg curl runuser || return 0
	if dpkg -s shopbridge >/dev/null 2>&1; then skip "deb: a shopbridge package is already installed here"; return 0; fi
	build
	DEB_TOUCHED=1
	seed_config
	log "install v0.0.1 (systemd running: $(have_systemd && echo yes || echo no))"
	check "dpkg -i old" dpkg -i --force-confold "$OLD"/shopbridge_0.0.1-1_amd64.deb
	if have_systemd; then
		check "service enabled and started by the package" sh -c 'systemctl is-enabled shopbridge && systemctl is-active shopbridge'
		check "shopbridge status: running (exit 0)" /usr/bin/shopbridge status
		check "service answers" wait_http "http://127.0.0.1:$PORT/healthz"
		local pid
		pid=$(systemctl show -p MainPID --value shopbridge)
		kill -KILL "$pid"
		check "systemd restarts it after a crash" sh -c "for i in \$(seq 1 300); do p=\$(systemctl show -p MainPID --value shopbridge); [ \"\$p\" != 0 ] && [ \"\$p\" != $pid ] && curl -fsS -m1 http://127.0.0.1:$PORT/healthz && exit 0; sleep 0.2; done; exit 1"
		check "runs as shopbridge" eq "$(ps -o user= -p "$(systemctl show -p MainPID --value shopbridge)")" shopbridge
		stop_daemon
		check "shopbridge status: stopped (exit 3)" sh -c '/usr/bin/shopbridge status; [ $? = 3 ]'
	fi
	check "user shopbridge exists, no login" sh -c 'getent passwd shopbridge | grep -q ":/var/lib/shopbridge:.*nologin$"'
	check "/var/lib/shopbridge shopbridge:shopbridge 0750" eq "$(stat -c '%U:%G %a' /var/lib/shopbridge)" "shopbridge:shopbridge 750"
	check "config root:shopbridge 0640" eq "$(stat -c '%U:%G %a' /etc/shopbridge/shopbridge.toml)" "root:shopbridge 640"
	check "binary is v0.0.1" sh -c '/usr/bin/shopbridge version | grep -q "shopbridge v0.0.1"'
	check "systemd-analyze verify installed unit" sh -c 'out=$(systemd-analyze verify /usr/lib/systemd/system/shopbridge.service 2>&1); echo "$out"; [ -z "$out" ]'

	log "receipts into the outbox (upstream down)"
	start_daemon
	for i in 1 2 3 4 5; do
		curl -fsS -m 5 -X POST -H 'Content-Type: application/json' \
			-d "{\"id\":\"pkgtest-$i\",\"type\":\"ReceiptCreated\",\"data\":{\"type\":\"SELL\",\"extras\":{\"billId\":\"$i\"}}}" \
			"http://127.0.0.1:$PORT/api/v2/receipts" >/dev/null
	done
	check "outbox holds 5 before the upgrade" eq "$(status_field outbox)" 5
	stop_daemon
	echo '# local edit kept across upgrades' >>/etc/shopbridge/shopbridge.toml

	log "upgrade to v0.0.2"
	check "dpkg -i new (upgrade)" dpkg -i --force-confold "$NEW"/shopbridge_0.0.2-1_amd64.deb
	check "binary is v0.0.2" sh -c '/usr/bin/shopbridge version | grep -q "shopbridge v0.0.2"'
	check "edited config kept" grep -q 'local edit kept' /etc/shopbridge/shopbridge.toml
	start_daemon
	check "outbox still holds 5 after the upgrade" eq "$(status_field outbox)" 5
	check "receipts still 5 after the upgrade" eq "$(status_field receipts)" 5
	stop_daemon
	check "store owned by shopbridge" eq "$(stat -c %U /var/lib/shopbridge/shopbridge.db)" shopbridge

	build_next
	log "upgrade to v0.0.3 (store schema 2 -> 3), receipts still in the outbox"
	check "dpkg -i v0.0.3 (upgrade)" dpkg -i --force-confold "$NEXT"/shopbridge_0.0.3-1_amd64.deb
	check "binary is v0.0.3" sh -c '/usr/bin/shopbridge version | grep -q "shopbridge v0.0.3"'
	start_daemon
	check "outbox still holds 5 after the migration" eq "$(status_field outbox)" 5
	check "receipts still 5 after the migration" eq "$(status_field receipts)" 5
	if have_systemd; then # without it "shopbridge status" cannot ask the service manager
		check "shopbridge status: running, 5 receipts waiting" sh -c '/usr/bin/shopbridge status | grep -q "^outbox: *5 receipt(s) waiting"'
	fi
	check "the daemon migrated the store $SCHEMA -> $NEXT_SCHEMA" daemon_logged "msg=\"migrating store\" .*from=$SCHEMA to=$NEXT_SCHEMA "
	stop_daemon

	log "downgrade to v0.0.2: refuses the schema-$NEXT_SCHEMA store, leaves it alone"
	local db=/var/lib/shopbridge/shopbridge.db sum rc=0
	sum=$(sha256sum <"$db")
	check "dpkg -i v0.0.2 over v0.0.3 (downgrade)" dpkg -i --force-confold "$NEW"/shopbridge_0.0.2-1_amd64.deb
	check "binary is v0.0.2" sh -c '/usr/bin/shopbridge version | grep -q "shopbridge v0.0.2"'
	# By hand in both cases: under systemd the unit would restart it forever.
	runuser -u shopbridge -- timeout 10 /usr/bin/shopbridge run >"$WORK/downgrade.log" 2>&1 || rc=$?
	check "v0.0.2 run exits 1" sh -c "[ $rc = 1 ] || { echo 'exit $rc:'; cat '$WORK/downgrade.log'; exit 1; }"
	check "it says the store's schema $NEXT_SCHEMA is newer than its $SCHEMA" sh -c 'grep -qF -- "$1" "$2" || { cat "$2"; exit 1; }' - \
		"store $db has schema version $NEXT_SCHEMA, newer than this shopbridge v0.0.2 understands ($SCHEMA): install the newer version again or restore a backup" "$WORK/downgrade.log"
	check "store untouched (sha256)" eq "$(sha256sum <"$db")" "$sum"
	check "nothing answers" sh -c "! curl -fsS -m 2 http://127.0.0.1:$PORT/healthz"

	log "reinstall v0.0.3: starts again, receipts intact"
	check "dpkg -i v0.0.3 again" dpkg -i --force-confold "$NEXT"/shopbridge_0.0.3-1_amd64.deb
	start_daemon
	check "outbox holds 5 after the downgrade attempt" eq "$(status_field outbox)" 5
	check "receipts still 5 after the downgrade attempt" eq "$(status_field receipts)" 5
	stop_daemon
	check "no migration on a schema-$NEXT_SCHEMA store" daemon_not_logged 'msg="migrating store"'

	log "remove, then purge"
	if have_systemd; then start_daemon; fi
	check "dpkg -r" dpkg -r shopbridge
	if have_systemd; then
		check "service stopped on removal" sh -c '! systemctl is-active shopbridge'
	fi
	check "binary gone" test ! -e /usr/bin/shopbridge
	check "unit gone" test ! -e /usr/lib/systemd/system/shopbridge.service
	check "store kept after remove" test -s /var/lib/shopbridge/shopbridge.db
	check "config kept after remove" test -f /etc/shopbridge/shopbridge.toml
	check "dpkg --purge" dpkg --purge shopbridge
	check "data gone after purge" test ! -e /var/lib/shopbridge
	check "config gone after purge" test ! -e /etc/shopbridge
	check "user gone after purge" sh -c '! getent passwd shopbridge'
	DEB_TOUCHED=0
}

# ---- systemd in a Debian guest ----
# A Debian bookworm rootfs (debootstrap from the mirror apt uses here),
# cached between runs, booted with QEMU from its own kernel and initramfs:
# systemd is PID 1 there, unlike on this machine or in CI's container.
# packaging/vm/guest.sh runs inside as a unit on every boot and reports
# "SBTEST ..." lines on the serial console and in a file on the image. The
# guest's network is QEMU's user network with restrict=on (no way out) and
# one port forwarded from 127.0.0.1 here.
#
# QEMU runs with KVM where /dev/kvm can boot a stock kernel. Some cloud
# machines offer /dev/kvm through PVM (kvm_pvm, nested virtualization
# without hardware support), which boots only kernels built as PVM guests:
# there, and with SHOPBRIDGE_VM_ACCEL=tcg, QEMU emulates the CPU instead,
# which works but takes several times longer.
VM_SUITE=bookworm
VM_PKGS=systemd,systemd-sysv,udev,dbus,curl,ca-certificates,iproute2,procps,kmod,linux-image-amd64,initramfs-tools
VM_CACHE=${SHOPBRIDGE_VM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/shopbridge-vm}

# debian_mirror prints the Debian mirror apt uses for the main suite here.
debian_mirror() {
	local m
	m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '
		/^URIs:/ { u = $2 }
		/^Suites:/ { for (i = 2; i <= NF; i++) if ($i ~ /^(bookworm|stable)$/) { print u; exit } }')
	[[ -z $m ]] && m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
		awk '$1 == "deb" && $0 !~ /security/ { for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; exit } }')
	echo "${m:-http://deb.debian.org/debian}"
}

# vm_rootfs sets ROOTFS to a cached debootstrap of the guest, building it
# when missing. The cache key covers this function's own text.
vm_rootfs() {
	local mirror key tmp
	mirror=${DEBIAN_MIRROR:-$(debian_mirror)}
	key=$(printf '%s\n' "$VM_SUITE" "$mirror" "$VM_PKGS" "$(sed -n '/^vm_rootfs()/,/^}/p' "$ROOT/packaging/test.sh")" | sha256sum | cut -c1-12)
	ROOTFS=$VM_CACHE/$VM_SUITE-$key
	if [[ -f $ROOTFS/.complete ]]; then
		log "guest rootfs: cached $ROOTFS"
		return 0
	fi
	log "guest rootfs: debootstrap $VM_SUITE from $mirror into $ROOTFS (cached for the next run)"
	local t0=$SECONDS
	tmp=$ROOTFS.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp"
	debootstrap --foreign --variant=minbase --include="$VM_PKGS" "$VM_SUITE" "$tmp" "$mirror" >"$WORK/debootstrap.log" 2>&1 ||
		{ tail -20 "$WORK/debootstrap.log" >&2; return 1; }
	# dpkg without an fsync per file (the rootfs is rebuilt whole if this
	# fails), and an initramfs with the few drivers QEMU's machine needs
	# instead of "most" of them: minutes less.
	echo force-unsafe-io >"$tmp/etc/dpkg/dpkg.cfg.d/unsafe-io"
	mkdir -p "$tmp/etc/initramfs-tools/conf.d" "$tmp/etc/initramfs-tools/hooks"
	printf 'MODULES=list\nCOMPRESS=gzip\n' >"$tmp/etc/initramfs-tools/conf.d/shopbridge-vm.conf"
	cat >"$tmp/etc/initramfs-tools/hooks/shopbridge-vm" <<'HOOK'
#!/bin/sh
[ "$1" = prereqs ] && exit 0
. /usr/share/initramfs-tools/hook-functions
for m in virtio_pci virtio_blk ext4 virtio_net virtio_rng; do force_load $m; done
HOOK
	chmod 0755 "$tmp/etc/initramfs-tools/hooks/shopbridge-vm"
	chroot "$tmp" /debootstrap/debootstrap --second-stage >>"$WORK/debootstrap.log" 2>&1 ||
		{ tail -20 "$WORK/debootstrap.log" >&2; tail -20 "$tmp/debootstrap/debootstrap.log" >&2 2>/dev/null; return 1; }
	rm -f "$tmp"/var/cache/apt/archives/*.deb
	ls "$tmp"/boot/vmlinuz-* "$tmp"/boot/initrd.img-* >/dev/null || { echo "no kernel in the rootfs" >&2; return 1; }
	touch "$tmp/.complete"
	mv "$tmp" "$ROOTFS"
	log "guest rootfs: built in $((SECONDS - t0))s, $(du -sh "$ROOTFS" | cut -f1)"
}

# vm_setup DIR turns a hard-linked copy of the cached rootfs into the test
# guest. The cache must stay as debootstrap left it, so files are replaced
# (rm, then written), never written in place.
vm_setup() {
	local d=$1 f
	put() { rm -f "$d/$1"; mkdir -p "$(dirname "$d/$1")"; cat >"$d/$1"; }
	# Root on /dev/vda, a static address on QEMU's user network.
	echo '/dev/vda / ext4 rw,errors=remount-ro 0 0' | put etc/fstab
	echo sbguest | put etc/hostname
	printf '127.0.0.1 localhost\n127.0.1.1 sbguest\n' | put etc/hosts
	printf '[Match]\nType=ether\n[Network]\nAddress=10.0.2.15/24\nGateway=10.0.2.2\n' | put etc/systemd/network/10-qemu.network
	chroot "$d" systemctl enable -q systemd-networkd
	# Nothing else touching dpkg or the console: no timers running apt, no
	# login prompts (the serial console carries the results, there is no
	# screen), no e2scrub.
	for f in apt-daily.timer apt-daily-upgrade.timer apt-daily.service apt-daily-upgrade.service \
		dpkg-db-backup.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
		getty@tty1.service serial-getty@ttyS0.service; do
		rm -f "$d/etc/systemd/system/$f"; ln -s /dev/null "$d/etc/systemd/system/$f"
	done
	# Kernel modules for hardware QEMU's machine does not have: udev loads
	# them otherwise (wireless, sound, KVM, watchdogs...), seconds each
	# without KVM.
	local mods
	mods=$(echo "$d"/lib/modules/*)
	rm -rf "$mods"/kernel/{sound,arch/x86/kvm,net/wireless,net/mac80211,net/bluetooth}
	rm -rf "$mods"/kernel/drivers/{gpu,media,net/wireless,net/ethernet,infiniband,bluetooth,scsi,ata,usb,hid,input,watchdog,i2c,iio,hwmon,mmc,nvme,platform,thunderbolt,video,staging,misc,char/tpm}
	chroot "$d" depmod -a "$(basename "$mods")"
	cat <<'UNIT' | put etc/systemd/system/sbtest.service
[Unit]
Description=shopbridge guest test (packaging/vm/guest.sh)
ConditionPathExists=/opt/sbtest/guest.sh
# After the boot has started shopbridge (once installed): its Type=notify
# then means it answers by the time this runs.
After=shopbridge.service
[Service]
Type=simple
Environment=DEBIAN_FRONTEND=noninteractive
ExecStart=/opt/sbtest/guest.sh
StandardOutput=journal
[Install]
WantedBy=multi-user.target
UNIT
	chroot "$d" systemctl enable -q sbtest.service
	# The test: this tree's test.sh and guest.sh, the packages and the
	# hang-inject test binary.
	mkdir -p "$d/opt/sbtest/packaging"
	cp packaging/test.sh "$d/opt/sbtest/packaging/"
	cp packaging/vm/guest.sh "$d/opt/sbtest/"
	cp "$WORK/shopbridge-hang" "$d/opt/sbtest/"
	for f in old new next; do
		mkdir -p "$d/opt/sbtest/pkgs/$f"
		cp "${PKGS:-$WORK}/$f"/shopbridge_*_amd64.deb "$d/opt/sbtest/pkgs/$f/"
	done
	echo "SCHEMA=$SCHEMA" >"$d/opt/sbtest/env"
}

# free_port prints a TCP port on 127.0.0.1 nothing listens on.
free_port() {
	local p
	for p in $(shuf -i 20000-60000 -n 20); do
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return 0; }
	done
	return 1
}

test_systemd() {
	section=systemd
	[[ $(id -u) == 0 ]] || { skip "systemd: needs root (debootstrap, the guest image)"; return 0; }
	need qemu-system-x86_64 debootstrap mkfs.ext4 debugfs go curl || return 0
	local accel=${SHOPBRIDGE_VM_ACCEL:-kvm}
	if [[ $accel == kvm && ! (-r /dev/kvm && -w /dev/kvm) ]]; then
		log "systemd: no usable /dev/kvm: emulating the CPU (TCG), several times slower"
		accel=tcg
	elif [[ $accel == kvm && -d /sys/module/kvm_pvm && ! -d /sys/module/kvm_intel && ! -d /sys/module/kvm_amd ]]; then
		log "systemd: /dev/kvm is PVM (kvm_pvm), which cannot boot Debian's kernel: emulating the CPU (TCG), several times slower"
		accel=tcg
	fi
	local timeout=${VM_TIMEOUT:-$([[ $accel == kvm ]] && echo 420 || echo 1500)}
	build
	build_next
	log "building the hang-inject test binary (-tags hanginject)"
	go build -tags hanginject -trimpath -ldflags "-s -w -X github.com/shopbridge/shopbridge.Version=v0.0.2-hanginject" \
		-o "$WORK/shopbridge-hang" ./cmd/shopbridge
	vm_rootfs || { fail "systemd: building the guest rootfs"; return 0; }

	log "guest image"
	local stage=$WORK/vmroot img=$WORK/guest.img serial=$WORK/serial.log fwd
	# Hard links: the cached tree is only read.
	cp -al "$ROOTFS" "$stage" 2>/dev/null || cp -a "$ROOTFS" "$stage"
	vm_setup "$stage"
	cp "$(ls "$stage"/boot/vmlinuz-* | tail -1)" "$WORK/vmlinuz"
	cp "$(ls "$stage"/boot/initrd.img-* | tail -1)" "$WORK/initrd.img"
	truncate -s $(($(du -sm "$stage" | cut -f1) + 768))M "$img"
	mkfs.ext4 -q -F -L sbroot -d "$stage" "$img"
	rm -rf "$stage"

	fwd=$(free_port) || { fail "systemd: no free port for the forward"; return 0; }
	# -no-reboot: the guest's reboot ends QEMU and the loop starts a new
	# one, as firmware would; resetting in place left the emulated (TCG)
	# guest's second boot several times slower than its first.
	local t0=$SECONDS boot=0 rc=0 cpu=(-accel kvm -cpu host -smp 2) helloed=0
	# One emulated CPU: two of them spin on each other's locks while the
	# host schedules them apart (soft lockups in the guest).
	[[ $accel == tcg ]] && cpu=(-accel tcg -cpu max -smp 1)
	while ((boot < 3)); do
		boot=$((boot + 1)) serial=$WORK/serial-$boot.log
		local left=$((timeout - (SECONDS - t0)))
		((left > 10)) || { rc=124; break; }
		log "boot $boot of the guest ($accel, 127.0.0.1:$fwd -> guest :8480, ${left}s left)"
		rc=0
		vm_run "$left" || rc=$?
		((rc == 0)) || break
		debugfs -R 'cat /var/log/sbtest.log' "$img" 2>/dev/null | grep -q '^SBTEST done: ' && break
		grep -aq '^SBTEST info .*rebooting' "$serial" || break
	done
	log "guest ran $((SECONDS - t0))s in $boot boots ($accel, qemu exit $rc)"
	figure_line "guest_run_s ($accel)" $((SECONDS - t0))
	check "systemd: the guest powered off by itself within ${timeout}s" eq "$rc" 0
	check "systemd: the host's hello reached the guest through the forward" eq "$helloed" 1
	# The results that count: the file on the image, free of console noise.
	debugfs -R 'cat /var/log/sbtest.log' "$img" >"$WORK/sbtest.log" 2>/dev/null || true
	local oks fails
	oks=$(grep -c '^SBTEST ok' "$WORK/sbtest.log" || true) fails=$(grep -c '^SBTEST FAIL' "$WORK/sbtest.log" || true)
	if grep -q '^SBTEST done: ' "$WORK/sbtest.log"; then
		printf 'ok   %s\n' "systemd: the guest finished (\"done\" in /var/log/sbtest.log)"
		check "systemd: no check failed in the guest ($oks ok, $fails FAIL)" eq "$fails" 0
	else
		fail "systemd: the guest did not finish (no \"done\" in /var/log/sbtest.log; $oks ok, $fails FAIL so far)"
	fi
	grep '^SBTEST figure' "$WORK/sbtest.log" | sed 's/^SBTEST figure /figure: /' || true
	if ((rc != 0 || fails != 0)) || ! grep -q '^SBTEST done: ' "$WORK/sbtest.log"; then
		echo "---- guest serial console (last 80 lines) ----" >&2
		tail -n 80 "$serial" >&2 || true
		cat "$WORK/qemu.log" >&2 || true
	fi
}
figure_line() { printf 'figure: %s %s\n' "$1" "$2"; }

# vm_run SECONDS boots the guest image once and waits for QEMU to end,
# showing the guest's results as they come and saying hello through the
# forward when the guest waits for it (sets helloed).
vm_run() {
	local qemu_pid shown=0 n rc=0
	timeout "$1" qemu-system-x86_64 "${cpu[@]}" -machine q35 -m 1024 -no-reboot \
		-nodefaults -no-user-config -display none -monitor none -serial "file:$serial" \
		-kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
		-append "root=/dev/vda rootfstype=ext4 rw console=ttyS0 quiet systemd.show_status=error" \
		-drive "file=$img,format=raw,if=virtio,cache=unsafe" \
		-netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$fwd-:8480" -device virtio-net-pci,netdev=n0 \
		-device virtio-rng-pci >>"$WORK/qemu.log" 2>&1 &
	qemu_pid=$!
	while kill -0 "$qemu_pid" 2>/dev/null; do
		sleep 0.5
		[[ -f $serial ]] || continue
		n=$(grep -a -c '^SBTEST ' "$serial" || true)
		if ((n > shown)); then
			grep -a '^SBTEST ' "$serial" | tail -n +$((shown + 1)) | head -n $((n - shown)) | sed 's/^SBTEST /guest: /'
			shown=$n
		fi
		if ((!helloed)) && grep -aq '^SBTEST info .*waiting for hello from the host' "$serial"; then
			if curl -fsS -m 5 --retry 20 --retry-all-errors --retry-delay 1 "http://127.0.0.1:$fwd/api/v2/hello" >"$WORK/hello.json" 2>&1; then
				helloed=1
				log "host: hello through 127.0.0.1:$fwd: $(cat "$WORK/hello.json")"
			fi
		fi
	done
	wait "$qemu_pid" || rc=$?
	return "$rc"
}

# ---- Wine ----
wine_setup() {
	[[ -n ${WINEPREFIX:-} ]] && return 0
	[[ $(id -u) == 0 ]] || { skip "$section: needs root (network namespace)"; return 1; }
	need wine wineserver wineboot x86_64-w64-mingw32-gcc ip curl || return 1
	build
	ip netns add "$NS"
	ip -n "$NS" link set lo up
	export WINEPREFIX=$WORK/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d" WINEARCH=win64
	unset DISPLAY
	log "wine prefix in namespace $NS (loopback only)"
	ns wineboot -i >/dev/null 2>&1 || true
	ns wineserver -w
	# Go >= 1.24 needs bcryptprimitives.dll (ProcessPrng), which Wine 8 lacks.
	x86_64-w64-mingw32-gcc -shared -O2 -o "$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll" \
		packaging/wine/bcryptprimitives.c packaging/wine/bcryptprimitives.def -ladvapi32
	ns wineserver -p
	mkdir -p "$WINEPREFIX/drive_c/sb"
	(cd "$WINEPREFIX/drive_c/sb" && unzip -qj "$NEW"/shopbridge_0.0.2_windows_amd64.zip -x '*/monitoring/*')
}
ns() { ip netns exec "$NS" "$@"; }
nscurl() { ns curl -fsS -m 5 "$@"; }
wine_sb() { ns timeout 120 wine 'C:\sb\shopbridge.exe' "$@"; }
wait_ns_http() {
	for _ in $(seq 1 150); do nscurl "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done
	echo "no answer from $1"; return 1
}

test_wine() {
	section=wine
	wine_setup || return 0
	local base="http://127.0.0.1:$PORT"
	log "shopbridge.exe run (foreground, demo bills)"
	ns wine 'C:\sb\shopbridge.exe' run --mdns=false --demo --listen "127.0.0.1:$PORT" --data 'C:\sbdata' >"$WORK/wine-run.log" 2>&1 &
	check "run answers" wait_ns_http "$base/healthz"
	check "hello" sh -c "ip netns exec $NS curl -fsS -m5 $base/api/v2/hello | grep -q '\"protocol\":\"0.1.0\"'"
	nscurl "$base/api/v2/list" >"$WORK/list.json" || true
	local id
	id=$(sed -n 's/^\[*{"id":\([0-9]*\).*/\1/p' "$WORK/list.json" | head -1)
	check "list has bills" test -n "$id"
	check "bill/byid/$id" sh -c "ip netns exec $NS curl -fsS -m5 $base/api/v2/bill/byid/$id | grep -q '\"id\": *$id'"
	check "receipt accepted" nscurl -X POST -d '{"id":"wine-1","data":{"type":"SELL","extras":{}}}' "$base/api/v2/receipts"
	check "receipt counted" eq "$(nscurl "$base/admin/api/status" | sed -n 's/^  "receipts": \([0-9]*\),*$/\1/p')" 1
	ns wineserver -k; ns wineserver -w 2>/dev/null || true
	log "restart keeps the store"
	ns wine 'C:\sb\shopbridge.exe' run --mdns=false --listen "127.0.0.1:$PORT" --data 'C:\sbdata' >>"$WORK/wine-run.log" 2>&1 &
	check "run answers again" wait_ns_http "$base/healthz"
	check "receipt still there" eq "$(nscurl "$base/admin/api/status" | sed -n 's/^  "receipts": \([0-9]*\),*$/\1/p')" 1
	check "bill still there" nscurl "$base/api/v2/bill/byid/$id"
	ns wineserver -k; ns wineserver -w 2>/dev/null || true
	ns wineboot -i >/dev/null 2>&1 || true; ns wineserver -w; ns wineserver -p

	log "shopbridge.exe install / status / stop / start / uninstall"
	check "status: not installed (exit 4)" sh -c "ip netns exec $NS timeout 60 wine 'C:\\sb\\shopbridge.exe' status; [ \$? = 4 ]"
	check "install" wine_sb install --mdns=false --listen ":$PORT" --data 'C:\sbdata'
	check "service answers" wait_ns_http "$base/healthz"
	check "status: running (exit 0)" wine_sb status
	check "service kept the store" eq "$(nscurl "$base/admin/api/status" | sed -n 's/^  "receipts": \([0-9]*\),*$/\1/p')" 1
	check "uninstall refuses: receipts wait" sh -c "ip netns exec $NS timeout 60 wine 'C:\\sb\\shopbridge.exe' uninstall 2>&1 | grep -q 'wait in the outbox'"
	check "stop" wine_sb stop
	check "status: stopped (exit 3)" sh -c "ip netns exec $NS timeout 60 wine 'C:\\sb\\shopbridge.exe' status; [ \$? = 3 ]"
	check "uninstall refuses when stopped too (store read)" sh -c "ip netns exec $NS timeout 60 wine 'C:\\sb\\shopbridge.exe' uninstall 2>&1 | grep -q 'wait in the outbox'"
	check "start" wine_sb start
	check "answers after start" wait_ns_http "$base/healthz"
	check "restart" wine_sb restart
	check "answers after restart" wait_ns_http "$base/healthz"
	check "uninstall --force" wine_sb uninstall --force
	check "status: not installed after uninstall" sh -c "ip netns exec $NS timeout 60 wine 'C:\\sb\\shopbridge.exe' status; [ \$? = 4 ]"
	check "event log source removed" sh -c "! ip netns exec $NS wine reg query 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\shopbridge'"
}

test_msi() {
	section=msi
	need wixl || return 0
	wine_setup || return 0
	local base="http://127.0.0.1:8480" msi
	msi=$(ls "$NEW"/shopbridge_*_windows_amd64.msi)
	cp "$msi" "$WINEPREFIX/drive_c/shopbridge.msi"
	cp "$OLD"/shopbridge_*_windows_amd64.msi "$WINEPREFIX/drive_c/shopbridge-old.msi"
	log "msiexec /i v0.0.1, a receipt, then /i $(basename "$msi") over it"
	check "msiexec /i old /qn" ns timeout 180 wine msiexec /i 'C:\shopbridge-old.msi' /qn
	check "old service answers" wait_ns_http "$base/healthz"
	check "old version runs" sh -c "ip netns exec $NS curl -fsS -m5 $base/admin/api/status | grep -q '\"version\": \"v0.0.1\"'"
	check "receipt into the old one" nscurl -X POST -d '{"id":"msi-upgrade-1","data":{"type":"SELL","extras":{}}}' "$base/api/v2/receipts"
	check "msiexec /i /qn (upgrade)" ns timeout 180 wine msiexec /i 'C:\shopbridge.msi' /qn
	check "binary in Program Files" test -f "$WINEPREFIX/drive_c/Program Files/shopbridge/shopbridge.exe"
	check "monitoring files in Program Files" test -f "$WINEPREFIX/drive_c/Program Files/shopbridge/monitoring/shopbridge-alerts.yml"
	check "default config in ProgramData" test -f "$WINEPREFIX/drive_c/ProgramData/shopbridge/shopbridge.toml"
	local exe='C:\Program Files\shopbridge\shopbridge.exe'
	check "service answers on the default port" wait_ns_http "$base/healthz"
	check "hello" nscurl "$base/api/v2/hello"
	check "new version runs" sh -c "ip netns exec $NS curl -fsS -m5 $base/admin/api/status | grep -q '\"version\": \"v0.0.2\"'"
	check "receipt kept across the upgrade" sh -c "ip netns exec $NS curl -fsS -m5 $base/admin/api/status | grep -q '^  \"receipts\": 1,'"
	check "one shopbridge product registered" eq "$(ns wine reg query 'HKLM\Software\Microsoft\Windows\CurrentVersion\Uninstall' /s 2>/dev/null | grep -c 'DisplayName.*REG_SZ.*shopbridge')" 1
	check "service-hook setup ran: event log source" ns wine reg query 'HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application\shopbridge'
	check "service command line" sh -c "ip netns exec $NS wine reg query 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\shopbridge' /v ImagePath | grep -q 'shopbridge.exe\"* run --service'"
	check "status: running" ns timeout 60 wine "$exe" status
	check "stop" ns timeout 60 wine "$exe" stop
	check "status: stopped (exit 3)" sh -c "ip netns exec $NS timeout 60 wine '$exe' status; [ \$? = 3 ]"
	check "start" ns timeout 60 wine "$exe" start
	check "answers after start" wait_ns_http "$base/healthz"
	check "msiexec /x /qn" ns timeout 180 wine msiexec /x 'C:\shopbridge.msi' /qn
	check "status: not installed after msiexec /x" sh -c "ip netns exec $NS timeout 60 wine 'C:\\sb\\shopbridge.exe' status; [ \$? = 4 ]"
	check "service-hook teardown ran: event log source gone" sh -c "! ip netns exec $NS wine reg query 'HKLM\\SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\shopbridge'"
	check "binary removed" test ! -e "$WINEPREFIX/drive_c/Program Files/shopbridge/shopbridge.exe"
	check "port closed" sh -c "! ip netns exec $NS curl -fsS -m 2 $base/healthz"
}

# ---- version scheme ----
# packaging/version.sh in a scratch repository: no tag (the VERSION base as a
# dev pre-release), a tag, commits after it, a dirty tree; and the package
# versions, ordered as dpkg orders them.
test_version() {
	section=version
	need git dpkg || return 0
	local repo=$WORK/verrepo
	mkdir -p "$repo/packaging" && cp packaging/version.sh "$repo/packaging/" && echo 0.3.0 >"$repo/VERSION"
	git -C "$repo" init -q && git -C "$repo" add -A
	git -C "$repo" -c user.name=t -c user.email=t@t commit -qm one
	local c1 v
	c1=$(git -C "$repo" rev-parse --short HEAD)
	check "no tag: the VERSION base as a dev build" eq "$("$repo/packaging/version.sh")" "v0.3.0-dev.1+$c1"
	echo x >>"$repo/VERSION.txt" && git -C "$repo" add VERSION.txt
	check "no tag, changes not committed: .dirty" eq "$("$repo/packaging/version.sh")" "v0.3.0-dev.1+$c1.dirty"
	git -C "$repo" -c user.name=t -c user.email=t@t commit -qm two
	git -C "$repo" -c user.name=t -c user.email=t@t tag -a v0.3.0 -m v0.3.0
	check "on the tag v0.3.0" eq "$("$repo/packaging/version.sh")" "v0.3.0"
	echo y >>"$repo/VERSION.txt" && git -C "$repo" -c user.name=t -c user.email=t@t commit -qam three
	v=$("$repo/packaging/version.sh")
	check "a commit after the tag" eq "$v" "v0.3.0-1-g$(git -C "$repo" rev-parse --short HEAD)"
	check "packages: v0.3.0" eq "$(packaging/version.sh --pkg v0.3.0)" 0.3.0
	check "packages: a dev build" eq "$(packaging/version.sh --pkg "v0.3.0-dev.1+$c1")" "0.3.0~dev.1+$c1"
	check "packages: after the tag" eq "$(packaging/version.sh --pkg v0.3.0-1-gabc1234)" 0.3.0+1.gabc1234
	check "msi: X.Y.Z of a dev build" eq "$(packaging/version.sh --msi "v0.3.0-dev.1+$c1")" 0.3.0
	check "dpkg orders dev < release < after" sh -c "dpkg --compare-versions 0.3.0~dev.195+a41977e lt 0.3.0 && dpkg --compare-versions 0.3.0 lt 0.3.0+1.gabc1234 && dpkg --compare-versions 0.3.0~dev.9+b lt 0.3.0~dev.10+a"
	check "no 0.0.0 versions any more" sh -c "! packaging/version.sh --pkg a41977e 2>/dev/null"
}

# ---- package scripts without systemd ----
# postinstall where systemd is not running (this machine or CI's container,
# else a mount namespace that hides /run/systemd) and where it is (a
# namespace with /run/systemd/system): the commands it would run go to stubs
# that log them, so nothing here changes.
test_scripts() {
	section=scripts
	[[ $(id -u) == 0 ]] || { skip "scripts: needs root (unshare)"; return 0; }
	need unshare || return 0
	local stubs=$WORK/stubs t
	mkdir -p "$stubs"
	for t in install chgrp chmod find systemctl; do
		printf '#!/bin/sh
echo "%s $*" >>"%s/calls"
' "$t" "$WORK" >"$stubs/$t" && chmod +x "$stubs/$t"
	done
	run_postinst() { # run_postinst with|without ARGS...
		local how=$1; shift
		: >"$WORK/calls"
		unshare -m sh -c '
			mount --make-rprivate / && mkdir -p /run/systemd && mount -t tmpfs none /run/systemd || exit 1
			[ "$1" = with ] && mkdir /run/systemd/system
			shift; PATH=$0:$PATH exec sh "$@"' "$stubs" "$how" packaging/scripts/postinstall.sh "$@" >"$WORK/postinst.out" 2>&1
	}
	run_postinst without configure
	check "no systemd, install: says so" grep -q "systemd is not running on this machine, so the shopbridge service was not started" "$WORK/postinst.out"
	check "no systemd, install: the command to start it by hand" grep -qF "runuser -u shopbridge -- /usr/bin/shopbridge run" "$WORK/postinst.out"
	check "no systemd, install: no systemctl" sh -c "! grep -q '^systemctl' '$WORK/calls'"
	check "no systemd, install: the data directory is still made" grep -q "^install -d -o shopbridge -g shopbridge -m 0750 /var/lib/shopbridge" "$WORK/calls"
	run_postinst without configure 0.2.0
	check "no systemd, upgrade: restart by hand" grep -q "restart it to run the new version" "$WORK/postinst.out"
	run_postinst with configure
	check "systemd: enables and starts, says nothing of by hand" sh -c "grep -q '^systemctl start shopbridge.service' '$WORK/calls' && ! grep -q 'by hand' '$WORK/postinst.out'"
}

parts=("$@")
[[ ${#parts[@]} == 0 || ${parts[0]} == all ]] && parts=(version scripts packages deb systemd wine msi)
start=$(date +%s)
for p in "${parts[@]}"; do
	case $p in
	version | scripts | packages | deb | systemd | wine | msi) "test_$p" ;;
	*) echo "unknown part $p (all version scripts packages deb systemd wine msi)" >&2; exit 2 ;;
	esac
done
echo "packaging tests: $failures failed, $skips skipped, $(($(date +%s) - start))s"
[[ $failures == 0 ]]
