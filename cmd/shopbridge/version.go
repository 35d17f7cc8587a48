package main

import (
	"fmt"
	"runtime"

	"github.com/shopbridge/shopbridge"
)

func init() {
	register(&command{name: "version", usage: "print version, commit and build date", run: func([]string) int {
		fmt.Printf("shopbridge %s (commit %s, built %s, %s/%s)\n", shopbridge.Version, shopbridge.Commit, shopbridge.BuildDate, runtime.GOOS, runtime.GOARCH)
		return 0
	}})
}
