// Package hotpath holds Go benchmarks (no code) of the per-request work the
// make bench figures point at: the journal append a terminal request costs,
// the store read behind bill/byid and the receipt parse. Run with
//
//	go test -run=NONE -bench=. -benchmem ./bench/hotpath
package hotpath
