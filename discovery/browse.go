package discovery

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grandcat/zeroconf"
)

// Instance is one daemon found by Browse, checked with hello.
type Instance struct {
	Name     string            `json:"name"`
	Host     string            `json:"host"`
	Addrs    []net.IP          `json:"addrs"`
	Port     int               `json:"port"`
	TXT      map[string]string `json:"txt"`
	URL      string            `json:"url,omitempty"` // base URL that answered hello, e.g. http://10.0.0.5:8480/api/v2
	Protocol string            `json:"protocol,omitempty"`
	System   string            `json:"system"`
	Err      string            `json:"error,omitempty"` // why hello failed on every address
}

// helloTimeout bounds one hello call to one address.
var helloTimeout = 2 * time.Second

// Browse looks for _shopbridge._tcp instances for timeout on the named
// interfaces (empty: the automatic LAN choice), then calls hello on each,
// trying every offered address. Instances come back sorted by name.
func Browse(ctx context.Context, timeout time.Duration, ifaces []string) ([]Instance, error) {
	if timeout <= 0 {
		return nil, fmt.Errorf("browse: timeout %v must be positive", timeout)
	}
	nifs, err := interfacesByName(ifaces)
	if err != nil {
		return nil, fmt.Errorf("browse: %w", err)
	}
	res, err := zeroconf.NewResolver(zeroconf.SelectIfaces(nifs))
	if err != nil {
		// No IPv6 on any interface makes the library give up entirely.
		res, err = zeroconf.NewResolver(zeroconf.SelectIfaces(nifs), zeroconf.SelectIPTraffic(zeroconf.IPv4))
	}
	if err != nil {
		return nil, fmt.Errorf("browse on %s: %w: %w", ifaceNames(nifs), errPort5353, err)
	}
	bctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	entries := make(chan *zeroconf.ServiceEntry)
	if err := res.Browse(bctx, serviceType, domain, entries); err != nil {
		return nil, fmt.Errorf("browse for %s: %w", serviceType, err)
	}
	found := map[string]*Instance{}
	for e := range entries { // closed by the library when bctx ends
		name := unescapeLabel(e.Instance)
		in := found[name]
		if in == nil {
			in = &Instance{Name: name, Host: unescapeLabel(strings.TrimSuffix(e.HostName, ".")), Port: e.Port, TXT: parseTXT(e.Text)}
			found[name] = in
		}
		for _, ip := range append(append([]net.IP{}, e.AddrIPv4...), e.AddrIPv6...) {
			if !slices.ContainsFunc(in.Addrs, ip.Equal) {
				in.Addrs = append(in.Addrs, ip)
			}
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("browse: %w", err)
	}
	out := make([]Instance, 0, len(found))
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, in := range found {
		wg.Add(1)
		go func(in Instance) {
			defer wg.Done()
			hello(ctx, &in, nifs)
			mu.Lock()
			out = append(out, in)
			mu.Unlock()
		}(*in)
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// hello tries the instance's addresses, IPv4 first, until one answers.
func hello(ctx context.Context, in *Instance, nifs []net.Interface) {
	path := in.TXT["path"]
	if path == "" || !strings.HasPrefix(path, "/") {
		path = "/api/v2"
	}
	addrs := append([]net.IP(nil), in.Addrs...)
	sort.SliceStable(addrs, func(i, j int) bool { return addrs[i].To4() != nil && addrs[j].To4() == nil })
	var errs []string
	client := &http.Client{Timeout: helloTimeout}
	for _, ip := range addrs {
		host := ip.String()
		if ip.To4() == nil && ip.IsLinkLocalUnicast() {
			if len(nifs) != 1 {
				errs = append(errs, host+": link-local address without a known interface")
				continue
			}
			host += "%" + nifs[0].Name
		}
		base := "http://" + net.JoinHostPort(host, strconv.Itoa(in.Port)) + path
		h, err := getHello(ctx, client, base)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		in.URL, in.Protocol, in.System, in.Err = base, h.Protocol, h.System, ""
		return
	}
	if len(addrs) == 0 {
		errs = append(errs, "no address offered")
	}
	in.Err = strings.Join(errs, "; ")
}

type helloAnswer struct {
	System   string `json:"system"`
	Protocol string `json:"protocol"`
}

func getHello(ctx context.Context, client *http.Client, base string) (helloAnswer, error) {
	var h helloAnswer
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/hello", nil)
	if err != nil {
		return h, fmt.Errorf("hello %s: %w", base, err)
	}
	resp, err := client.Do(req)
	if err != nil {
		return h, fmt.Errorf("hello: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return h, fmt.Errorf("hello %s: read answer: %w", base, err)
	}
	if resp.StatusCode != http.StatusOK {
		return h, fmt.Errorf("hello %s: status %d", base, resp.StatusCode)
	}
	if err := json.Unmarshal(body, &h); err != nil {
		return h, fmt.Errorf("hello %s: answer is not hello JSON: %w", base, err)
	}
	if h.Protocol == "" {
		return h, fmt.Errorf("hello %s: answer has no protocol", base)
	}
	return h, nil
}
