package shopbridge

import (
	_ "embed"
	"runtime/debug"
	"strings"
)

// versionBase is the release being prepared (the file VERSION), for
// builds that did not get a version at link time (go build, go install).
//
//go:embed VERSION
var versionBase string

// A binary built without -ldflags -X (the Makefile and packaging/dist.sh
// set them from git tags) still tells what it is: a dev build of the
// release in VERSION, with the commit and time Go stamped into it.
func init() {
	var rev, at string
	modified := false
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value[:min(len(s.Value), 7)]
			case "vcs.time":
				at = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if Version == "dev" {
		Version = "v" + strings.TrimPrefix(strings.TrimSpace(versionBase), "v") + "-dev"
		if rev != "" {
			Version += "+" + rev
			if modified {
				Version += ".dirty"
			}
		}
	}
	if Commit == "none" && rev != "" {
		Commit = rev
	}
	if BuildDate == "unknown" && at != "" {
		BuildDate = at + " (commit time)"
	}
}
