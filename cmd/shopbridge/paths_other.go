//go:build !windows

package main

// programData is only used on Windows.
func programData() string { return `C:\ProgramData` }
