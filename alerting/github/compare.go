package github

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/slogate/slogate"
	"github.com/slogate/slogate/alerting"
)

// Compare lists the commits of a change with GitHub's compare API
// (GET /repos/{owner}/{repo}/compare/{base}...{head}), with the token of
// notify.github, under its API base only: the repository and the shas
// are path segments, never a URL taken from a payload.
type Compare struct {
	base    *url.URL
	token   string
	client  *http.Client
	timeout time.Duration
}

const (
	comparePerPage  = 100
	compareMaxPages = 10
)

// A commit-ish the compare API takes: a sha or a ref name.
var revPattern = regexp.MustCompile(`^[A-Za-z0-9_./-]{1,255}$`)

// NewCompare makes a compare client for the API base rawURL (default
// DefaultURL) with token (may be empty for a public repository); timeout
// bounds each call (default DefaultTimeout).
func NewCompare(rawURL, token string, timeout time.Duration) (*Compare, error) {
	if rawURL == "" {
		rawURL = DefaultURL
	}
	base, err := alerting.PeerURL("github", strings.TrimSuffix(rawURL, "/"))
	if err != nil {
		return nil, err
	}
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &Compare{base: base, token: token, client: &http.Client{Timeout: timeout}, timeout: timeout}, nil
}

// compareAnswer is the part of the compare API's answer read here.
type compareAnswer struct {
	TotalCommits int `json:"total_commits"`
	Commits      []struct {
		SHA    string `json:"sha"`
		Commit struct {
			Author struct {
				Date time.Time `json:"date"`
			} `json:"author"`
			Committer struct {
				Date time.Time `json:"date"`
			} `json:"committer"`
		} `json:"commit"`
	} `json:"commits"`
}

// Compare returns the commits reachable from head and not from base,
// oldest first, each with its author date (when the change was written),
// at most compareMaxPages pages of 100.
func (g *Compare) Compare(ctx context.Context, repo, base, head string) ([]slogate.Commit, error) {
	if !repoPattern.MatchString(repo) {
		return nil, fmt.Errorf("github compare: repository %q is not owner/name", repo)
	}
	if !revPattern.MatchString(base) || !revPattern.MatchString(head) || strings.Contains(base+head, "..") {
		return nil, fmt.Errorf("github compare: %q...%q is not a pair of commits", base, head)
	}
	owner, name, _ := strings.Cut(repo, "/")
	var out []slogate.Commit
	for page := 1; page <= compareMaxPages; page++ {
		var a compareAnswer
		if err := g.get(ctx, owner, name, base+"..."+head, page, &a); err != nil {
			return nil, err
		}
		for _, c := range a.Commits {
			t := c.Commit.Author.Date
			if t.IsZero() {
				t = c.Commit.Committer.Date
			}
			out = append(out, slogate.Commit{SHA: c.SHA, Time: t.UTC()})
		}
		if len(a.Commits) < comparePerPage || len(out) >= a.TotalCommits {
			break
		}
	}
	return out, nil
}

func (g *Compare) get(ctx context.Context, owner, name, basehead string, page int, out any) error {
	ctx, cancel := context.WithTimeoutCause(ctx, g.timeout, fmt.Errorf("github compare timed out after %s", g.timeout))
	defer cancel()
	u := g.base.JoinPath("repos", owner, name, "compare", basehead)
	u.RawQuery = url.Values{"per_page": {strconv.Itoa(comparePerPage)}, "page": {strconv.Itoa(page)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/vnd.github+json")
	req.Header.Set("X-GitHub-Api-Version", APIVersion)
	req.Header.Set("User-Agent", userAgent)
	if g.token != "" {
		req.Header.Set("Authorization", "Bearer "+g.token)
	}
	resp, err := g.client.Do(req)
	if err != nil {
		if cause := context.Cause(ctx); cause != nil && errors.Is(err, context.DeadlineExceeded) {
			return cause
		}
		// The error names the URL, which holds no secret.
		return fmt.Errorf("github compare %s/%s: %w", owner, name, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("github compare %s/%s: %w", owner, name, err)
	}
	if resp.StatusCode != http.StatusOK {
		var p struct {
			Message string `json:"message"`
		}
		_ = json.Unmarshal(body, &p)
		return fmt.Errorf("github compare %s/%s %s: HTTP %d: %s", owner, name, basehead, resp.StatusCode, p.Message)
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("github compare %s/%s: malformed answer: %w", owner, name, err)
	}
	return nil
}
