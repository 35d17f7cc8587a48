//go:build !hanginject || windows

package storage

// HangInjection tells whether this is a test build that can hang on purpose
// (go build -tags hanginject, not on Windows; see hanginject.go). Never in
// a release.
const HangInjection = false

func (s *Store) injectHang() {}
