#!/bin/bash
# Runs inside the Debian guest that packaging/test.sh's "systemd" part
# boots (as sbtest.service, on every boot), with systemd as PID 1. It
# checks what only a real init system shows: the package's service under
# systemd, a restart after SIGKILL, the watchdog restarting a hung daemon
# (a test build), start at boot, the journal, stop, remove and purge.
#
# Every result is a line "SBTEST ok|FAIL|figure|info ..." on the serial
# console and in /var/log/sbtest.log, which the host reads from the image
# afterwards; "SBTEST done: N failed" ends the run, then the guest powers
# off. State across the reboot lives in /var/lib/sbtest.
#
# /opt/sbtest holds: packaging/test.sh (this tree's), pkgs/{old,new,next}/
# (the .debs test.sh builds), shopbridge-hang (a -tags hanginject build)
# and env (SCHEMA=...).
set -uo pipefail
T=/opt/sbtest
STATE=/var/lib/sbtest
LOG=/var/log/sbtest.log
PORT=8480
BASE=http://127.0.0.1:$PORT
mkdir -p "$STATE"
# shellcheck source=/dev/null
. "$T/env"
failures=$(cat "$STATE/failures" 2>/dev/null || echo 0)

say() { printf 'SBTEST %s\n' "$*" | tee -a "$LOG" >/dev/ttyS0; }
info() { say "info [$(awk '{printf "%.0f", $1}' /proc/uptime)s] $*"; }
ok() { say "ok   $*"; }
fail() { say "FAIL $*"; failures=$((failures + 1)); echo "$failures" >"$STATE/failures"; }
figure() { say "figure $1 $2"; }
check() { # check "what" command...
	local what=$1 out; shift
	if out=$("$@" 2>&1); then ok "$what"; else fail "$what"; printf '%s\n' "$out" | head -20 | sed 's/^/SBTEST      /' | tee -a "$LOG" >/dev/ttyS0; fi
}
eq() { [[ "$1" == "$2" ]] || { echo "got [$1], want [$2]"; return 1; }; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
# uptime_us is CLOCK_BOOTTIME, which is systemd's CLOCK_MONOTONIC here
# (no suspend): comparable with the *TimestampMonotonic properties.
uptime_us() { awk '{printf "%d", $1 * 1000000}' /proc/uptime; }
prop() { systemctl show -p "$1" --value shopbridge; }
healthy() { curl -fsS -m 5 "$BASE/healthz" >/dev/null 2>&1; }
# serving_again OLDPID SECONDS: a new main process answers /healthz.
serving_again() {
	local old=$1 end=$(($(date +%s) + $2)) pid
	while (($(date +%s) < end)); do
		pid=$(prop MainPID)
		if [[ $pid != 0 && $pid != "$old" ]] && healthy; then return 0; fi
		sleep 0.05
	done
	echo "no new main process answering within $2 s (MainPID $(prop MainPID), $(systemctl is-active shopbridge))"
	return 1
}
wait_active() { # wait_active SECONDS
	for _ in $(seq 1 $(($1 * 10))); do healthy && return 0; sleep 0.1; done
	echo "shopbridge not answering after $1 s: $(systemctl is-active shopbridge)"; systemctl status --no-pager shopbridge 2>&1 | tail -5; return 1
}
receipts() { curl -fsS -m 5 "$BASE/admin/api/status" | sed -n 's/^  "receipts": \([0-9]*\),*$/\1/p'; }
post_receipt() { # post_receipt ID [curl options]
	local id=$1; shift
	curl -fsS "$@" -X POST -H 'Content-Type: application/json' \
		-d "{\"id\":\"$id\",\"type\":\"ReceiptCreated\",\"data\":{\"type\":\"SELL\",\"extras\":{}}}" "$BASE/api/v2/receipts"
}
journal_has() { # journal_has ERE [journalctl options]: within 30 s (journald may lag)
	local re=$1 end=$((SECONDS + 30)); shift
	while ((SECONDS < end)); do
		journalctl -q --no-pager "$@" | grep -qE -- "$re" && return 0
		sleep 0.2
	done
	echo "journal has no line matching [$re]"; journalctl -q --no-pager "$@" | tail -15; return 1
}
finish() {
	say "done: $failures failed"
	sync
	systemctl poweroff
	exit 0
}

# ---- first boot ----
phase1() {
	systemctl is-system-running --wait >/dev/null 2>&1
	info "first boot: $(systemctl --version | head -1), kernel $(uname -r), system $(systemctl is-system-running)"
	for u in $(systemctl list-units --failed --plain --no-legend | awk '{print $1}'); do info "failed unit at boot: $u"; done

	info "packaging/test.sh deb under systemd (dpkg: install, crash restart, upgrade, migration, downgrade, remove, purge)"
	local rc=0
	PKGS=$T/pkgs SCHEMA=$SCHEMA STRICT=1 "$T/packaging/test.sh" deb >"$STATE/test-deb.log" 2>&1 || rc=$?
	sed -n 's/^ok   /ok   deb: /p; s/^FAIL: /FAIL deb: /p; s/^SKIP: /FAIL deb: skipped: /p; /^     /p' "$STATE/test-deb.log" |
		sed 's/^/SBTEST /' | tee -a "$LOG" >/dev/ttyS0
	failures=$((failures + $(grep -cE '^(FAIL|SKIP):' "$STATE/test-deb.log")))
	echo "$failures" >"$STATE/failures"
	check "packaging/test.sh deb passed (exit $rc)" eq "$rc" 0
	if [[ $rc != 0 ]]; then
		tail -n 15 "$STATE/test-deb.log" | sed 's/^/SBTEST      | /' | tee -a "$LOG" >/dev/ttyS0
	fi
	check "test.sh saw systemd running" grep -q 'systemd running: yes' "$STATE/test-deb.log"

	info "apt install ./shopbridge.deb"
	mkdir -p /etc/shopbridge
	# mDNS off: the guest's network is QEMU's user network, nothing to find.
	printf 'listen = ":%s"\nmdns = false\n' "$PORT" >/etc/shopbridge/shopbridge.toml
	local deb
	deb=$(ls "$T"/pkgs/new/shopbridge_*_amd64.deb)
	check "apt-get install ./$(basename "$deb")" apt-get install -y -q -o Dpkg::Options::=--force-confold "$deb"
	check "enabled at boot" eq "$(systemctl is-enabled shopbridge)" enabled
	check "active" eq "$(systemctl is-active shopbridge)" active
	check "answers /healthz" wait_active 60
	check "answers hello" sh -c "curl -fsS -m 5 $BASE/api/v2/hello | grep -q '\"protocol\":\"0.1.0\"'"
	check "Type=notify" eq "$(prop Type)" notify
	check "NotifyAccess=main" eq "$(prop NotifyAccess)" main
	check "WatchdogSec=30s" eq "$(prop WatchdogUSec)" 30s
	check "GOTRACEBACK=crash in the environment" sh -c "systemctl show -p Environment --value shopbridge | grep -qw GOTRACEBACK=crash"
	check "runs as shopbridge" eq "$(ps -o user= -p "$(prop MainPID)")" shopbridge
	check "journald has the daemon's start" journal_has 'msg=listening .*version=v0\.0\.2' -o cat _PID="$(prop MainPID)"
	check "journald has the watchdog turned on" journal_has 'msg="systemd watchdog on" .*timeout=30s check_every=10s check_timeout=5s' -u shopbridge -o cat
	check "a receipt is accepted" post_receipt guest-1 -m 5
	check "the receipt is counted" eq "$(receipts)" 1

	info "SIGKILL the main process"
	local pid t0 t1 k0 restarts
	pid=$(prop MainPID) restarts=$(prop NRestarts)
	t0=$(now_ms) k0=$(uptime_us)
	kill -KILL "$pid"
	if serving_again "$pid" 120 >"$STATE/out" 2>&1; then
		t1=$(now_ms)
		ok "restarted and serving after SIGKILL"
		# By systemd's clock: the kill to READY=1 of the new process;
		# and as a client saw it (polling systemctl and /healthz).
		figure sigkill_to_ready_ms $((($(prop ActiveEnterTimestampMonotonic) - k0) / 1000))
		figure sigkill_to_answering_ms $((t1 - t0))
	else
		fail "restarted and serving after SIGKILL"; sed 's/^/SBTEST      /' "$STATE/out" | tee -a "$LOG" >/dev/ttyS0
	fi
	check "systemd counted the restart" eq "$(prop NRestarts)" $((restarts + 1))
	check "journald: systemd saw the SIGKILL" journal_has 'Main process exited, code=killed, status=9/KILL' -u shopbridge -o cat
	check "the receipt survived the SIGKILL" eq "$(receipts)" 1

	info "watchdog: the test build's commit loop hangs on SIGUSR2"
	mkdir -p /run/systemd/system/shopbridge.service.d
	printf '[Service]\nExecStart=\nExecStart=%s/shopbridge-hang "run" "--service"\n' "$T" >/run/systemd/system/shopbridge.service.d/hang.conf
	systemctl daemon-reload
	check "restart on the hang-inject test build" systemctl restart shopbridge
	check "it is the test build" sh -c "$T/shopbridge-hang version | grep -q 'TEST BUILD (-tags hanginject)'"
	check "test build answers" wait_active 60
	check "test build runs under the packaged unit's watchdog" eq "$(prop WatchdogUSec)" 30s
	check "test build accepts a receipt" post_receipt guest-2 -m 5
	pid=$(prop MainPID) restarts=$(prop NRestarts)
	t0=$(now_ms) k0=$(uptime_us)
	kill -USR2 "$pid"
	check "journald: the hang was injected" journal_has 'msg="hang injected \(test build\)' -o cat _PID="$pid"
	local rc2=0
	post_receipt guest-hung -m 3 >/dev/null 2>&1 || rc2=$?
	check "a receipt gets no answer while the store hangs (curl exit 28, timeout)" eq "$rc2" 28
	check "/healthz still says ok (why the watchdog checks commits too)" healthy
	if serving_again "$pid" 180 >"$STATE/out" 2>&1; then
		t1=$(now_ms)
		ok "the watchdog killed the hung daemon and systemd restarted it"
		figure watchdog_hang_to_ready_ms $((($(prop ActiveEnterTimestampMonotonic) - k0) / 1000))
		figure watchdog_hang_to_answering_ms $((t1 - t0))
	else
		fail "the watchdog killed the hung daemon and systemd restarted it"; sed 's/^/SBTEST      /' "$STATE/out" | tee -a "$LOG" >/dev/ttyS0
	fi
	check "journald: the daemon's liveness check failed" journal_has 'msg="liveness check failed.*no answer after' -o cat _PID="$pid"
	check "journald: systemd's watchdog timeout" journal_has 'Watchdog timeout \(limit 30s\)' -u shopbridge -o cat
	check "journald: SIGABRT with the goroutine stacks" journal_has '^SIGABRT: abort' -u shopbridge -o cat
	check "journald: died by the signal, not exit 2" journal_has 'Main process exited, code=dumped, status=6/ABRT|Main process exited, code=killed, status=6/ABRT' -u shopbridge -o cat
	info "journal: $(journalctl -q -u shopbridge -o cat --no-pager _PID="$pid" | grep -m1 'liveness check failed')"
	info "journal: $(journalctl -q -u shopbridge -o cat --no-pager | grep -m1 'Watchdog timeout')"
	info "journal: $(journalctl -q -u shopbridge -o cat --no-pager | grep -m1 'Main process exited, code=.*ABRT')"
	check "systemd counted the restart" eq "$(prop NRestarts)" $((restarts + 1))
	check "both acknowledged receipts are there after the restart" eq "$(receipts)" 2
	local hang_at wd_at
	hang_at=$(journalctl -q -o short-unix --no-pager _PID="$pid" | grep -m1 'hang injected' | cut -d' ' -f1)
	wd_at=$(journalctl -q -u shopbridge -o short-unix --no-pager | grep -m1 'Watchdog timeout' | cut -d' ' -f1)
	[[ -n $hang_at && -n $wd_at ]] && figure watchdog_hang_to_kill_ms "$(awk -v a="$hang_at" -v b="$wd_at" 'BEGIN{printf "%d", (b-a)*1000}')"
	rm -rf /run/systemd/system/shopbridge.service.d
	systemctl daemon-reload
	check "back on the release build" systemctl restart shopbridge
	check "release build answers" wait_active 60

	echo 2 >"$STATE/phase"
	date +%s%N >"$STATE/reboot-at"
	info "rebooting"
	sync
	systemctl reboot
	exit 0
}

# ---- after the reboot ----
phase2() {
	local script_start
	script_start=$(uptime_us)
	# sbtest.service is ordered After=shopbridge.service: with Type=notify
	# systemd starts it only once shopbridge said READY=1.
	check "answers at once in a unit ordered after it (Type=notify)" healthy
	check "started at boot, before this script" sh -c "t=\$(systemctl show -p ActiveEnterTimestampMonotonic --value shopbridge); [ \"\$t\" -gt 0 ] && [ \"\$t\" -lt $script_start ]"
	check "answers after the reboot" wait_active 60
	local active exec user
	active=$(prop ActiveEnterTimestampMonotonic) exec=$(prop ExecMainStartTimestampMonotonic)
	user=$(systemctl show -p UserspaceTimestampMonotonic --value)
	# CLOCK_MONOTONIC starts with the kernel: "active" is READY=1, serving.
	figure boot_to_serving_ms $((active / 1000))
	figure systemd_start_to_serving_ms $(((active - user) / 1000))
	figure exec_to_ready_ms $(((active - exec) / 1000))
	# Wall clock at "active": now minus the time since, on the boot clock.
	local now_ns up_us
	now_ns=$(date +%s%N) up_us=$(uptime_us)
	figure reboot_to_serving_ms $(((now_ns - $(cat "$STATE/reboot-at")) / 1000000 - (up_us - active) / 1000))
	info "$(systemd-analyze 2>/dev/null | head -1)"
	check "no restarts since boot" eq "$(prop NRestarts)" 0
	check "receipts kept across the reboot" eq "$(receipts)" 2
	check "journald has this boot's start" journal_has 'msg=listening' -b -u shopbridge -o cat

	info "waiting for hello from the host (hostfwd to 127.0.0.1 only)"
	check "the host reached the guest's daemon through QEMU's port forward" sh -c '
		for i in $(seq 1 300); do
			shopbridge journal --kind HELLO --json 2>/dev/null | grep -q "\"client\": *\"10\.0\.2\.2" && exit 0
			sleep 0.2
		done
		shopbridge journal --kind HELLO 2>&1 | tail -5; exit 1'

	info "systemctl stop"
	check "systemctl stop" systemctl stop shopbridge
	check "inactive after stop" sh -c '! systemctl is-active shopbridge'
	check "port closed after stop" sh -c '! curl -fsS -m 2 http://127.0.0.1:8480/healthz'
	check "shopbridge status: stopped (exit 3)" sh -c 'shopbridge status; [ $? = 3 ]'
	check "journald: a clean stop" journal_has 'msg="service stopping"' -b -u shopbridge -o cat
	check "journald: systemd saw no failure" sh -c '! journalctl -q -b -u shopbridge -o cat | grep -E "Failed with result|status=2/"'
	check "systemctl start" systemctl start shopbridge
	check "answers after start (systemctl start returned after READY=1)" healthy

	info "apt remove, then purge"
	check "apt-get remove shopbridge" apt-get remove -y -q shopbridge
	check "service gone after remove" sh -c '! systemctl is-active shopbridge'
	check "not enabled after remove" sh -c '! systemctl is-enabled shopbridge'
	check "port closed after remove" sh -c '! curl -fsS -m 2 http://127.0.0.1:8480/healthz'
	check "store kept after remove" test -s /var/lib/shopbridge/shopbridge.db
	check "config kept after remove" test -f /etc/shopbridge/shopbridge.toml
	check "user kept after remove" getent passwd shopbridge
	check "apt-get purge shopbridge" apt-get purge -y -q shopbridge
	check "data gone after purge" test ! -e /var/lib/shopbridge
	check "config gone after purge" test ! -e /etc/shopbridge
	check "user gone after purge" sh -c '! getent passwd shopbridge'
	check "group gone after purge" sh -c '! getent group shopbridge'
	finish
}

case $(cat "$STATE/phase" 2>/dev/null || echo 1) in
1) phase1 ;;
2) phase2 ;;
*) info "nothing to do"; finish ;;
esac
