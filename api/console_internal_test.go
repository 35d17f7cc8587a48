package api

import (
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestConsoleStringTables(t *testing.T) {
	ru, en := languages()["ru"], languages()["en"]
	if ru == nil || en == nil {
		t.Fatal("the ru and en tables are not loaded")
	}
	if strings.Join(ru.keys(), ",") != strings.Join(en.keys(), ",") {
		for _, k := range ru.keys() {
			if _, ok := en.strings[k]; !ok {
				t.Errorf("key %s is in ru.json only", k)
			}
		}
		for _, k := range en.keys() {
			if _, ok := ru.strings[k]; !ok {
				t.Errorf("key %s is in en.json only", k)
			}
		}
	}
	for _, l := range []*language{ru, en} {
		for k, v := range l.strings {
			if strings.TrimSpace(v) == "" && k != "col.id" {
				t.Errorf("%s: %s is empty", l.code, k)
			}
		}
	}
	// Every literal key the script asks for exists.
	js, err := webFS.ReadFile("web/app.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`\bt\('([a-z_]+\.[a-z_]+)'`).FindAllStringSubmatch(string(js), -1) {
		if _, ok := ru.strings[m[1]]; !ok {
			t.Errorf("app.js asks for %s, which the tables lack", m[1])
		}
	}
	// And the keys it builds: upstream.STATE, state.STATE, receipt.STATE.
	for _, k := range []string{"upstream.online", "upstream.offline", "upstream.none", "state.open", "state.settled",
		"state.paid_twice", "state.all", "receipt.queued", "receipt.delivered", "receipt.parked", "journal.store", "journal.upstream"} {
		if _, ok := ru.strings[k]; !ok {
			t.Errorf("the tables lack %s", k)
		}
	}
}

func TestPickLanguage(t *testing.T) {
	for _, c := range []struct {
		name, query, cookie, accept string
		want                        string
		fromQuery                   bool
	}{
		{name: "nothing: Russian", want: "ru"},
		{name: "a browser in English", accept: "en-US,en;q=0.9", want: "en"},
		{name: "a browser in Russian", accept: "ru-RU,ru;q=0.9,en-US;q=0.8,en;q=0.7", want: "ru"},
		{name: "English preferred by q", accept: "ru;q=0.5, en;q=0.8", want: "en"},
		{name: "neither language", accept: "de-DE,fr;q=0.8", want: "ru"},
		{name: "English refused with q=0", accept: "en;q=0, de", want: "ru"},
		{name: "garbage", accept: ";;,=,q=x", want: "ru"},
		{name: "the cookie beats the browser", cookie: "en", accept: "ru", want: "en"},
		{name: "an unknown cookie is ignored", cookie: "xx", accept: "en", want: "en"},
		{name: "the switch beats both", query: "lang=ru", cookie: "en", accept: "en", want: "ru", fromQuery: true},
		{name: "an unknown switch is ignored", query: "lang=de", accept: "en", want: "en"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/admin/?"+c.query, nil)
			if c.cookie != "" {
				r.Header.Set("Cookie", langCookie+"="+c.cookie)
			}
			if c.accept != "" {
				r.Header.Set("Accept-Language", c.accept)
			}
			got, fromQuery := pickLanguage(r)
			if got != c.want || fromQuery != c.fromQuery {
				t.Errorf("pickLanguage = %s, %v; want %s, %v", got, fromQuery, c.want, c.fromQuery)
			}
		})
	}
}

func TestPreviewAndPretty(t *testing.T) {
	if got := preview([]byte("{\n  \"id\": 49040,\n\t\"summ\": 4604.04\n}")); got != `{ "id": 49040, "summ": 4604.04 }` {
		t.Errorf("preview = %q", got)
	}
	long := preview([]byte(strings.Repeat("Ж", 500)))
	if n := len([]rune(long)); n != previewRunes+1 || !strings.HasSuffix(long, "…") {
		t.Errorf("preview of 500 runes has %d runes: %q", n, long)
	}
	if got := preview([]byte("a\xffb")); got != "a\uFFFDb" {
		t.Errorf("preview of invalid UTF-8 = %q", got)
	}
	// Numbers keep their text: nothing goes through float64.
	in := `{"id":123456789012345678901,"summ":4604.04,"n":"Илья \"Papa\""}`
	want := "{\n  \"id\": 123456789012345678901,\n  \"summ\": 4604.04,\n  \"n\": \"Илья \\\"Papa\\\"\"\n}"
	if got := pretty([]byte(in)); got != want {
		t.Errorf("pretty = %s", got)
	}
	if got := pretty([]byte("<html>Bad Gateway</html>")); got != "<html>Bad Gateway</html>" {
		t.Errorf("pretty of HTML = %q", got)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/admin/journal?kind=BILL": "/admin/journal?kind=BILL", "": "/admin/", "https://evil.example/": "/admin/",
		"//evil.example/admin/": "/admin/", "/admin//evil.example": "/admin/", "/admin/\\evil": "/admin/",
		"/admin/login": "/admin/", "/admin/api/backup": "/admin/", "/admin/../metrics": "/admin/", "/metrics": "/admin/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLocalHost(t *testing.T) {
	a := newConsoleAuth("", nil)
	for host, want := range map[string]bool{
		"127.0.0.1:8480": true, "127.0.0.1": true, "[::1]:8480": true, "localhost:8480": true, "LOCALHOST": true,
		"shop.localhost:1": true, "127.9.9.9:80": true, "evil.example:8480": false, "192.168.1.10:8480": false,
		"evil.example": false, "": false, "127.0.0.1.evil.example": false,
	} {
		if got := a.localHost(host); got != want {
			t.Errorf("localHost(%q) = %v, want %v", host, got, want)
		}
	}
}
