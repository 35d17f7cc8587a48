package discovery

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

const (
	serviceType = "_shopbridge._tcp"
	domain      = "local."
	maxLabel    = 63 // bytes in one DNS label
)

// escapeLabel writes a DNS label in the presentation format the DNS library
// uses for names it unpacks from the wire (RFC 1035 §5.1 escapes), so an
// instance such as "shopbridge on Касса (2)" compares equal to the names in
// queries. Without it the responder would not recognise lookups of any
// instance name with a space, a parenthesis or a non-ASCII letter.
func escapeLabel(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '.' || c == ' ' || c == '\'' || c == '@' || c == ';' || c == '(' || c == ')' || c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < ' ' || c > '~':
			fmt.Fprintf(&b, "\\%03d", c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// unescapeLabel undoes escapeLabel for one label (or a longer name whose dots
// are not escaped: it only removes escapes).
func unescapeLabel(s string) string {
	if !strings.Contains(s, "\\") {
		return s
	}
	var b []byte
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '\\' || i+1 >= len(s) {
			b = append(b, c)
			continue
		}
		if i+3 < len(s) && isDigit(s[i+1]) && isDigit(s[i+2]) && isDigit(s[i+3]) {
			n, _ := strconv.Atoi(s[i+1 : i+4])
			if n <= 255 {
				b = append(b, byte(n))
				i += 3
				continue
			}
		}
		b = append(b, s[i+1])
		i++
	}
	return string(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// splitInstance splits a service instance name as unpacked from the wire,
// "Escaped\ Label._shopbridge._tcp.local.", into its plain instance label.
// ok is false when the name is not of our service type.
func splitInstance(fqdn string) (instance string, ok bool) {
	suffix := "." + serviceType + "." + domain
	if !strings.HasSuffix(strings.ToLower(fqdn), suffix) {
		return "", false
	}
	return unescapeLabel(fqdn[:len(fqdn)-len(suffix)]), true
}

// truncateLabel cuts s to at most max bytes without splitting a UTF-8 rune.
func truncateLabel(s string, max int) string {
	if len(s) <= max {
		return s
	}
	s = s[:max]
	for len(s) > 0 && !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return strings.TrimRight(s, " ")
}

// candidateName is the n-th instance name to try: the configured name, then
// "name (2)", "name (3)", ... as Bonjour does, always fitting one label.
func candidateName(base string, n int) string {
	if n <= 1 {
		return truncateLabel(base, maxLabel)
	}
	suffix := fmt.Sprintf(" (%d)", n)
	return truncateLabel(base, maxLabel-len(suffix)) + suffix
}

// hostLabel derives the daemon's own host name label from the store's
// instance id: shop PCs are often cloned and share an OS host name, but each
// store has its own id, so registers never mix up two daemons' addresses.
func hostLabel(instanceID string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(instanceID) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	id := strings.TrimRight(b.String(), "-")
	const prefix = "shopbridge-"
	if len(prefix)+len(id) > maxLabel {
		id = strings.TrimRight(id[:maxLabel-len(prefix)], "-")
	}
	return prefix + id
}

// txtRecords builds the TXT of SPEC §5.
func txtRecords(cfg Config) []string {
	txt := []string{"proto=" + protocolVersion, "path=/api/v2", "id=" + cfg.InstanceID, "ver=" + cfg.Version}
	if cfg.UpstreamID != "" {
		txt = append(txt, "up="+cfg.UpstreamID) // duplicates.go
	}
	if cfg.HTTPSPort != 0 {
		txt = append(txt, "https_port="+strconv.Itoa(cfg.HTTPSPort), "tls_sha256="+cfg.TLSFingerprint)
	}
	return txt
}

// parseTXT turns TXT strings into a map; a key without "=" maps to "".
func parseTXT(txt []string) map[string]string {
	m := make(map[string]string, len(txt))
	for _, t := range txt {
		k, v, _ := strings.Cut(t, "=")
		if k == "" {
			continue
		}
		k = strings.ToLower(k)
		if _, dup := m[k]; dup {
			continue // RFC 6763 §6.4: only the first occurrence counts
		}
		m[k] = v
	}
	return m
}

// HostNames are the names this daemon goes by on the LAN: the mDNS host
// name it announces (from the instance id) and the instance name as a
// .local name ("Shop 1" gives shop-1.local), for the HTTP layer's check
// of operator requests' Host.
func HostNames(instance, instanceID string) []string {
	names := []string{hostLabel(instanceID) + ".local"}
	var b strings.Builder
	for _, r := range strings.ToLower(instance) {
		switch {
		case (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') || r == '-':
			b.WriteRune(r)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	if slug := strings.Trim(b.String(), "-"); slug != "" {
		names = append(names, slug+".local")
	}
	return names
}
