package api

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"mime"
	"net"
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
	for _, name := range []string{"overview", "journal", "bills", "outbox", "help", "login", "message"} {
		out[name] = template.Must(template.New(name).ParseFS(webFS, "web/layout.html", "web/"+name+".html"))
	}
	return out
})

// journalKinds are the kinds the journal filter offers: the terminal calls
// (api) and the upstream's (sync).
var journalKinds = []string{shopbridge.KindHello, shopbridge.KindList, shopbridge.KindBill, shopbridge.KindReceipt,
	shopbridge.KindUpstreamHello, shopbridge.KindUpstreamList, shopbridge.KindUpstreamBill, shopbridge.KindUpstreamReceipt, shopbridge.KindUpstreamState}

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
	Error     string            // a string key
	Vars      map[string]string // fill the {name} placeholders of Error and Hint
	Hint      string            // a string key: what to change
	Detail    string            // the daemon's own reason, in English
	Status    int               // the HTTP status of a message page
	Next      string
	Kinds     []string
	States    []string
	Guide     string // the installer's guide, on the help page
	HTTPS     *shopbridge.HTTPSStatus
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

// Msg is the string for key with the page's Vars filled in.
func (p *pageData) Msg(key string) string {
	out := p.T(key)
	for k, v := range p.Vars {
		out = strings.ReplaceAll(out, "{"+k+"}", v)
	}
	return out
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
	r.GET("/admin/outbox", s.consolePage("outbox", "outbox.title"))
	r.GET("/admin/help", s.consolePage("help", "help.title"))
	r.GET("/admin/login", s.loginForm)
	r.POST("/admin/login", s.form(s.login))
	r.POST("/admin/logout", s.form(s.logout))
	r.GET("/admin/assets/:name", s.answer(s.asset))

	r.GET("/admin/api/overview", s.admin(s.consoleOverview))
	r.GET("/admin/api/journal/page", s.admin(s.consoleJournalPage))
	r.GET("/admin/api/journal/entry/:seq", s.admin(s.consoleJournalEntry))
	r.GET("/admin/api/bills", s.admin(s.consoleBills))
	r.GET("/admin/api/console/outbox", s.admin(s.consoleOutboxPage))
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
	s.refusePage(w, r, lang, err)
}

// wantsHTML reports whether a request is a browser's navigation (it takes
// HTML): such a request gets a refusal as a page in the console's language;
// programs keep the Evotor JSON body.
func wantsHTML(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/html")
}

// failAdmin answers a refused or failed request under /admin/ (or another
// operator path): a page saying why and what to change for a browser,
// the Evotor error body for a program.
func (s *Server) failAdmin(w http.ResponseWriter, r *http.Request, err error) {
	if !wantsHTML(r) {
		s.fail(w, err)
		return
	}
	consoleHeaders(w.Header())
	lang := languages()[func() string { c, _ := pickLanguage(r); return c }()]
	if shopbridge.ErrorKind(err) == shopbridge.EUNAUTHORIZED && safeMethod(r.Method) {
		http.Redirect(w, r, "/admin/login?next="+url.QueryEscape(safeNext(r.URL.RequestURI())), http.StatusSeeOther)
		return
	}
	s.refusePage(w, r, lang, err)
}

// refusePage renders the message page for err: the status and Evotor
// code of errorStatus, a line saying why and a hint saying what to change.
func (s *Server) refusePage(w http.ResponseWriter, r *http.Request, lang *language, err error) {
	status, code := errorStatus(err)
	d := &pageData{language: lang, Page: "message", Title: "refused.title", Status: status,
		Vars: map[string]string{"addr": clientAddr(r).String(), "allow": s.allowList(), "path": r.URL.Path, "port": localPort(r)}}
	var e *shopbridge.Error
	if errors.As(err, &e) && status != http.StatusInternalServerError {
		d.Detail = fmt.Sprintf("%d %s (code %d): %s", status, http.StatusText(status), code, e.Error())
	}
	subject := shopbridge.ErrorSubject(err)
	switch kind := shopbridge.ErrorKind(err); {
	case kind == shopbridge.EFORBIDDEN && subject == "client" && !s.allowed(clientAddr(r)):
		d.Title, d.Error, d.Hint = "forbidden.title", "refused.allow", "refused.allow_hint"
	case kind == shopbridge.EFORBIDDEN && subject == "client":
		d.Title, d.Error, d.Hint = "forbidden.title", "forbidden.loopback", "refused.loopback_hint"
	case kind == shopbridge.EFORBIDDEN && subject == "Host":
		d.Title, d.Error = "forbidden.title", "forbidden.host"
	case kind == shopbridge.EFORBIDDEN && subject == "scheme" && s.cfg.HTTPS != nil:
		d.Title, d.Error, d.Hint = "forbidden.title", "refused.https", "refused.https_hint"
		d.Vars["url"], d.Vars["fingerprint"] = s.httpsURL(r, "/admin/"), s.cfg.HTTPS.Fingerprint
	case kind == shopbridge.EFORBIDDEN:
		d.Title, d.Error, d.Hint = "forbidden.title", "refused.csrf", "refused.csrf_hint"
	case kind == shopbridge.EUNAUTHORIZED:
		d.Error, d.Hint = "refused.login", "refused.login_hint"
	case kind == shopbridge.ENOTFOUND:
		d.Title, d.Error, d.Hint = "refused.notfound_title", "refused.notfound", "refused.home_hint"
	case kind == shopbridge.EMETHOD:
		d.Error, d.Hint = "refused.method", "refused.home_hint"
	case kind == shopbridge.EUNAVAILABLE:
		d.Error, d.Hint = "refused.unavailable", "refused.home_hint"
	default:
		d.Error, d.Hint = "refused.other", "refused.home_hint"
		if status == http.StatusInternalServerError {
			s.logger.Error("request failed", "err", err)
		}
	}
	s.render(w, status, "message", d)
}

// localPort is the port the request came in on (8480 when unknown).
func localPort(r *http.Request) string {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if _, p, err := net.SplitHostPort(a.String()); err == nil {
			return p
		}
	}
	return "8480"
}

// allowList is --allow as the refusal page prints it.
func (s *Server) allowList() string {
	parts := make([]string, len(s.cfg.Allow))
	for i, p := range s.cfg.Allow {
		parts[i] = p.String()
	}
	return strings.Join(parts, ", ")
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
		// The bills page opens on what a register's list answers now
		// (the open bills); a date or a search given in the URL wins.
		if name == "bills" && q["date"] == "" && q["q"] == "" && q["view"] != "date" {
			q["view"] = "open"
		}
		d := &pageData{language: lang, Page: name, Title: title, Nav: true, CSRF: acc.csrf,
			Strings: lang.json, RefreshMS: ConsoleRefresh.Milliseconds(), Timezone: zoneName(s.cfg.Timezone, s.cfg.Now()), Today: today,
			Session: acc.via == viaSession, TokenSet: s.cfg.AdminToken != "", Kinds: journalKinds, States: billStates, query: q,
			HTTPS: s.cfg.HTTPS}
		if name == "help" {
			if s.cfg.HTTPS != nil {
				d.Vars = map[string]string{"url": s.consoleHTTPSURL(r)}
			}
			d.Guide = shopbridge.GuideEN
			if lang.code == "ru" {
				d.Guide = shopbridge.GuideRU
			}
		}
		s.render(w, http.StatusOK, name, d)
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
func (s *Server) login(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	consoleHeaders(w.Header())
	lang := pageLanguage(w, r)
	if s.cfg.AdminToken == "" {
		s.loginPage(w, r, http.StatusNotFound, lang, "", "")
		return nil
	}
	if err := sameOrigin(r); err != nil {
		return err
	}
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		return shopbridge.Errorf(shopbridge.EINVALID, "body", "the login form could not be read: %v", err)
	}
	next := r.PostForm.Get("next")
	if !tokenOK(r.PostForm.Get("csrf"), s.auth.csrfToken("login")) {
		return shopbridge.Errorf(shopbridge.EFORBIDDEN, "csrf", "missing or wrong CSRF token (reload the login page)")
	}
	addr := clientAddr(r).String()
	if s.auth.locked(addr) {
		s.logger.Warn("console login refused: too many failures", "client", addr)
		s.loginPage(w, r, http.StatusTooManyRequests, lang, "login.locked", next)
		return nil
	}
	if !tokenOK(r.PostForm.Get("token"), s.cfg.AdminToken) {
		s.auth.failed(addr)
		s.logger.Warn("console login failed", "client", addr)
		s.loginPage(w, r, http.StatusUnauthorized, lang, "login.error", next)
		return nil
	}
	s.auth.succeeded(addr)
	v, _ := s.auth.newSession()
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: v, Path: "/admin", MaxAge: int(SessionTTL.Seconds()),
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	s.logger.Info("console login", "client", addr)
	http.Redirect(w, r, safeNext(next), http.StatusSeeOther)
	return nil
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request, _ httprouter.Params) error {
	consoleHeaders(w.Header())
	acc, err := s.auth.authorize(r)
	if err == nil {
		r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
		_ = r.ParseForm()
		err = s.auth.checkUnsafe(r, acc, r.PostForm.Get("csrf"))
	}
	if err != nil {
		return err
	}
	if acc.via == viaSession {
		s.auth.endSession(acc.session)
		s.logger.Info("console logout", "client", clientAddr(r).String())
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/admin", MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
	http.Redirect(w, r, "/admin/login", http.StatusSeeOther)
	return nil
}

// asset serves an embedded file. The pages name it with its content hash,
// so a matching ?v= may be cached for good; the ETag covers the rest.
// The login page needs the stylesheet, so with an admin token set the
// assets are served to anyone who may reach the login form; they hold no
// data.
func (s *Server) asset(w http.ResponseWriter, r *http.Request, ps httprouter.Params) error {
	consoleHeaders(w.Header())
	if _, err := s.auth.authorize(r); err != nil && s.cfg.AdminToken == "" {
		return err
	}
	a := assets()[ps.ByName("name")]
	if a == nil {
		return shopbridge.Errorf(shopbridge.ENOTFOUND, "name", "no console asset %q", ps.ByName("name"))
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
		return nil
	}
	h.Set("Content-Type", a.ctype)
	w.Write(a.body)
	return nil
}
