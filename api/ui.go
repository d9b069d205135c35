package api

import (
	"bytes"
	"context"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/gate"
	"github.com/slogate/slogate/slo"
	"github.com/slogate/slogate/store"
)

// The web UI: server-rendered pages (html/template, one template file per
// page under ui/templates, all sharing layout.html) with a small script
// (ui/static/slo.js) that draws the charts with uPlot, vendored from the
// npm registry. Everything is embedded: the page fetches nothing from
// outside slogate. A panel is a template, a handler and an entry of
// uiPanels; the navigation is built from uiPanels.

//go:embed ui/templates/*.html
var uiTemplates embed.FS

//go:embed ui/static
var uiStatic embed.FS

// uiPanel is an entry of the UI's navigation.
type uiPanel struct{ Path, Title string }

// uiPanels is the navigation, in order.
var uiPanels = []uiPanel{
	{"/", "SLOs"},
	{"/ui/deploys", "Deploys"},
	{"/ui/dora", "Delivery"},
	{"/ui/overrides", "Overrides"},
}

var uiFuncs = template.FuncMap{
	"pct": func(v *float64, digits int) string {
		if v == nil {
			return "—"
		}
		return fmt.Sprintf("%.*f %%", digits, *v*100)
	},
	"pctf": func(v float64, digits int) string { return fmt.Sprintf("%.*f %%", digits, v*100) },
	"burn": func(v *float64) string {
		if v == nil {
			return "—"
		}
		return fmt.Sprintf("%.2fx", *v)
	},
	"num": func(v *float64) string {
		if v == nil {
			return "—"
		}
		if math.Abs(*v) >= 100 && math.Abs(*v) < 1e15 {
			return groupThousands(int64(math.Round(*v)))
		}
		return strconv.FormatFloat(*v, 'g', 4, 64)
	},
	// bar is the width in percent of a budget bar, in [0, 100].
	"bar": func(v *float64) string {
		if v == nil {
			return "0"
		}
		return fmt.Sprintf("%.1f", min(max(*v, 0), 1)*100)
	},
	"ts": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"tsp": func(t *time.Time) string {
		if t == nil {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"rfc3339": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	// secs and secsp write a duration in seconds readably (3h25m).
	"secs": func(s float64) string { return readableSeconds(s) },
	"secsp": func(s *float64) string {
		if s == nil {
			return "—"
		}
		return readableSeconds(*s)
	},
	"dur": func(start time.Time, end *time.Time) string {
		e := time.Now()
		if end != nil {
			e = *end
		}
		return e.Sub(start).Round(time.Second).String()
	},
	"query": func(k, v string) template.URL { return template.URL(url.Values{k: {v}}.Encode()) },
	"path":  url.PathEscape,
	"json": func(v any) (template.JS, error) {
		b, err := json.Marshal(v)
		return template.JS(b), err
	},
}

// groupThousands writes 2584000 as "2,584,000".
func groupThousands(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// uiPages are the parsed pages, by template file name.
var uiPages = func() map[string]*template.Template {
	pages := map[string]*template.Template{}
	names, err := fs.Glob(uiTemplates, "ui/templates/*.html")
	if err != nil {
		panic(err)
	}
	for _, n := range names {
		base := path.Base(n)
		if base == "layout.html" {
			continue
		}
		pages[base] = template.Must(template.New("layout.html").Funcs(uiFuncs).ParseFS(uiTemplates, "ui/templates/layout.html", n))
	}
	return pages
}()

// uiPage is what every page's template gets.
type uiPage struct {
	Title   string
	Nav     []uiPanel
	Current string
	User    string // the token name, "" when the UI is open
	Open    bool
	CSRF    string
	Can     map[string]bool // scopes held
	Data    any
}

// ui serves the pages.
type ui struct {
	d    Deps
	a    *auth
	recs Records
}

func newUI(d Deps, a *auth) *ui {
	u := &ui{d: d, a: a, recs: d.Records}
	if u.recs == nil {
		u.recs, _ = d.Store.(Records)
	}
	return u
}

type uiUserKey struct{}

// uiUser is the UI's view of who is logged in.
type uiUser struct {
	name string
	csrf string
	tok  hashedToken
	open bool
}

func (u uiUser) allows(scope string) bool { return u.open || scope == "" || u.tok.allows(scope) }

// page lets a request through with a session holding scope; without a
// session it sends the browser to the login page.
func (u *ui) page(scope string) gin.HandlerFunc {
	return func(c *gin.Context) {
		if u.a.open() {
			c.Set("uiUser", uiUser{open: true, csrf: u.a.openCSRF(), name: "anonymous"})
			withValue(c, principalKey, "anonymous")
			return
		}
		t, csrf, ok := u.a.session(c.Request)
		if !ok {
			if c.Request.Method == http.MethodGet {
				c.Redirect(http.StatusSeeOther, "/ui/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
			} else {
				u.render(c, http.StatusUnauthorized, "error.html", "Log in", "your session has ended: log in again")
			}
			c.Abort()
			return
		}
		withValue(c, principalKey, t.name)
		user := uiUser{name: t.name, csrf: csrf, tok: t}
		c.Set("uiUser", user)
		if !user.allows(scope) {
			u.render(c, http.StatusForbidden, "error.html", "Forbidden", "the token "+t.name+" lacks the scope "+scope)
			c.Abort()
		}
	}
}

// form checks what a posted form must carry: this origin and the
// session's CSRF token.
func (u *ui) form(c *gin.Context) bool {
	user := c.MustGet("uiUser").(uiUser)
	if !sameOrigin(c.Request) || subtle.ConstantTimeCompare([]byte(c.PostForm("csrf")), []byte(user.csrf)) != 1 {
		u.render(c, http.StatusForbidden, "error.html", "Forbidden", "the form did not come from this page (CSRF token or origin mismatch): reload it and try again")
		return false
	}
	return true
}

func (u *ui) render(c *gin.Context, status int, page, title string, data any) {
	p := uiPage{Title: title, Nav: uiPanels, Current: c.FullPath(), Data: data, Can: map[string]bool{}}
	if v, ok := c.Get("uiUser"); ok {
		user := v.(uiUser)
		p.User, p.Open, p.CSRF = user.name, user.open, user.csrf
		for _, s := range []string{ScopeGateRead, ScopeDeploysWrite, ScopeOverridesWrite} {
			p.Can[s] = user.allows(s)
		}
	}
	var buf bytes.Buffer
	if err := uiPages[page].Execute(&buf, p); err != nil {
		fail(c, fmt.Errorf("rendering %s: %w", page, err))
		return
	}
	h := c.Writer.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	c.Data(status, "text/html; charset=utf-8", buf.Bytes())
}

// static serves the embedded assets (the file names are fixed, so they
// are cached for an hour).
func (u *ui) static() gin.HandlerFunc {
	sub, _ := fs.Sub(uiStatic, "ui/static")
	return func(c *gin.Context) {
		name := c.Param("file")
		b, err := fs.ReadFile(sub, name)
		if err != nil || strings.HasSuffix(name, ".LICENSE") {
			fail(c, notFound("no asset "+name))
			return
		}
		ct := "application/octet-stream"
		switch path.Ext(name) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		}
		c.Header("Cache-Control", "public, max-age=3600")
		c.Header("X-Content-Type-Options", "nosniff")
		c.Data(http.StatusOK, ct, b)
	}
}

// Login.

type loginData struct {
	Next  string
	Error string
}

// localNext keeps a post-login redirect on this site.
func localNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

func (u *ui) loginForm() gin.HandlerFunc {
	return func(c *gin.Context) {
		if u.a.open() {
			c.Redirect(http.StatusSeeOther, "/")
			return
		}
		u.render(c, http.StatusOK, "login.html", "Log in", loginData{Next: localNext(c.Query("next"))})
	}
}

func (u *ui) login() gin.HandlerFunc {
	return func(c *gin.Context) {
		next := localNext(c.PostForm("next"))
		if u.a.open() {
			c.Redirect(http.StatusSeeOther, next)
			return
		}
		if !sameOrigin(c.Request) {
			u.render(c, http.StatusForbidden, "login.html", "Log in", loginData{Next: next, Error: "the form did not come from this page"})
			return
		}
		t, ok := u.a.lookup(strings.TrimSpace(c.PostForm("token")))
		if !ok {
			u.render(c, http.StatusUnauthorized, "login.html", "Log in", loginData{Next: next, Error: "the token is not valid"})
			return
		}
		http.SetCookie(c.Writer, sessionCookieFor(u.a.issueSession(t, time.Now())))
		c.Redirect(http.StatusSeeOther, next)
	}
}

func (u *ui) logout() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !u.form(c) {
			return
		}
		http.SetCookie(c.Writer, sessionCookieFor(""))
		c.Redirect(http.StatusSeeOther, "/ui/login")
	}
}

// SLO list.

type sloRow struct {
	slo.Status
	Labels map[string]string
	State  string // ok, firing, source error, no data
	// StateClass is State as a CSS class.
	StateClass string
	Firing     []string
}

type sloListData struct {
	Rows     []sloRow
	Total    int
	Services []string
	Service  string
	Label    string
	// SourceErrors are the distinct failures of sources, each said once.
	SourceErrors []string
	NoData       int
	// Origin is where the figures come from (one run measured them all):
	// said when they are the leader's or stale.
	Origin *slo.Origin
}

var (
	urlInQuotes = regexp.MustCompile(`"(https?://[^"/]+)[^"]*"`)
	dialAddr    = regexp.MustCompile(`dial tcp ([^:\s]+:\d+)`)
	notSetUp    = regexp.MustCompile(`no \w+ source is configured[^(]*`)
)

// PlainSourceError says a source's failure once and plainly, the same for
// every query that failed the same way:
// "Prometheus at http://127.0.0.1:9090: connection refused".
func PlainSourceError(source slo.SourceType, msg string) string {
	name := map[slo.SourceType]string{slo.SourcePrometheus: "Prometheus"}[source]
	if name == "" {
		name = string(source)
		if name != "" {
			name = strings.ToUpper(name[:1]) + name[1:]
		}
	}
	where := ""
	if m := urlInQuotes.FindStringSubmatch(msg); m != nil {
		where = " at " + m[1]
	} else if m := dialAddr.FindStringSubmatch(msg); m != nil {
		where = " at " + m[1]
	}
	if m := notSetUp.FindString(msg); m != "" {
		return name + ": " + strings.TrimSpace(m)
	}
	cause := msg
	for _, known := range []string{"connection refused", "no such host", "i/o timeout", "timed out", "context deadline exceeded", "certificate", "EOF"} {
		if strings.Contains(msg, known) {
			cause = known
			break
		}
	}
	if cause == msg {
		if i := strings.LastIndex(msg, ": "); i >= 0 && i+2 < len(msg) {
			cause = msg[i+2:]
		}
	}
	return name + where + ": " + cause
}

func (u *ui) objectives() *slo.Set {
	if u.d.Objectives == nil {
		return nil
	}
	return u.d.Objectives()
}

func (u *ui) sloList() gin.HandlerFunc {
	return func(c *gin.Context) {
		statuses := u.d.SLOs.Statuses(c.Request.Context(), time.Time{})
		set := u.objectives()
		data := sloListData{Service: c.Query("service"), Label: c.Query("label")}
		lk, lv, hasLabel := strings.Cut(data.Label, "=")
		services := map[string]bool{}
		seen := map[string]bool{}
		for _, s := range statuses {
			services[s.Service] = true
			if data.Origin == nil {
				data.Origin = s.Origin
			}
			row := sloRow{Status: s, State: "ok"}
			if set != nil {
				if o, ok := set.Objective(s.Name); ok {
					row.Labels = o.Labels
				}
			}
			if data.Service != "" && s.Service != data.Service {
				continue
			}
			if data.Label != "" {
				if !hasLabel {
					if _, ok := row.Labels[data.Label]; !ok {
						continue
					}
				} else if row.Labels[strings.TrimSpace(lk)] != strings.TrimSpace(lv) {
					continue
				}
			}
			for _, a := range s.Alerts {
				if a.Firing {
					row.Firing = append(row.Firing, fmt.Sprintf("%s %s/%s ≥%gx", a.Severity, a.LongWindow, a.ShortWindow, a.Factor))
				}
			}
			if len(row.Firing) > 0 {
				row.State = "firing"
			}
			for _, e := range s.Errors {
				if e.NoData {
					if row.State == "ok" {
						row.State = "no data"
					}
					continue
				}
				row.State = "source error"
				msg := PlainSourceError(s.Source, e.Error)
				if !seen[msg] {
					seen[msg] = true
					data.SourceErrors = append(data.SourceErrors, msg)
				}
			}
			if row.State == "no data" {
				data.NoData++
			}
			row.StateClass = strings.ReplaceAll(row.State, " ", "-")
			data.Rows = append(data.Rows, row)
		}
		sortWorstFirst(data.Rows)
		data.Total = len(statuses)
		for s := range services {
			data.Services = append(data.Services, s)
		}
		sort.Strings(data.Services)
		u.render(c, http.StatusOK, "slos.html", "SLOs", data)
	}
}

// sortWorstFirst orders by budget left, least first; objectives without a
// figure (a failed source, no data) come first: nothing is known of them.
func sortWorstFirst(rows []sloRow) {
	sort.SliceStable(rows, func(i, j int) bool {
		a, b := rows[i].ErrorBudget.Remaining, rows[j].ErrorBudget.Remaining
		switch {
		case a == nil && b == nil:
			return rows[i].Name < rows[j].Name
		case a == nil:
			return true
		case b == nil:
			return false
		case *a != *b:
			return *a < *b
		}
		return rows[i].Name < rows[j].Name
	})
}

// One SLO.

type sloQuery struct{ Role, Source, Text string }

type sloPageData struct {
	Status  slo.Status
	Labels  map[string]string
	Queries []sloQuery
	Range   string
	Ranges  []string
	Params  map[string]any
	Tiers   []slo.AlertState
}

var uiRanges = map[string]time.Duration{"1h": time.Hour, "6h": 6 * time.Hour, "1d": 24 * time.Hour, "7d": 7 * 24 * time.Hour, "30d": 30 * 24 * time.Hour}

func (u *ui) sloPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		name := c.Param("name")
		st, ok := u.d.SLOs.Status(c.Request.Context(), name, time.Time{})
		if !ok {
			u.render(c, http.StatusNotFound, "error.html", "Not found", "no SLO is named "+name)
			return
		}
		rng := c.DefaultQuery("range", "1h")
		span, ok := uiRanges[rng]
		if !ok {
			rng, span = "1h", time.Hour
		}
		data := sloPageData{Status: st, Range: rng, Ranges: []string{"1h", "6h", "1d", "7d", "30d"}, Tiers: st.Alerts}
		if set := u.objectives(); set != nil {
			if o, ok := set.Objective(name); ok {
				data.Labels = o.Labels
				roles := []string{"good", "bad", "total", "raw"}
				for i, q := range []*slo.Query{o.SLI.Good, o.SLI.Bad, o.SLI.Total, o.SLI.Raw} {
					if q != nil {
						data.Queries = append(data.Queries, sloQuery{Role: roles[i], Source: string(q.Source), Text: queryText(q)})
					}
				}
			}
		}
		to := u.d.Clock().UTC()
		step := max(span/60, 10*time.Second).Round(time.Second)
		data.Params = map[string]any{
			"name": name, "target": st.Target, "step": step.String(),
			// Sub-second precision: an answer given in the second the page
			// loads is drawn (a whole-second "to" left it out).
			"from": to.Add(-span).Format(time.RFC3339Nano), "to": to.Format(time.RFC3339Nano),
			"history": "/v1/slos/" + url.PathEscape(name) + "/history",
		}
		u.render(c, http.StatusOK, "slo.html", name, data)
	}
}

func queryText(q *slo.Query) string {
	switch {
	case q.PromQL != "":
		return q.PromQL
	case q.Elasticsearch != nil:
		b, _ := json.MarshalIndent(q.Elasticsearch, "", "  ")
		return string(b)
	case q.Tempo != nil:
		b, _ := json.MarshalIndent(q.Tempo, "", "  ")
		return string(b)
	}
	return ""
}

// Deploys.

type deployRow struct {
	Deploy
	Answers []DecisionMark
}

type deployGroup struct {
	Service, Environment string
	Deploys              []deployRow
	Override             *Override
}

type deploysData struct {
	Groups      []deployGroup
	Service     string
	Environment string
}

func (u *ui) deploysPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		data := deploysData{Service: c.Query("service"), Environment: c.Query("environment")}
		page, _, err := u.d.Store.ListDeploys(ctx, store.DeployFilter{Service: data.Service, Environment: data.Environment, Limit: 200})
		if err != nil {
			fail(c, err)
			return
		}
		groups := map[[2]string]*deployGroup{}
		var order [][2]string
		for _, d := range page {
			k := [2]string{d.Service, d.Environment}
			g := groups[k]
			if g == nil {
				g = &deployGroup{Service: d.Service, Environment: d.Environment}
				groups[k] = g
				order = append(order, k)
			}
			row := deployRow{Deploy: deployOut(d)}
			if u.recs != nil {
				ds, _, err := u.recs.ListDecisions(ctx, store.DecisionFilter{DeployID: d.ID, Limit: 50})
				if err != nil {
					fail(c, err)
					return
				}
				for _, x := range slices.Backward(ds) {
					row.Answers = append(row.Answers, decisionMark(x))
				}
			}
			g.Deploys = append(g.Deploys, row)
		}
		slices.SortFunc(order, func(a, b [2]string) int { return strings.Compare(a[0]+"\x00"+a[1], b[0]+"\x00"+b[1]) })
		now := u.d.Clock()
		for _, k := range order {
			g := groups[k]
			if u.recs != nil {
				if o, ok, err := u.recs.ActiveOverride(ctx, g.Service, g.Environment, now); err != nil {
					fail(c, err)
					return
				} else if ok {
					out := overrideOut(o)
					g.Override = &out
				}
			}
			data.Groups = append(data.Groups, *g)
		}
		u.render(c, http.StatusOK, "deploys.html", "Deploys", data)
	}
}

// One decision.

type decisionData struct {
	Answer gate.Answer
	Stored slogate.DecisionRecord
	Deploy *Deploy
}

func (u *ui) decisionPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		ctx := c.Request.Context()
		d, err := u.d.Store.GetDecision(ctx, c.Param("id"))
		if err != nil {
			status := http.StatusInternalServerError
			if problemFor(err).Status == http.StatusNotFound {
				status = http.StatusNotFound
			}
			u.render(c, status, "error.html", "Not found", "no decision "+c.Param("id")+": "+problemFor(err).Detail)
			return
		}
		data := decisionData{Stored: d}
		if err := json.Unmarshal(d.Body, &data.Answer); err != nil {
			fail(c, fmt.Errorf("decision %s: reading the stored answer: %w", d.EvaluationID, err))
			return
		}
		if d.DeployID != "" {
			if dep, err := u.d.Store.GetDeploy(ctx, d.DeployID); err == nil {
				out := deployOut(dep)
				data.Deploy = &out
			}
		}
		u.render(c, http.StatusOK, "decision.html", "Decision "+string(d.Decision)+" — "+d.Service, data)
	}
}

// Overrides.

type overridesData struct {
	Active   []Override
	Past     []Override
	Services []string
	Errors   []FieldError
	Form     createOverrideRequest
}

// listOverrides rebuilds the overrides from the audit log (created and
// revoked entries), newest first.
func (u *ui) listOverrides(c *gin.Context) (active, past []Override, err error) {
	if u.recs == nil {
		return nil, nil, nil
	}
	ctx := c.Request.Context()
	entries := func(action string) ([]store.AuditEntry, error) {
		var out []store.AuditEntry
		f := store.AuditFilter{Action: action, Limit: 500}
		for len(out) < historyListLimit {
			page, next, err := u.recs.ListAudit(ctx, f)
			if err != nil {
				return nil, err
			}
			out = append(out, page...)
			if next == "" {
				break
			}
			f.Cursor = next
		}
		return out, nil
	}
	created, err := entries(store.ActionOverrideCreated)
	if err != nil {
		return nil, nil, err
	}
	revoked, err := entries(store.ActionOverrideRevoked)
	if err != nil {
		return nil, nil, err
	}
	rev := map[string]store.AuditEntry{}
	for _, e := range revoked {
		rev[e.Subject] = e
	}
	now := u.d.Clock()
	for _, e := range created {
		var d struct{ Service, Environment, Reason, ExpiresAt string }
		_ = json.Unmarshal([]byte(e.Detail), &d)
		exp, _ := time.Parse(time.RFC3339Nano, d.ExpiresAt)
		o := Override{ID: e.Subject, Service: d.Service, Environment: d.Environment, Reason: d.Reason,
			CreatedBy: e.Actor, CreatedAt: e.At, ExpiresAt: exp}
		if r, ok := rev[e.Subject]; ok {
			at := r.At
			o.RevokedAt, o.RevokedBy = &at, r.Actor
		}
		if o.RevokedAt == nil && exp.After(now) {
			active = append(active, o)
		} else {
			past = append(past, o)
		}
	}
	return active, past, nil
}

func (u *ui) services(ctx context.Context) []string {
	if set := u.objectives(); set != nil {
		return set.ServiceNames()
	}
	var out []string
	for _, s := range u.d.SLOs.Statuses(ctx, time.Time{}) {
		if !slices.Contains(out, s.Service) {
			out = append(out, s.Service)
		}
	}
	sort.Strings(out)
	return out
}

func (u *ui) overridesPage(status int, form createOverrideRequest, errs []FieldError) gin.HandlerFunc {
	return func(c *gin.Context) {
		active, past, err := u.listOverrides(c)
		if err != nil {
			fail(c, err)
			return
		}
		if form.Environment == "" {
			form.Environment = "production"
		}
		u.render(c, status, "overrides.html", "Overrides", overridesData{Active: active, Past: past, Services: u.services(c.Request.Context()), Errors: errs, Form: form})
	}
}

// overrideExpiries are the choices of the create form.
var overrideExpiries = map[string]time.Duration{"30m": 30 * time.Minute, "1h": time.Hour, "4h": 4 * time.Hour, "24h": 24 * time.Hour, "72h": 72 * time.Hour}

func (u *ui) createOverride() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !u.form(c) {
			return
		}
		ctx := c.Request.Context()
		now := u.d.Clock()
		r := createOverrideRequest{Service: c.PostForm("service"), Environment: c.PostForm("environment"), Reason: c.PostForm("reason")}
		var f fields
		if d, ok := overrideExpiries[c.PostForm("expiresIn")]; ok {
			r.ExpiresAt = now.Add(d).UTC().Format(time.RFC3339)
		} else {
			f.add("expiresIn", "choose one of 30m, 1h, 4h, 24h, 72h")
		}
		o, more := r.override(now, u.d.MaxOverrideTTL)
		f = append(f, more...)
		if len(f) > 0 {
			u.overridesPage(http.StatusBadRequest, r, f)(c)
			return
		}
		o.CreatedBy = principal(ctx)
		stored, err := u.d.Store.CreateOverride(ctx, o)
		if err != nil {
			fail(c, err)
			return
		}
		u.d.Gate.Invalidate(stored.Service, stored.Environment)
		c.Redirect(http.StatusSeeOther, "/ui/overrides")
	}
}

func (u *ui) revokeOverride() gin.HandlerFunc {
	return func(c *gin.Context) {
		if !u.form(c) {
			return
		}
		ctx := c.Request.Context()
		o, err := u.d.Store.RevokeOverride(ctx, c.Param("id"), principal(ctx))
		if err != nil {
			p := problemFor(err)
			u.render(c, p.Status, "error.html", "Not revoked", p.Detail)
			return
		}
		u.d.Gate.Invalidate(o.Service, o.Environment)
		c.Redirect(http.StatusSeeOther, "/ui/overrides")
	}
}

// readableSeconds is a duration in seconds as 3h25m (seconds under a
// minute, minutes under a day, days beyond).
func readableSeconds(s float64) string {
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < 24*time.Hour:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	default:
		return fmt.Sprintf("%.1fd", d.Hours()/24)
	}
}

// The delivery page: the four DORA keys of GET /v1/dora.

type doraData struct {
	Service, Environment, Window string
	Query                        template.URL
	Report                       *DORA
	Error                        string
}

func (u *ui) doraPage() gin.HandlerFunc {
	return func(c *gin.Context) {
		data := doraData{Service: c.Query("service"), Environment: c.Query("environment"), Window: c.Query("window")}
		if data.Window == "" {
			data.Window = "30d"
		}
		v := url.Values{"window": {data.Window}}
		for k, x := range map[string]string{"service": data.Service, "environment": data.Environment} {
			if x != "" {
				v.Set(k, x)
			}
		}
		data.Query = template.URL(v.Encode())
		q, err := parseDORAQuery(c, u.d.Clock())
		if err == nil {
			ctx, cancel := context.WithTimeout(c.Request.Context(), doraDeadline)
			var out DORA
			out, err = computeDORA(ctx, u.d.Store, u.d.Delivery, q)
			cancel()
			if err == nil {
				data.Report = &out
			}
		}
		if err != nil {
			data.Error = problemFor(err).Error()
		}
		u.render(c, http.StatusOK, "dora.html", "Delivery", data)
	}
}
