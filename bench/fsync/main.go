// Command fsync measures the disk's serial durable-write rate: it appends
// -size bytes and fsyncs, one after the other, for -d, in a file inside
// -dir (use the filesystem the daemon's store lives on). It prints ops/s;
// the durable receipts benchmark compares shopbridge against this.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"sort"
	"time"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the filesystem to measure")
	size := flag.Int("size", 1024, "bytes per write")
	dur := flag.Duration("d", 3*time.Second, "how long to measure")
	flag.Parse()
	path := filepath.Join(*dir, "fsync-bench.dat")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC|os.O_APPEND, 0o600)
	if err != nil {
		log.Fatalf("fsync: %v", err)
	}
	defer os.Remove(path)
	defer f.Close()
	buf := make([]byte, *size)
	for i := range buf {
		buf[i] = byte('a' + i%26)
	}
	var lat []time.Duration
	start := time.Now()
	for time.Since(start) < *dur {
		t := time.Now()
		if _, err := f.Write(buf); err != nil {
			log.Fatalf("fsync: write %s: %v", path, err)
		}
		if err := f.Sync(); err != nil {
			log.Fatalf("fsync: fsync %s: %v", path, err)
		}
		lat = append(lat, time.Since(t))
	}
	el := time.Since(start)
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	p := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))] }
	fmt.Printf("RESULT ops=%d seconds=%.2f ops_per_s=%.0f p50_us=%d p99_us=%d\n",
		len(lat), el.Seconds(), float64(len(lat))/el.Seconds(), p(0.5).Microseconds(), p(0.99).Microseconds())
}
