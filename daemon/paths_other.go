//go:build !windows

package daemon

// programData is only used on Windows.
func programData() string { return `C:\ProgramData` }
