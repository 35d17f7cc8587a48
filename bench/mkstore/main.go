// Command mkstore builds a large shopbridge store through the storage
// package, for the start-up and memory benchmark: -bills realistic bills
// (crmsim.Generate: 1 to 5 products, marked goods, delivery lines) stored
// one by one with PutBill, an upstream list of the newest -open of them
// applied with ApplyList, and -journal journal entries appended with
// AppendJournal in batches of -batch, with bodies like real exchanges (bill
// answers, list answers, receipts).
//
// The store is built in -build (tmpfs by default: each PutBill is a commit
// and 100,000 fsyncs on a disk would dominate the run) and then copied to
// -out, which should be on the disk the daemon will use.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/crmsim"
	"github.com/shopbridge/shopbridge/storage"
)

func main() {
	out := flag.String("out", "", "store file to write (e.g. DIR/shopbridge.db)")
	build := flag.String("build", "/dev/shm", "directory to build in before copying to -out")
	nBills := flag.Int("bills", 100000, "bills")
	nOpen := flag.Int("open", 200, "bills in the upstream's no-parameter list (the newest)")
	nJournal := flag.Int("journal", 1000000, "journal entries")
	batch := flag.Int("batch", 10000, "journal entries per AppendJournal")
	flag.Parse()
	if *out == "" {
		log.Fatal("mkstore: -out is required")
	}
	start := time.Now()
	tmp, err := os.MkdirTemp(*build, "shopbridge-mkstore-")
	if err != nil {
		log.Fatalf("mkstore: -build: %v", err)
	}
	defer os.RemoveAll(tmp)
	path := filepath.Join(tmp, storage.FileName)
	st, err := storage.Open(path, storage.Options{})
	if err != nil {
		log.Fatalf("mkstore: %v", err)
	}

	now := time.Now()
	data := crmsim.Generate(*nBills, now)
	sums := make([]shopbridge.BillSummary, 0, *nOpen)
	all := make([]shopbridge.BillSummary, 0, *nBills)
	var billBytes int64
	for i, raw := range data.Bills {
		b, _, err := st.PutBill(raw, now.Add(-time.Duration(i)*17*time.Minute))
		if err != nil {
			log.Fatalf("mkstore: bill %d: %v", i, err)
		}
		billBytes += int64(len(raw))
		all = append(all, b.Summary)
		if i < *nOpen {
			sums = append(sums, b.Summary)
		}
	}
	if _, err := st.ApplyList(sums, storage.ListAll, now); err != nil {
		log.Fatalf("mkstore: apply list: %v", err)
	}
	tBills := time.Since(start)

	rng := rand.New(rand.NewPCG(1, 2))
	span := 25 * 24 * time.Hour // inside the default 720h journal age
	first := now.Add(-span)
	entries := make([]shopbridge.JournalEntry, 0, *batch)
	var journalBytes int64
	for i := 0; i < *nJournal; i++ {
		e := entry(rng, data.Bills, all, sums, first.Add(time.Duration(int64(span)/int64(*nJournal)*int64(i))), i)
		journalBytes += int64(len(e.ReqBody) + len(e.RespBody))
		entries = append(entries, e)
		if len(entries) == *batch || i == *nJournal-1 {
			if err := st.AppendJournal(entries); err != nil {
				log.Fatalf("mkstore: journal: %v", err)
			}
			entries = entries[:0]
		}
	}
	stats, err := st.Stats()
	if err != nil {
		log.Fatalf("mkstore: %v", err)
	}
	if err := st.Close(); err != nil {
		log.Fatalf("mkstore: close: %v", err)
	}
	tBuilt := time.Since(start)
	if err := copyFile(path, *out); err != nil {
		log.Fatalf("mkstore: %v", err)
	}
	fmt.Printf("RESULT bills=%d open=%d bill_bytes=%d journal=%d journal_body_bytes=%d file_bytes=%d bills_s=%.1f built_s=%.1f total_s=%.1f\n",
		stats.Bills, stats.OpenBills, billBytes, stats.Journal, journalBytes, stats.FileBytes,
		tBills.Seconds(), tBuilt.Seconds(), time.Since(start).Seconds())
}

// entry makes one journal entry like the daemon records: mostly bill/byid
// answers, then lists, receipts and hellos.
func entry(rng *rand.Rand, bills []json.RawMessage, all, open []shopbridge.BillSummary, at time.Time, i int) shopbridge.JournalEntry {
	device := fmt.Sprintf("20240%03d-aaaa-4bbb-8ccc-%012d", i%7, i%7)
	e := shopbridge.JournalEntry{Time: at, Client: fmt.Sprintf("192.168.1.%d", 20+i%7), Device: device,
		Method: "GET", Status: 200, Duration: time.Duration(200+rng.IntN(2000)) * time.Microsecond, Source: "store"}
	switch r := rng.IntN(100); {
	case r < 55:
		k := rng.IntN(len(bills))
		e.Kind, e.Path, e.RespBody = "BILL", "/api/v2/bill/byid/"+all[k].ID, bills[k]
	case r < 80:
		e.Kind, e.Path = "LIST", "/api/v2/list"
		if r < 65 {
			e.Query = "date=today"
		}
		body := []byte("[")
		for k, n := 0, 1+rng.IntN(12); k < n && len(open) > 0; k++ {
			if k > 0 {
				body = append(body, ',')
			}
			body = append(body, open[rng.IntN(len(open))].Raw...)
		}
		e.RespBody = append(body, ']')
	case r < 95:
		e.Kind, e.Method, e.Path = "RECEIPT", "POST", "/api/v2/receipts"
		sum := all[rng.IntN(len(all))]
		e.ReqBody = []byte(`{"id":"` + strconv.Itoa(i) + `-7c1e-4f6a-9d3b-5e2a1c0b9f8e","timestamp":` + strconv.FormatInt(at.UnixMilli(), 10) +
			`,"type":"ReceiptCreated","data":{"id":"b7f2c1d0-3e4a-4b5c-8d9e-0f1a2b3c4d5e","type":"SELL","deviceId":"` + device +
			`","extras":{"billId":"` + sum.ID + `","settlementMethod":"FullSettlement"},"positions":[{"productName":"Кресло компьютерное Кларк велюр серый","quantity":1,"price":9093,"sum":9093}],"totalAmount":` + sum.Summ + `}}`)
	default:
		e.Kind, e.Path = "HELLO", "/api/v2/hello"
		e.RespBody = []byte(`{"system":"new-sens-gel, sens-khabarovsk","protocol":"0.1.0"}`)
	}
	return e
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy store to %s: %w", to, err)
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
