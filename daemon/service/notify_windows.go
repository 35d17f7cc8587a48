package service

import "time"

// sdNotify does nothing: the SCM learns the state from kardianos/service.
func sdNotify(string) error { return nil }

// watchdogTimeout is 0: the SCM has no keep-alive pings.
func watchdogTimeout() (time.Duration, error) { return 0, nil }
