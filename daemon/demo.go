package daemon

import (
	"encoding/json"
	"time"

	"github.com/shopbridge/shopbridge"
	"github.com/shopbridge/shopbridge/storage"
)

// DemoData is what --demo seeds an empty store with: bills as the upstream
// sends them and the upstream's system name. The caller gives it
// (cmd/shopbridge the simulator's default data), so the daemon links no
// simulator.
type DemoData struct {
	System string
	Bills  []json.RawMessage // each a JSON object with at least id and date
}

// SeedDemo fills an empty store with data's sample bills, so a person can
// try the API with curl right away.
func SeedDemo(st *storage.Store, data *DemoData) error {
	if s, err := st.Stats(); err != nil || s.Bills > 0 {
		return err
	}
	now := time.Now()
	var sums []shopbridge.BillSummary
	for _, raw := range data.Bills {
		b, _, err := st.PutBill(raw, now)
		if err != nil {
			return err
		}
		sums = append(sums, b.Summary)
	}
	if _, err := st.ApplyList(sums, storage.ListPartial, now); err != nil {
		return err
	}
	return st.SetSystem(data.System)
}
