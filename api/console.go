package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"html/template"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/julienschmidt/httprouter"
	"github.com/shopbridge/shopbridge"
)

// The operator console: HTML pages under /admin/ on the daemon's own
// listener, its scripts and styles embedded in the binary (no build step,
// nothing fetched from elsewhere). Pages are rendered in one language with
// the strings of web/i18n; the script fills them from the JSON endpoints of
// console_api.go.

//go:embed web
var webFS embed.FS

// ConsoleRefresh is how often the overview polls for news and the journal
// polls for new entries.
const ConsoleRefresh = 2 * time.Second

// ConsoleCSP is the Content-Security-Policy of every console answer: only
// the console's own files, no inline script or style, no framing.
const ConsoleCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// asset is an embedded file served under /admin/assets/.
type asset struct {
	body  []byte
	ctype string
	hash  string // of the content: the URL's ?v= and the ETag
}

// assets, pages and languages are built at first use, not at init: every
// shopbridge command (version, status, journal) would pay for them.
var assets = sync.OnceValue(func() map[string]*asset {
	out := map[string]*asset{}
	for _, name := range []string{"app.js", "style.css"} {
		b, err := webFS.ReadFile("web/" + name)
		if err != nil {
			panic("console asset " + name + ": " + err.Error())
		}
		sum := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(name))
		switch path.Ext(name) { // the OS mime table may lack these or differ
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".css":
			ctype = "text/css; charset=utf-8"
		}
		out[name] = &asset{body: b, ctype: ctype, hash: hex.EncodeToString(sum[:6])}
	}
	return out
})

// pages are the console's templates, one set per page.
var pages = sync.OnceValue(func() map[string]*template.Template {
	out := map[string]*template.Template{}
	for _, name := range []string{"overview", "journal", "bills", "login", "message"} {
		out[name] = template.Must(template.New(name).ParseFS(webFS, "web/layout.html", "web/"+name+".html"))
	}
	return out
})

// journalKinds are the kinds the journal filter offers: the terminal calls
// (api) and the upstream's (sync).
var journalKinds = []string{"HELLO", "LIST", "BILL", "RECEIPT",
	"UPSTREAM_HELLO", "UPSTREAM_LIST", "UPSTREAM_BILL", "UPSTREAM_RECEIPT", "UPSTREAM_STATE"}

var billStates = []string{"all", "open", "settled", "paid_twice"}

// pageData is what a page template sees.
type pageData struct {
	*language
	Lang      string
	Page      string
	Title     string // a string key
	Nav       bool
	CSRF      string
	Strings   string // the language's table as JSON, for the script
	RefreshMS int64
	Timezone  string
	Today     string
	Session   bool
	TokenSet  bool
	Error     string // a string key
	Next      string
	Kinds     []string
	States    []string
	query     map[string]string
}

// Asset is the URL of an embedded file, with its content hash.
func (p *pageData) Asset(name string) string {
	a := assets()[name]
	if a == nil {
		return "/admin/assets/" + name
	}
	return "/admin/assets/" + name + "?v=" + a.hash
}

// Q is a query parameter of the page's URL, to prefill a filter.
func (p *pageData) Q(name string) string { return p.query[name] }

func (s *Server) consoleRoutes(r *httprouter.Router) {
	r.GET("/admin", func(w http.ResponseWriter, req *http.Request, _ httprouter.Params) {
		http.Redirect(w, req, "/admin/", http.StatusMovedPermanently)
	})
	r.GET("/admin/", s.consolePage("overview", "overview.title"))
	r.GET("/admin/journal", s.consolePage("journal", "journal.title"))
	r.GET("/admin/bills", s.consolePage("bills", "bills.title"))
	r.GET("/admin/login", s.loginForm)
	r.POST("/admin/login", s.login)
	r.POST("/admin/logout", s.logout)
	r.GET("/admin/assets/:name", s.asset)

	r.GET("/admin/api/overview", s.admin(s.consoleOverview))
	r.GET("/admin/api/journal/page", s.admin(s.consoleJournalPage))
	r.GET("/admin/api/journal/entry/:seq", s.admin(s.consoleJournalEntry))
	r.GET("/admin/api/bills", s.admin(s.consoleBills))
	r.GET("/admin/api/bill/:id", s.admin(s.consoleBillDetail))
}

// consoleHeaders are set on every console answer.
func consoleHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ConsoleCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// same-origin, not no-referrer: under no-referrer a browser sends
	// "Origin: null" with the console's own form posts (login, logout).
	h.Set("Referrer-Policy", "same-origin")
}

// pageLanguage picks the language and remembers a switch in a cookie.
func pageLanguage(w http.ResponseWriter, r *http.Request) *language {
	code, fromQuery := pickLanguage(r)
	if fromQuery {
		http.SetCookie(w, &http.Cookie{Name: langCookie, Value: code, Path: "/admin", MaxAge: 365 * 24 * 3600,
			SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	}
	return languages()[code]
}

func (s *Server) render(w http.ResponseWriter, status int, name string, d *pageData) {
	if d.Lang == "" {
		d.Lang = d.language.code
	}
	var buf bytes.Buffer
	if err := pages()[name].ExecuteTemplate(&buf, "layout", d); err != nil {
		s.logger.Error("console page failed", "page", name, "err", err)
		http.Error(w, "console page failed", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// refuse answers a page request the access rule turns away: to the login
// form when a token would let the client in, else a page saying why.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, lang *language, err error) {
	if shopbridge.ErrorKind(err) == shopbridge.EUNAUTHORIZED {
		http.Redirect(w, r, "/admin/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
		return
	}
	msg := "forbidden.loopback"
	if shopbridge.ErrorSubject(err) == "Host" {
		msg = "forbidden.host"
	}
	s.render(w, http.StatusForbidden, "message", &pageData{language: lang, Page: "message", Title: "forbidden.title", Error: msg})
}

func (s *Server) consolePage(name, title string) httprouter.Handle {
	return func(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
		consoleHeaders(w.Header())
		lang := pageLanguage(w, r)
		acc, err := s.auth.authorize(r)
		if err != nil {
			s.refuse(w, r, lang, err)
			return
		}
		q := map[string]string{}
		for k, v := range r.URL.Query() {
			if len(v) > 0 && len(v[0]) <= 200 {
				q[k] = v[0]
			}
		}
		today := s.cfg.Now().In(s.cfg.Timezone).Format("2006-01-02")
		if name == "bills" && q["date"] == "" && q["q"] == "" {
			q["date"] = today
		}
		s.render(w, http.StatusOK, name, &pageData{language: lang, Page: name, Title: title, Nav: true, CSRF: acc.csrf,
			Strings: lang.json, RefreshMS: ConsoleRefresh.Milliseconds(), Timezone: zoneName(s.cfg.Timezone, s.cfg.Now()), Today: today,
			Session: acc.via == viaSession, TokenSet: s.cfg.AdminToken != "", Kinds: journalKinds, States: billStates, query: q})
	}
}

// safeNext is where a login goes on: a console page, never another site.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/admin/") || strings.ContainsAny(next, "\\\r\n") || strings.HasPrefix(next, "/admin//") ||
		strings.HasPrefix(next, "/admin/login") || strings.HasPrefix(next, "/admin/api/") || strings.Contains(next, "/../") {
		return "/admin/"
	}
	return next
}

func (s *Server) loginPage(w http.ResponseWriter, r *http.Request, status int, lang *language, errKey, next string) {
	s.render(w, status, "login", &pageData{language: lang, Page: "login", Title: "login.title", CSRF: s.auth.csrfToken("login"),
		TokenSet: s.cfg.AdminToken != "", Error: errKey, Next: safeNext(next)})
}

func (s *Server) loginForm(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	consoleHeaders(w.Header())
	lang := pageLanguage(w, r)
	status := http.StatusOK
	if s.cfg.AdminToken == "" {
		status = http.StatusNotFound
	}
	s.loginPage(w, r, status, lang, "", r.URL.Query().Get("next"))
}

// login checks the admin token from the form's body (never the URL) and
// starts a session.
func (s *Server) login(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	consoleHeaders(w.Header())
	lang := pageLanguage(w, r)
	if s.cfg.AdminToken == "" {
		s.loginPage(w, r, http.StatusNotFound, lang, "", "")
		return
	}
	if err := sameOrigin(r); err != nil {
		s.fail(w, err)
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		s.fail(w, shopbridge.Errorf(shopbridge.EINVALID, "body", "the login form could not be read: %v", err))
		return
	}
	next := r.PostForm.Get("next")
	if !tokenOK(r.PostForm.Get("csrf"), s.auth.csrfToken("login")) {
		s.fail(w, shopbridge.Errorf(shopbridge.EFORBIDDEN, "csrf", "missing or wrong CSRF token (reload the login page)"))
		return
	}
	addr := clientAddr(r).String()
	if s.auth.locked(addr) {
		s.logger.Warn("console login refused: too many failures", "client", addr)
		s.loginPage(w, r, http.StatusTooManyRequests, lang, "login.locked", next)
		return
	}
	if !tokenOK(r.PostForm.Get("token"), s.cfg.AdminToken) {
		s.auth.failed(addr)
		s.logger.Warn("console login failed", "client", addr)
		s.loginPage(w, r, http.StatusUnauthorized, lang, "login.error", next)
		return
	}
	s.auth.succeeded(addr)
	v, _ := s.auth.newSession()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: "/admin", MaxAge: int(SessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	s.logger.Info("console login", "client", addr)
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ httprouter.Params) {
	consoleHeaders(w.Header())
	acc, err := s.auth.authorize(r)
	if err == nil {
		r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
		_ = r.ParseForm()
		err = s.auth.checkUnsafe(r, acc, r.PostForm.Get("csrf"))
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	if acc.via == viaSession {
		s.auth.endSession(acc.session)
		s.logger.Info("console logout", "client", clientAddr(r).String())
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/admin", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
}

// asset serves an embedded file. The pages name it with its content hash,
// so a matching ?v= may be cached for good; the ETag covers the rest.
// The login page needs the stylesheet, so with an admin token set the
// assets are served to anyone who may reach the login form; they hold no
// data.
func (s *Server) asset(w http.ResponseWriter, r *http.Request, ps httprouter.Params) {
	consoleHeaders(w.Header())
	if _, err := s.auth.authorize(r); err != nil && s.cfg.AdminToken == "" {
		s.fail(w, err)
		return
	}
	a := assets()[ps.ByName("name")]
	if a == nil {
		s.fail(w, shopbridge.Errorf(shopbridge.ENOTFOUND, "name", "no console asset %q", ps.ByName("name")))
		return
	}
	h := w.Header()
	etag := `"` + a.hash + `"`
	h.Set("ETag", etag)
	if r.URL.Query().Get("v") == a.hash {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	if inm := r.Header.Get("If-None-Match"); inm != "" && strings.Contains(inm, etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Type", a.ctype)
	w.Write(a.body)
}
