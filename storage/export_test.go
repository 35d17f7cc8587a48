package storage

// SetCheckHook makes the live check call f inside its transaction, before
// it walks the pages: a test commits there, under the check.
func SetCheckHook(f func()) { checkHook = f }
