package main

import (
	"os"

	"golang.org/x/sys/windows"
)

// programData is the machine-wide data folder. A service's environment may
// point %ProgramData% elsewhere (Wine's services.exe does), so ask Windows
// for the known folder first: the installer, the service and uninstall's
// outbox check must agree on one place.
func programData() string {
	if p, err := windows.KnownFolderPath(windows.FOLDERID_ProgramData, 0); err == nil && p != "" {
		return p
	}
	if p := os.Getenv("ProgramData"); p != "" {
		return p
	}
	return `C:\ProgramData`
}
