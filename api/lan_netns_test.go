//go:build linux

package api_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge/api"
	"github.com/shopbridge/shopbridge/internal/storetest"
	"golang.org/x/sys/unix"
)

// Token guessing from a LAN of its own: two network namespaces the test
// creates, a veth pair between them, the server in one, a client with
// 1,040 addresses in the other (issue 16.6). Nothing touches the host's
// network.

func needRootNetns(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("netns test skipped in -short mode")
	}
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create network namespaces and veth pairs (CI runs it as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: the ip tool (iproute2) is not installed")
	}
}

func ipRun(t *testing.T, stdin string, args ...string) {
	t.Helper()
	cmd := exec.Command("ip", args...)
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// inNetns runs fn on an OS thread moved into the namespace; the thread
// is never unlocked, so it ends with the goroutine instead of going back
// to the scheduler in the wrong namespace. Sockets made in fn stay in the
// namespace whatever thread uses them later.
func inNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + name)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %v", name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

func TestNetnsTokenGuessing(t *testing.T) {
	needRootNetns(t)
	srvNS := fmt.Sprintf("sblan-%d-srv", os.Getpid())
	cliNS := fmt.Sprintf("sblan-%d-cli", os.Getpid())
	for _, ns := range []string{srvNS, cliNS} {
		ipRun(t, "", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		ipRun(t, "", "-n", ns, "link", "set", "lo", "up")
	}
	ipRun(t, "", "-n", srvNS, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1", "netns", cliNS)
	ipRun(t, "", "-n", srvNS, "addr", "add", "10.76.0.1/24", "dev", "lan0")
	ipRun(t, "", "-n", srvNS, "link", "set", "lan0", "up")
	ipRun(t, "", "-n", cliNS, "addr", "add", "10.76.0.2/24", "dev", "lan1")
	// The client's addresses: 10.77.1.1-10.77.1.8 guess, 10.77.2.1 is a
	// register, 10.77.4.0-10.77.8.5 (1,030) the flood.
	var batch strings.Builder
	var guessers, flood []string
	for i := 1; i <= 8; i++ {
		guessers = append(guessers, fmt.Sprintf("10.77.1.%d", i))
	}
	for i := range 1030 {
		flood = append(flood, fmt.Sprintf("10.77.%d.%d", 4+i/256, i%256))
	}
	for _, a := range append(append(append([]string{}, guessers...), flood...), "10.77.2.1") {
		fmt.Fprintf(&batch, "addr add %s/32 dev lo\n", a)
	}
	ipRun(t, batch.String(), "-n", cliNS, "-batch", "-")
	ipRun(t, "", "-n", cliNS, "link", "set", "lan1", "up")
	// The client's addresses sit behind one neighbour (a router, as it
	// were): 1,030 neighbours would overflow the server's ARP table.
	ipRun(t, "", "-n", srvNS, "route", "add", "10.77.0.0/16", "via", "10.76.0.2")

	const adminToken, terminalToken = "adm1n-7f3c9a", "term-51be02"
	st := storetest.MustOpen(t)
	h := api.New(api.Config{Store: st, AdminToken: adminToken, TerminalToken: terminalToken, Logger: quietLogger()})
	var ln net.Listener
	if err := inNetns(srvNS, func() (err error) {
		ln, err = net.Listen("tcp", "10.76.0.1:8480")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ConnContext: h.ConnContext, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(api.Listener(ln))
	t.Cleanup(func() { srv.Close() })

	client := func(src string) *http.Client {
		return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			DisableKeepAlives: true,
			DialContext: func(ctx context.Context, network, addr string) (c net.Conn, err error) {
				err = inNetns(cliNS, func() error {
					d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
					c, err = d.DialContext(ctx, network, addr)
					return err
				})
				return c, err
			}}}
	}
	call := func(c *http.Client, method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://10.76.0.1:8480"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := c.Do(req)
		if err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return 0, ""
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, resp.Header.Get("Retry-After")
	}

	register := client("10.77.2.1")
	if code, _ := call(register, "GET", "/api/v2/list", terminalToken, ""); code != 200 {
		t.Fatalf("the register before the attack: %d", code)
	}

	// Eight addresses guess admin and terminal tokens at once, as fast as
	// they can, 50 guesses each.
	start := time.Now()
	var mu sync.Mutex
	heard := map[string]int{}
	var wg sync.WaitGroup
	for i, src := range guessers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := client(src)
			for g := range 50 {
				path := "/admin/api/status"
				if (g+i)%2 == 1 {
					path = "/api/v2/list"
				}
				code, ra := call(c, "GET", path, fmt.Sprintf("guess-%d-%d", i, g), "")
				if code == 429 && ra == "" {
					t.Errorf("429 without Retry-After")
				}
				mu.Lock()
				heard[fmt.Sprint(code)]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	took := time.Since(start)
	t.Logf("8 addresses, 400 guesses in %s: %v (answers by status)", took.Round(time.Millisecond), heard)
	// The global budget: 30, plus one per 2 s it refills while they guess
	// (a bound that grows with a slow machine, never a timed one).
	if limit := 30 + int(took/(2*time.Second)) + 1; heard["401"] > limit || heard["401"]+heard["429"] != 400 {
		t.Errorf("guesses heard (401): %d of 400, want at most %d: %v", heard["401"], limit, heard)
	}
	for _, src := range guessers[:2] {
		if code, _ := call(client(src), "GET", "/admin/api/status", adminToken, ""); code != 429 {
			t.Errorf("right token from guessing %s: %d, want 429", src, code)
		}
	}

	// 1,030 other addresses, one wrong token each.
	flooded := map[int]int{}
	floodStart := time.Now()
	srcs := make(chan string)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for src := range srcs {
				code, _ := call(client(src), "GET", "/admin/api/status", "flood", "")
				mu.Lock()
				flooded[code]++
				mu.Unlock()
			}
		}()
	}
	for _, src := range flood {
		srcs <- src
	}
	close(srcs)
	wg.Wait()
	floodTook := time.Since(floodStart)
	t.Logf("flood of 1,030 addresses in %s: %v", floodTook.Round(time.Millisecond), flooded)
	if limit := int((floodTook+took)/(2*time.Second)) + 2; flooded[401] > limit || flooded[429] < 1030-limit {
		t.Errorf("flood heard %d times in %s, want at most %d", flooded[401], floodTook, limit)
	}
	if code, _ := call(client(guessers[0]), "GET", "/admin/api/status", adminToken, ""); code != 429 {
		t.Errorf("right token from a guessing address after the flood: %d, want 429", code)
	}
	// The register that presented its token before keeps posting.
	body := receiptBody("ev-netns-1", "SELL", "", "")
	if code, _ := call(register, "POST", "/api/v2/receipts", terminalToken, body); code != 200 {
		t.Errorf("the register's receipt during the attack: %d", code)
	}
	if _, err := st.Receipt("ev-netns-1"); err != nil {
		t.Errorf("the register's receipt is not stored: %v", err)
	}
}
