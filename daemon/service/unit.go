package service

import (
	"fmt"
	"strings"
)

// LinuxDataDir is the data directory systemd's StateDirectory= creates and
// hands to the service user; the unit needs no extra writable path for it.
const LinuxDataDir = "/var/lib/shopbridge"

// unitTemplate is the systemd unit, in the template language of
// kardianos/service (SystemdScript option). kardianos's own unit waits
// 120 s before a restart and runs as root; this one comes back within two
// seconds, runs as the shopbridge user behind systemd's sandbox, tells
// systemd when it serves (Type=notify) and is restarted by systemd's
// watchdog when it hangs (see the adapter's watchdog loop).
//
// Exit status 2 is a bad flag or config file: restarting cannot fix it, so
// systemd leaves the unit failed and the operator sees why in the journal.
// @READWRITE@ is replaced before rendering (see unitScript).
const unitTemplate = `[Unit]
Description=shopbridge - local cloud API for the shop's cash registers
Documentation=https://github.com/shopbridge/shopbridge
After=network-online.target
Wants=network-online.target
StartLimitIntervalSec=0

[Service]
# The daemon says READY=1 once it serves, so "active" means answering.
Type=notify
NotifyAccess=main
ExecStart={{Path | cmdEscape}}{{range Arguments}} {{. | cmd}}{{end}}
User=shopbridge
Group=shopbridge
Restart=always
RestartSec=2s
RestartPreventExitStatus=2
# Open migrates the store after an upgrade before READY=1: give it time.
TimeoutStartSec=5min
TimeoutStopSec=30s
# The daemon pings every 10s while its HTTP server answers itself and its
# store answers a read and takes the commit lock, each within 5s; a hung
# handler or store stops the pings and systemd kills it (SIGABRT: the
# goroutine stacks go to the journal) and restarts it. 30s: two failed
# checks in a row, so a disk that stalls for a few seconds under load is
# never taken for a hang, yet the registers get an answer again within
# about half a minute.
WatchdogSec=30s
# A Go panic or SIGABRT exits 2, which RestartPreventExitStatus keeps
# down; with crash the runtime dies by the signal and is restarted.
Environment=GOTRACEBACK=crash
StateDirectory=shopbridge
StateDirectoryMode=0750
UMask=0027
@READWRITE@AmbientCapabilities=CAP_NET_BIND_SERVICE
CapabilityBoundingSet=CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
MemoryDenyWriteExecute=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallErrorNumber=EPERM

[Install]
WantedBy=multi-user.target
`

// unitScript returns the unit template for a service that writes to dataDir:
// the default directory is systemd's StateDirectory, any other one has to be
// made writable under ProtectSystem=strict.
func unitScript(dataDir string) string {
	rw := ""
	if dataDir != "" && dataDir != LinuxDataDir {
		rw = `ReadWritePaths="` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "%", "%%").Replace(dataDir) + "\"\n"
	}
	return strings.Replace(unitTemplate, "@READWRITE@", rw, 1)
}

// RenderUnit renders the unit for exe with args the way kardianos/service
// does at install (each argument in double quotes, spaces in the path as
// \x20). The packages ship its rendering for /usr/bin/shopbridge run
// --service; a test keeps the two in step.
func RenderUnit(exe string, args []string, dataDir string) string {
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(exe, " ", `\x20`))
	for _, a := range args {
		b.WriteString(` "` + strings.ReplaceAll(a, `"`, `\"`) + `"`)
	}
	t := unitScript(dataDir)
	start := strings.Index(t, "ExecStart=")
	end := start + strings.IndexByte(t[start:], '\n')
	return t[:start] + "ExecStart=" + b.String() + t[end:]
}

// escapeUnitArgs protects the characters systemd expands in ExecStart= ($
// for environment variables, % for specifiers, \ for escapes; kardianos
// only escapes double quotes), so a token such as "pa$$%\word" reaches the
// daemon as typed.
func escapeUnitArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = escapeUnitWord(a)
	}
	return out
}

func escapeUnitWord(s string) string {
	return strings.NewReplacer(`\`, `\\`, "$", "$$", "%", "%%").Replace(s)
}

// ParseExecStart splits the value of a systemd ExecStart= line into words:
// whitespace separates, double or single quotes group, a backslash escapes
// the next character (\x20 is a space), $$ and %% are a literal $ and %. It
// reads back the units written by Install and shipped in the packages; it
// is no general systemd parser and says so for what it does not know.
func ParseExecStart(line string) ([]string, error) {
	var (
		words  []string
		cur    strings.Builder
		inWord bool
		quote  byte
	)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == 0 && (c == ' ' || c == '\t'):
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
			continue
		case c == '"' || c == '\'':
			if quote == 0 {
				quote, inWord = c, true
				continue
			}
			if quote == c {
				quote = 0
				continue
			}
		case c == '\\':
			if i+1 >= len(line) {
				return nil, fmt.Errorf("ExecStart: trailing backslash at column %d", i+1)
			}
			i++
			switch line[i] {
			case 'x':
				if i+2 >= len(line) {
					return nil, fmt.Errorf("ExecStart: short \\x escape at column %d", i)
				}
				var v byte
				if _, err := fmt.Sscanf(line[i+1:i+3], "%02x", &v); err != nil {
					return nil, fmt.Errorf("ExecStart: bad \\x escape %q at column %d", line[i-1:i+3], i)
				}
				cur.WriteByte(v)
				i += 2
			case 'n':
				cur.WriteByte('\n')
			case 't':
				cur.WriteByte('\t')
			default:
				cur.WriteByte(line[i])
			}
			inWord = true
			continue
		case (c == '$' || c == '%') && i+1 < len(line) && line[i+1] == c:
			cur.WriteByte(c)
			i++
			inWord = true
			continue
		}
		cur.WriteByte(c)
		inWord = true
	}
	if quote != 0 {
		return nil, fmt.Errorf("ExecStart: unterminated %c quote", quote)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// runFlags returns the run flags in an installed service's command line:
// the words after "run", without the --service flag this package adds.
func runFlags(words []string) ([]string, error) {
	for i, w := range words {
		if w == "run" {
			out := []string{}
			for _, f := range words[i+1:] {
				if f != "--service" && f != "-service" && f != "--service=true" {
					out = append(out, f)
				}
			}
			return out, nil
		}
	}
	return nil, fmt.Errorf("service command line %q has no run subcommand", strings.Join(words, " "))
}

// unitExecStart returns the ExecStart= value of a unit file's text.
func unitExecStart(unit string) (string, error) {
	var found []string
	for _, l := range strings.Split(unit, "\n") {
		l = strings.TrimSpace(l)
		if v, ok := strings.CutPrefix(l, "ExecStart="); ok {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		return "", fmt.Errorf("unit has %d ExecStart= lines, want 1", len(found))
	}
	return strings.TrimLeft(found[0], "-@:+!"), nil
}
