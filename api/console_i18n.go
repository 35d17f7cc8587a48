package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The console's strings: one table per language in web/i18n/LANG.json,
// the same keys in each (a test holds them to it). Pages are rendered in
// one language; the scripts get the same table in <body data-i18n>.

// consoleLangs are the console's languages, the default first.
var consoleLangs = []string{"ru", "en"}

// langCookie remembers the language switch.
const langCookie = "shopbridge_lang"

type language struct {
	code    string
	strings map[string]string
	json    string // the table as JSON, for the scripts
}

var languages = sync.OnceValue(func() map[string]*language {
	out := map[string]*language{}
	for _, code := range consoleLangs {
		b, err := webFS.ReadFile("web/i18n/" + code + ".json")
		if err != nil {
			panic(fmt.Sprintf("console strings %s: %v", code, err))
		}
		l := &language{code: code}
		if err := json.Unmarshal(b, &l.strings); err != nil {
			panic(fmt.Sprintf("console strings web/i18n/%s.json: %v", code, err))
		}
		compact, _ := json.Marshal(l.strings)
		l.json = string(compact)
		out[code] = l
	}
	return out
})

// T is the string for key, or the key itself marked as missing.
func (l *language) T(key string) string {
	if s, ok := l.strings[key]; ok {
		return s
	}
	return "??" + key
}

// keys are the table's keys, sorted.
func (l *language) keys() []string {
	out := make([]string, 0, len(l.strings))
	for k := range l.strings {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// pickLanguage chooses the page's language: ?lang= (the switch, which the
// cookie then remembers), the cookie, the browser's Accept-Language, else
// Russian. fromQuery tells the caller to set the cookie.
func pickLanguage(r *http.Request) (code string, fromQuery bool) {
	if q := r.URL.Query().Get("lang"); languages()[q] != nil {
		return q, true
	}
	if c, err := r.Cookie(langCookie); err == nil && languages()[c.Value] != nil {
		return c.Value, false
	}
	return acceptLanguage(r.Header.Get("Accept-Language")), false
}

// acceptLanguage picks the console language the header prefers most (by
// q, then order); the default when it names none of them.
func acceptLanguage(h string) string {
	best, bestQ := consoleLangs[0], 0.0
	for _, part := range strings.Split(h, ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.TrimSpace(k) == "q" {
				f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
				if err != nil || f < 0 || f > 1 {
					f = 0
				}
				q = f
			}
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if languages()[primary] != nil && q > bestQ {
			best, bestQ = primary, q
		}
	}
	return best
}
