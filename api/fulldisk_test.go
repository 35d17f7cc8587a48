package api_test

import (
	"testing"

	"github.com/shopbridge/shopbridge/internal/fulldisk"
)

// mountFull is a 32 MiB tmpfs: room for a store, not for a spool of it
// plus the reserve a spool leaves (64 MiB).
func mountFull(t *testing.T) string { return fulldisk.Mount(t, "32m") }
