package discovery

// The netns tests run parts of themselves inside network namespaces by
// re-executing the test binary under `ip netns exec` with
// SHOPBRIDGE_DISCOVERY_ROLE set; TestMain then plays that role instead of
// running tests. Roles talk to the test through stdout lines.

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shopbridge/shopbridge"
)

const roleEnv = "SHOPBRIDGE_DISCOVERY_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		os.Exit(runRole(role))
	}
	os.Exit(m.Run())
}

func runRole(role string) int {
	switch role {
	case "announce":
		return roleAnnounce()
	case "register":
		return roleRegister()
	case "block5353":
		return roleBlock5353()
	case "get":
		return roleGet()
	}
	fmt.Fprintf(os.Stderr, "unknown role %q\n", role)
	return 2
}

// terminalAPI is the smallest daemon a register can use: hello, list, one
// bill and receipts, enough to walk the register's flow against the address
// discovery offered.
func terminalAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v2/hello", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"system":"netns-test","protocol":"0.1.0"}`)
	})
	mux.HandleFunc("GET /api/v2/list", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `[{"id":7,"date":"2024-05-01 10:00:00","summ":4604.04,"number":"A-7","customername":"Test"}]`)
	})
	mux.HandleFunc("GET /api/v2/bill/byid/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "7" {
			http.NotFound(w, r)
			return
		}
		io.WriteString(w, `{"id":7,"date":"2024-05-01 10:00:00","summ":4604.04,"number":"A-7","products":[]}`)
	})
	var mu sync.Mutex
	seen := map[string]bool{}
	mux.HandleFunc("POST /api/v2/receipts", func(w http.ResponseWriter, r *http.Request) {
		var ev struct {
			ID   string          `json:"id"`
			Data json.RawMessage `json:"data"`
		}
		body, _ := io.ReadAll(r.Body)
		if json.Unmarshal(body, &ev) != nil || ev.ID == "" || len(ev.Data) == 0 {
			http.Error(w, `{"errors":[{"code":2001,"reason":"bad receipt","subject":"body"}]}`, http.StatusBadRequest)
			return
		}
		mu.Lock()
		seen[ev.ID] = true
		mu.Unlock()
	})
	return mux
}

func roleAnnounce() int {
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	go http.Serve(ln, terminalAPI())
	port := ln.Addr().(*net.TCPAddr).Port
	fmt.Println("PORT", port)
	var ifaces []string
	if s := os.Getenv("ANNOUNCE_IFACES"); s != "" {
		ifaces = strings.Split(s, ",")
	}
	a := New(Config{
		Instance:   os.Getenv("ANNOUNCE_NAME"),
		InstanceID: os.Getenv("ANNOUNCE_ID"),
		Version:    "test",
		Port:       port,
		Ifaces:     ifaces,
		Logger:     slog.New(slog.NewTextHandler(os.Stderr, nil)),
	})
	if err := a.Open(context.Background()); err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	var last []byte
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-sigs:
			a.Close()
			b, _ := json.Marshal(a.Status())
			fmt.Printf("STATUS %s\nCLOSED\n", b)
			return 0
		case <-tick.C:
			b, _ := json.Marshal(a.Status())
			if !bytes.Equal(b, last) {
				fmt.Printf("STATUS %s\n", b)
				last = b
			}
		}
	}
}

// roleRegister browses once and walks hello → list → bill → receipt on every
// instance found, printing FOUND and FLOW lines.
func roleRegister() int {
	timeout, _ := time.ParseDuration(os.Getenv("BROWSE_TIMEOUT"))
	if timeout == 0 {
		timeout = 2 * time.Second
	}
	found, err := Browse(context.Background(), timeout, nil)
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	b, _ := json.Marshal(found)
	fmt.Printf("FOUND %s\n", b)
	if os.Getenv("REGISTER_FLOW") == "" {
		return 0
	}
	for _, in := range found {
		if err := registerFlow(in.URL); err != nil {
			fmt.Printf("FLOW fail %q %v\n", in.Name, err)
			continue
		}
		fmt.Printf("FLOW ok %q\n", in.Name)
	}
	return 0
}

// registerFlow is what a register does once it has a base URL.
func registerFlow(base string) error {
	if base == "" {
		return fmt.Errorf("no address answered hello")
	}
	c := &http.Client{Timeout: 3 * time.Second}
	get := func(path string) ([]byte, error) {
		resp, err := c.Get(base + path)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 {
			return nil, fmt.Errorf("GET %s: %d %s", path, resp.StatusCode, body)
		}
		return body, nil
	}
	if _, err := get("/hello"); err != nil {
		return err
	}
	body, err := get("/list")
	if err != nil {
		return err
	}
	var list []struct {
		ID json.Number `json:"id"`
	}
	if err := json.Unmarshal(body, &list); err != nil || len(list) == 0 {
		return fmt.Errorf("list: %v %s", err, body)
	}
	if _, err := get("/bill/byid/" + list[0].ID.String()); err != nil {
		return err
	}
	receipt := fmt.Sprintf(`{"id":"netns-%d","type":"evo.receipt.sell","data":{"type":"SELL","extras":{"billId":"%s"}}}`, time.Now().UnixNano(), list[0].ID)
	resp, err := c.Post(base+"/receipts", "application/json", strings.NewReader(receipt))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("POST receipts: %d", resp.StatusCode)
	}
	return nil
}

// roleBlock5353 holds UDP 5353 without SO_REUSEADDR, as an exclusive
// responder would, until killed.
func roleBlock5353() int {
	c, err := net.ListenUDP("udp4", &net.UDPAddr{Port: 5353})
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	defer c.Close()
	fmt.Println("BOUND")
	select {}
}

// roleGet prints the body of GET $GET_URL, for endpoints that answer
// loopback only (admin/api/status).
// roleGet gets GET_URL and prints its status, Location and body. With
// GET_PIN it trusts only the certificate of that shopbridge.TLSFingerprint
// (as a register that pinned it from the TXT record would); redirects are
// not followed.
func roleGet() int {
	client := &http.Client{Timeout: 5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	if pin := os.Getenv("GET_PIN"); pin != "" {
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				if got := shopbridge.TLSFingerprint(cs.PeerCertificates[0].Raw); got != pin {
					return fmt.Errorf("certificate %s, pinned %s", got, pin)
				}
				return nil
			}}}
	}
	resp, err := client.Get(os.Getenv("GET_URL"))
	if err != nil {
		fmt.Println("ERROR", err)
		return 1
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Printf("STATUS %d LOCATION %s\n", resp.StatusCode, resp.Header.Get("Location"))
	fmt.Printf("BODY %s\n", bytes.Join(bytes.Fields(body), []byte(" ")))
	return 0
}
