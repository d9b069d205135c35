package github

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGitHubCompare serves GET {prefix}/repos/{o}/{r}/compare/{basehead}
// as GitHub does: the sample answer of testdata/compare.json, or
// its commits cut into pages when pages > 1.
type fakeGitHubCompare struct {
	t      *testing.T
	prefix string
	token  string
	status int

	mu       sync.Mutex
	requests []*http.Request
}

func (f *fakeGitHubCompare) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("X-GitHub-Api-Version-Selected", "2022-11-28")
	switch {
	case r.Header.Get("Authorization") != "Bearer "+f.token:
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest","status":"401"}`)
		return
	case r.Header.Get("Accept") != "application/vnd.github+json" || r.Header.Get("X-GitHub-Api-Version") != "2022-11-28":
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"message":"missing headers"}`)
		return
	case f.status != 0:
		w.WriteHeader(f.status)
		fmt.Fprint(w, `{"message":"No common ancestor between 1111111 and 3333333.","documentation_url":"https://docs.github.com/rest/commits/commits#compare-two-commits","status":"404"}`)
		return
	case !strings.HasPrefix(r.URL.Path, f.prefix+"/repos/octo-org/checkout/compare/"):
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"Not Found"}`)
		return
	}
	b, err := os.ReadFile("testdata/compare.json")
	if err != nil {
		f.t.Error(err)
	}
	if r.URL.Query().Get("per_page") == "1" {
		// Not used: slogate asks 100 a page.
		f.t.Error("per_page 1")
	}
	w.Write(b)
}

func TestGitHubCompareListsTheCommitsOfAChange(t *testing.T) {
	for name, prefix := range map[string]string{"github.com": "", "GitHub Enterprise Server under /api/v3": "/api/v3"} {
		t.Run(name, func(t *testing.T) {
			fake := &fakeGitHubCompare{t: t, prefix: prefix, token: "ghs_test"}
			srv := httptest.NewServer(fake)
			t.Cleanup(srv.Close)
			c, err := NewCompare(srv.URL+prefix+"/", "ghs_test", time.Second)
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Compare(context.Background(), "octo-org/checkout",
				"1111111111111111111111111111111111111111", "3333333333333333333333333333333333333333")
			if err != nil {
				t.Fatal(err)
			}
			// Author dates, in UTC: when the change was written.
			want := []string{
				"2222222222222222222222222222222222222222 2026-11-20T08:00:00Z",
				"3333333333333333333333333333333333333333 2026-11-20T08:30:00Z",
			}
			var have []string
			for _, c := range got {
				have = append(have, c.SHA+" "+c.Time.Format(time.RFC3339))
			}
			if fmt.Sprint(have) != fmt.Sprint(want) {
				t.Errorf("commits = %v, want %v", have, want)
			}
			if len(fake.requests) != 1 {
				t.Fatalf("%d requests, want 1 (two commits fit one page)", len(fake.requests))
			}
			r := fake.requests[0]
			if r.Method != http.MethodGet || r.URL.Path != prefix+"/repos/octo-org/checkout/compare/1111111111111111111111111111111111111111...3333333333333333333333333333333333333333" ||
				r.URL.Query().Get("per_page") != "100" || r.URL.Query().Get("page") != "1" {
				t.Errorf("request %s %s", r.Method, r.URL)
			}
		})
	}
}

func TestGitHubCompareRefusesWhatIsNotARepositoryOrACommit(t *testing.T) {
	fake := &fakeGitHubCompare{t: t, token: "ghs_test"}
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	c, _ := NewCompare(srv.URL, "ghs_test", time.Second)
	for _, tc := range []struct{ repo, base, head string }{
		{"octo-org/checkout/../../evil", "a", "b"},
		{"https://evil.example/x", "a", "b"},
		{"octo-org/checkout", "a..b", "c"},
		{"octo-org/checkout", "a", "b?x=1"},
		{"octo-org/checkout", "", "b"},
	} {
		if _, err := c.Compare(context.Background(), tc.repo, tc.base, tc.head); err == nil {
			t.Errorf("Compare(%q, %q, %q) asked GitHub", tc.repo, tc.base, tc.head)
		}
	}
	if len(fake.requests) != 0 {
		t.Errorf("%d requests to GitHub, want none", len(fake.requests))
	}
}

func TestGitHubCompareFailuresNameTheStatusAndGitHubsMessage(t *testing.T) {
	tests := map[string]struct {
		token  string
		status int
		want   string
	}{
		"a bad token is a 401":           {token: "wrong", want: "HTTP 401: Bad credentials"},
		"unrelated histories are a 404 ": {token: "ghs_test", status: 404, want: "HTTP 404: No common ancestor"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			fake := &fakeGitHubCompare{t: t, token: "ghs_test", status: tc.status}
			srv := httptest.NewServer(fake)
			t.Cleanup(srv.Close)
			c, _ := NewCompare(srv.URL, tc.token, time.Second)
			_, err := c.Compare(context.Background(), "octo-org/checkout", "1111111", "3333333")
			if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), tc.token+"\"") {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}

func TestGitHubCompareReadsEveryPage(t *testing.T) {
	var pages []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		pages = append(pages, r.URL.Query().Get("page"))
		page := r.URL.Query().Get("page")
		n := 100
		if page == "3" {
			n = 20
		}
		type commit struct {
			SHA    string `json:"sha"`
			Commit struct {
				Author struct {
					Date string `json:"date"`
				} `json:"author"`
			} `json:"commit"`
		}
		out := struct {
			TotalCommits int      `json:"total_commits"`
			Commits      []commit `json:"commits"`
		}{TotalCommits: 220}
		for i := range n {
			var c commit
			c.SHA = fmt.Sprintf("p%s-%03d", page, i)
			c.Commit.Author.Date = "2026-11-20T08:00:00Z"
			out.Commits = append(out.Commits, c)
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	c, _ := NewCompare(srv.URL, "t", time.Second)
	got, err := c.Compare(context.Background(), "octo-org/checkout", "a", "b")
	if err != nil || len(got) != 220 || fmt.Sprint(pages) != "[1 2 3]" {
		t.Fatalf("%d commits over pages %v, %v; want 220 over [1 2 3]", len(got), pages, err)
	}
}
