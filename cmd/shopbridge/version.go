package main

import (
	"fmt"
	"runtime"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

func cmdVersion(args []string) int {
	if ok, code := noFlags("version", "Prints the version, commit and build date of this binary.", args); !ok {
		return code
	}
	fmt.Printf("shopbridge %s (commit %s, built %s, %s/%s)\n", shopbridge.Version, shopbridge.Commit, shopbridge.BuildDate, runtime.GOOS, runtime.GOARCH)
	if storage.HangInjection {
		fmt.Println("TEST BUILD (-tags hanginject): SIGUSR2 hangs the store's commit loop; not for a shop")
	}
	return 0
}
