package discovery

import (
	"context"
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shopbridge/shopbridge"
)

// One shop, one appliance. Every daemon with an upstream announces an
// identity of it in TXT up= (UpstreamID); every daemon browses the LAN now
// and then and on news of another instance, and an instance with the same
// up= (or the same id=, a copied store, under another name) is a
// duplicate: shown in status and on the console, warned about in the log.

// Duplicate checks: the first soon after start, then every duplicateEvery
// and shortly after another instance of our service type shows up.
var (
	duplicateFirst  = 3 * time.Second
	duplicateEvery  = 30 * time.Second
	duplicateNews   = time.Second // after news, wait for the rest of its records
	duplicateBrowse = 3 * time.Second
	// duplicateKeep is how long a duplicate stays listed after a browse
	// last found it: one missed answer must not make the warning flap.
	duplicateKeep = 75 * time.Second
)

// upstreamIDIter slows down guessing a token from its TXT id: the id is on
// the LAN for anyone to read.
const upstreamIDIter = 20000

// UpstreamID is what TXT up= says of an upstream: 16 hex digits derived
// from its normalised URL and token (PBKDF2-SHA256, so that the token
// cannot be read back from it), the same on every shopbridge given the
// same two; "" without an upstream.
func UpstreamID(upstream, token string) string {
	if upstream == "" {
		return ""
	}
	norm := strings.TrimRight(upstream, "/")
	if u, err := url.Parse(norm); err == nil && u.Host != "" {
		u.Scheme, u.Host = strings.ToLower(u.Scheme), strings.ToLower(u.Host)
		norm = u.String()
	}
	k, err := pbkdf2.Key(sha256.New, token, []byte("shopbridge upstream id\x00"+norm), upstreamIDIter, 8)
	if err != nil {
		return ""
	}
	return hex.EncodeToString(k)
}

// Duplicates returns the other instances found serving the same shop.
func (a *Announcer) Duplicates() []shopbridge.Duplicate {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]shopbridge.Duplicate, 0, len(a.dups))
	for _, d := range a.dups {
		out = append(out, d)
	}
	slices.SortFunc(out, func(x, y shopbridge.Duplicate) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// watchDuplicates browses for other instances until ctx ends.
func (a *Announcer) watchDuplicates(ctx context.Context) {
	defer a.dupDone.Done()
	timer := time.NewTimer(duplicateFirst)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.peerNews:
			timer.Reset(duplicateNews)
			continue
		case <-timer.C:
		}
		a.checkDuplicates(ctx)
		timer.Reset(duplicateEvery)
	}
}

// checkDuplicates browses once and updates the duplicates found.
func (a *Announcer) checkDuplicates(ctx context.Context) {
	st := a.Status()
	if st.State != "announcing" {
		return // our own records are not out yet: we could not tell ourselves apart
	}
	found, err := Browse(ctx, duplicateBrowse, a.cfg.Ifaces)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Debug("browse for other instances failed", "err", err)
		}
		return
	}
	now := time.Now()
	ours := a.ownAddresses(st)
	a.mu.Lock()
	var news []shopbridge.Duplicate
	a.status.OthersCheckedAt, a.status.Others = now, 0
	for _, in := range found {
		if in.TXT["id"] != a.cfg.InstanceID || !strings.EqualFold(in.Name, st.Instance) {
			a.status.Others++
		}
		reason := a.duplicateReason(in, st.Instance)
		if reason == "" {
			continue
		}
		d := shopbridge.Duplicate{Name: in.Name, URL: in.URL, System: in.System, InstanceID: in.TXT["id"], Reason: reason, SeenAt: now,
			Addresses: []string{}}
		for _, ip := range in.Addrs {
			d.Addresses = append(d.Addresses, net.JoinHostPort(ip.String(), strconv.Itoa(in.Port)))
		}
		if _, known := a.dups[in.Name]; !known {
			news = append(news, d)
		}
		a.dups[in.Name] = d
	}
	var gone []string
	for name, d := range a.dups {
		if now.Sub(d.SeenAt) > duplicateKeep {
			delete(a.dups, name)
			gone = append(gone, name)
		}
	}
	a.mu.Unlock()
	for _, d := range news {
		what := "announces the same CRM upstream (URL and token)"
		if d.Reason == shopbridge.DuplicateStore {
			what = "runs on a copy of this store (the same instance id): a cloned disk"
		}
		a.log.Warn("another shopbridge on this LAN serves the same shop: "+what+
			"; registers that find shopbridge by themselves may split between the two, and a bill settled at one stays open at the other. "+
			"Keep one appliance per shop LAN: stop and uninstall shopbridge on one of the PCs (once its outbox is empty) and point every register at the other",
			"other", d.Name, "other_addresses", strings.Join(d.Addresses, ","), "our_addresses", strings.Join(ours, ","),
			"other_system", d.System, "reason", d.Reason)
	}
	for _, name := range gone {
		a.log.Info("the other shopbridge serving the same shop is no longer found on the LAN", "other", name)
	}
}

// duplicateReason tells whether a browsed instance serves our shop (and
// is not ourselves): "" when it does not.
func (a *Announcer) duplicateReason(in Instance, ourName string) string {
	sameStore := a.cfg.InstanceID != "" && in.TXT["id"] == a.cfg.InstanceID
	if sameStore && strings.EqualFold(in.Name, ourName) {
		return "" // ourselves
	}
	switch {
	case sameStore:
		return shopbridge.DuplicateStore
	case a.cfg.UpstreamID != "" && in.TXT["up"] == a.cfg.UpstreamID:
		return shopbridge.DuplicateUpstream
	}
	return ""
}

// ownAddresses are the host:port pairs we announce.
func (a *Announcer) ownAddresses(st Status) []string {
	var out []string
	for _, i := range st.Interfaces {
		for _, ip := range i.Addrs {
			out = append(out, net.JoinHostPort(ip, strconv.Itoa(a.cfg.Port)))
		}
	}
	return out
}
