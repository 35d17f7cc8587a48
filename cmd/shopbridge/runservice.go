package main

import (
	"fmt"
	"os"

	"github.com/shopbridge/shopbridge/daemon"
	"github.com/shopbridge/shopbridge/daemon/service"
)

// runService hands the daemon to the OS service manager (run --service).
func runService(d *daemon.Daemon) int {
	if err := service.Run(d); err != nil {
		fmt.Fprintf(os.Stderr, "shopbridge run: %v\n", err)
		return 1
	}
	return 0
}
