// Package damage makes damaged copies of a real shopbridge store for tests:
// a file cut short, pages overwritten, meta pages and the free list broken,
// branch and leaf pages broken, a wrong marker or format version, files
// that are not a store at all, an empty file. Each copy is a data directory
// of its own (the store and the marker file beside it), so that a daemon or
// a command can be pointed at it with --data. It finds the pages to break
// with storage.PageMap, so every copy is damaged where the store keeps
// something (a free page overwritten would be no damage at all). internal/
// because only the module's tests use it.
package damage

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/storage"
)

// Copy is one damaged copy.
type Copy struct {
	Class string // what kind of damage: "cut", "random-page", ...
	Name  string // class and variant, unique
	Dir   string // its data directory
	Path  string // the store file in it
}

// Classes are the classes Make makes, in order.
var Classes = []string{"cut", "random-page", "leaf", "branch", "freelist", "meta", "magic-version", "foreign", "empty"}

// Make writes the damaged copies of the store file src under root, one
// data directory each. The store must be big enough to have branch pages
// and a free list with entries (a few thousand records and some updates).
func Make(src, root string) ([]Copy, error) {
	orig, err := os.ReadFile(src)
	if err != nil {
		return nil, err
	}
	kinds, ps, err := storage.PageMap(src)
	if err != nil {
		return nil, fmt.Errorf("the source store is not sound: %w", err)
	}
	var leaves, branches, free []int
	for id, k := range kinds {
		switch k {
		case storage.PageLeaf:
			leaves = append(leaves, id)
		case storage.PageBranch:
			branches = append(branches, id)
		case storage.PageFree:
			free = append(free, id)
		}
	}
	freelist := slices.Index(kinds, storage.PageFreelist)
	if len(branches) < 3 || len(leaves) < 10 || len(free) < 2 || freelist < 0 {
		return nil, fmt.Errorf("the source store is too small: %d branch pages, %d leaf pages, %d free pages",
			len(branches), len(leaves), len(free))
	}
	hw := len(kinds)
	used := int64(hw * ps)
	rng := rand.New(rand.NewPCG(16, 2))
	le := binary.LittleEndian
	at := func(id int) int { return id * ps }

	var out []Copy
	add := func(class, variant string, data []byte) error {
		name := class + "-" + variant
		dir := filepath.Join(root, name)
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		path := filepath.Join(dir, storage.FileName)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return err
		}
		// The marker: a store that has run before, so that an empty
		// file is not taken for a new install.
		if err := os.WriteFile(filepath.Join(dir, storage.MarkerName), []byte("damaged-copy\n"), 0o600); err != nil {
			return err
		}
		out = append(out, Copy{Class: class, Name: name, Dir: dir, Path: path})
		return nil
	}
	edit := func(class, variant string, fn func(b []byte)) error {
		b := slices.Clone(orig)
		fn(b)
		return add(class, variant, b)
	}
	pick := func(ids []int) int { return ids[rng.IntN(len(ids))] }
	resum := func(b []byte, slot int) {
		m := b[at(slot)+16:]
		h := fnv.New64a()
		h.Write(m[:56])
		le.PutUint64(m[56:], h.Sum64())
	}

	var steps []func() error
	// Cut short, at points below the high water mark.
	for _, n := range []int64{used - 1, used - int64(ps), used * 3 / 4, used / 2, used / 4, int64(3 * ps), int64(2 * ps), int64(ps), int64(ps) / 2, 100} {
		steps = append(steps, func() error { return add("cut", fmt.Sprintf("at-%d", n), orig[:n]) })
	}
	// A page in use overwritten with random bytes.
	for i := range 10 {
		id := pick(append(slices.Clone(leaves), branches...))
		steps = append(steps, func() error {
			return edit("random-page", fmt.Sprintf("%d-page-%d", i, id), func(b []byte) {
				for j := at(id); j < at(id)+ps; j++ {
					b[j] = byte(rng.IntN(256))
				}
			})
		})
	}
	// Leaf pages: zeroed, a count beyond the page, an element pointing
	// outside it, the page number wrong.
	for i := range 3 {
		id := pick(leaves)
		steps = append(steps, func() error {
			return edit("leaf", fmt.Sprintf("zeroed-%d-page-%d", i, id), func(b []byte) { clear(b[at(id) : at(id)+ps]) })
		})
	}
	for i, id := range []int{pick(leaves), pick(leaves)} {
		steps = append(steps, func() error {
			return edit("leaf", fmt.Sprintf("count-%d-page-%d", i, id), func(b []byte) { le.PutUint16(b[at(id)+10:], 0xFFF0) })
		})
	}
	for i, id := range []int{pick(leaves), pick(leaves)} {
		steps = append(steps, func() error {
			return edit("leaf", fmt.Sprintf("element-%d-page-%d", i, id), func(b []byte) { le.PutUint32(b[at(id)+16+4:], 0x7FFFFF00) })
		})
	}
	steps = append(steps, func() error {
		id := pick(leaves)
		return edit("leaf", fmt.Sprintf("number-page-%d", id), func(b []byte) { le.PutUint64(b[at(id):], uint64(id+1)) })
	})
	// Branch pages: zeroed, a child outside the store, on the free list, a
	// meta page, a flag that makes it a leaf.
	steps = append(steps,
		func() error {
			id := pick(branches)
			return edit("branch", fmt.Sprintf("zeroed-page-%d", id), func(b []byte) { clear(b[at(id) : at(id)+ps]) })
		},
		func() error {
			id := pick(branches)
			return edit("branch", fmt.Sprintf("child-outside-page-%d", id), func(b []byte) { le.PutUint64(b[at(id)+16+8:], uint64(hw+1000)) })
		},
		func() error {
			id := pick(branches)
			return edit("branch", fmt.Sprintf("child-huge-page-%d", id), func(b []byte) { le.PutUint64(b[at(id)+16+8:], 1<<60) })
		},
		func() error {
			id, f := pick(branches), pick(free)
			return edit("branch", fmt.Sprintf("child-free-page-%d", id), func(b []byte) { le.PutUint64(b[at(id)+16+8:], uint64(f)) })
		},
		func() error {
			id := pick(branches)
			return edit("branch", fmt.Sprintf("child-meta-page-%d", id), func(b []byte) { le.PutUint64(b[at(id)+16+8:], 1) })
		},
		func() error {
			id := pick(branches)
			return edit("branch", fmt.Sprintf("as-leaf-page-%d", id), func(b []byte) { le.PutUint16(b[at(id)+8:], 0x02) })
		},
		func() error {
			id := pick(branches)
			return edit("branch", fmt.Sprintf("count-page-%d", id), func(b []byte) { le.PutUint16(b[at(id)+10:], 0xFFF0) })
		},
	)
	// The free list: zeroed, a count beyond the page, a huge count in the
	// overflow element, a page outside the store, a page twice, a page in
	// use listed as free.
	fl := at(freelist)
	count := int(le.Uint16(orig[fl+10:]))
	first := 16
	if count == 0xFFFF {
		count, first = int(le.Uint64(orig[fl+16:])), 24
	}
	steps = append(steps,
		func() error { return edit("freelist", "zeroed", func(b []byte) { clear(b[fl : fl+ps]) }) },
		func() error { return edit("freelist", "count", func(b []byte) { le.PutUint16(b[fl+10:], 0xFFF0) }) },
		func() error {
			return edit("freelist", "overflow-count", func(b []byte) { le.PutUint16(b[fl+10:], 0xFFFF); le.PutUint64(b[fl+16:], 1<<40) })
		},
		func() error {
			return edit("freelist", "page-outside", func(b []byte) { le.PutUint64(b[fl+first:], uint64(hw+7)) })
		},
		func() error {
			return edit("freelist", "page-twice", func(b []byte) {
				if count > 1 {
					copy(b[fl+first+8:fl+first+16], b[fl+first:fl+first+8])
				}
			})
		},
		func() error {
			return edit("freelist", "page-in-use", func(b []byte) { le.PutUint64(b[fl+first:], uint64(pick(leaves))) })
		},
		func() error { return edit("freelist", "flags", func(b []byte) { le.PutUint16(b[fl+8:], 0x02) }) },
	)
	if count < 2 {
		return nil, fmt.Errorf("the source store's free list has %d entries, want 2 or more", count)
	}
	// Meta pages: each or both zeroed, a byte changed (the checksum fails).
	steps = append(steps,
		func() error { return edit("meta", "zeroed-0", func(b []byte) { clear(b[0:ps]) }) },
		func() error { return edit("meta", "zeroed-1", func(b []byte) { clear(b[ps : 2*ps]) }) },
		func() error { return edit("meta", "zeroed-both", func(b []byte) { clear(b[0 : 2*ps]) }) },
		func() error { return edit("meta", "byte-0", func(b []byte) { b[16+40] ^= 0x40 }) },
		func() error {
			return edit("meta", "byte-both", func(b []byte) { b[16+40] ^= 0x40; b[ps+16+40] ^= 0x40 })
		},
		// Checksum right, root outside the store: a meta page written by
		// something that is not bbolt.
		func() error {
			return edit("meta", "root-outside", func(b []byte) {
				for slot := range 2 {
					le.PutUint64(b[at(slot)+16+16:], uint64(hw+5))
					resum(b, slot)
				}
			})
		},
	)
	// The marker and the format version.
	steps = append(steps,
		func() error {
			return edit("magic-version", "magic-both", func(b []byte) { le.PutUint32(b[16:], 0xDEADBEEF); le.PutUint32(b[ps+16:], 0xDEADBEEF) })
		},
		func() error {
			return edit("magic-version", "version-3", func(b []byte) {
				for slot := range 2 {
					le.PutUint32(b[at(slot)+16+4:], 3)
					resum(b, slot)
				}
			})
		},
		func() error {
			return edit("magic-version", "version-1", func(b []byte) {
				for slot := range 2 {
					le.PutUint32(b[at(slot)+16+4:], 1)
					resum(b, slot)
				}
			})
		},
	)
	// Not a store at all.
	noise := make([]byte, 64<<10)
	for i := range noise {
		noise[i] = byte(rng.IntN(256))
	}
	sqlite := append([]byte("SQLite format 3\x00"), make([]byte, 8192)...)
	steps = append(steps,
		func() error { return add("foreign", "random", noise) },
		func() error {
			return add("foreign", "text", []byte("listen = \":8480\"\nupstream = \"https://crm.example\"\n"))
		},
		func() error { return add("foreign", "sqlite", sqlite) },
		func() error { return add("empty", "zero-bytes", nil) },
	)
	for _, step := range steps {
		if err := step(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// MakeSource builds a sound store in dir (a data directory) like a shop's
// after some days: bills (crmsim.Generate), the upstream's list applied
// twice (so pages were freed and the free list has entries), receipts and
// journal entries. It returns the store's path and the receipts' event ids.
func MakeSource(dir string) (path string, receipts []string, err error) {
	path = filepath.Join(dir, storage.FileName)
	st, err := storage.Open(path, storage.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		return "", nil, err
	}
	defer func() {
		if cerr := st.Close(); err == nil {
			err = cerr
		}
	}()
	now := time.Now()
	data := crmsim.Generate(1500, now)
	var sums []shopbridge.BillSummary
	for i, raw := range data.Bills {
		b, _, err := st.PutBill(raw, now.Add(-time.Duration(i)*time.Minute))
		if err != nil {
			return "", nil, err
		}
		sums = append(sums, b.Summary)
	}
	for _, n := range []int{400, 150} {
		if _, err := st.ApplyList(sums[:n], storage.ListAll, now); err != nil {
			return "", nil, err
		}
	}
	for i := range 300 {
		id := fmt.Sprintf("damage-source-%04d", i)
		body := fmt.Sprintf(`{"id": %q, "data": {"type": "SELL", "totalAmount": 4604.04, "extras": {"billId": "%d"}}}`, id, 900001+i)
		r := &shopbridge.Receipt{EventID: id, Body: []byte(body), ReceivedAt: now, Type: "SELL", BillID: fmt.Sprint(900001 + i)}
		if _, err := st.AcceptReceipt(r); err != nil {
			return "", nil, err
		}
		receipts = append(receipts, id)
	}
	entries := make([]shopbridge.JournalEntry, 2000)
	for i := range entries {
		entries[i] = shopbridge.JournalEntry{Time: now, Client: "127.0.0.1", Kind: "LIST", Method: "GET",
			Path: "/api/v2/list", Status: 200, RespBody: []byte(strings.Repeat("x", 100+i%700))}
	}
	if err := st.AppendJournal(entries); err != nil {
		return "", nil, err
	}
	return path, receipts, nil
}
