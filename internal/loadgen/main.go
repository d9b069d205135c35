// Command loadgen sends HTTP requests to a loopback address from a second
// process and prints one JSON line of figures: the load side of slogate's
// load benchmarks (cmd/slogate/load_test.go).
//
//	go run ./internal/loadgen -url URL [-method GET|POST] [-body FILE]
//	    [-header 'K: V']... [-unique] -c CONCURRENCY (-n REQUESTS | -d DURATION)
//
// prints
//
//	{"requests":…,"errors":…,"non2xx":…,"seconds":…,"rps":…,"p50_ms":…,"p90_ms":…,"p99_ms":…,"max_ms":…}
//
// requests counts the requests that got an answer (any status); errors the
// ones that got none (a refused connection, a timeout); non2xx the answers
// outside 200–299. The latencies are those of the answered requests, from
// sending the request to reading the last byte of the body.
//
// The client keeps its connections alive (one per worker). The load goes to
// 127.0.0.1, ::1 or localhost only, and always stops by itself: after -n
// requests, after -d, and in any case after 60 seconds.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// hardCap bounds every run, whatever -n and -d say.
const hardCap = 60 * time.Second

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
}

// Result is the line loadgen prints.
type Result struct {
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Non2xx   int64   `json:"non2xx"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50      float64 `json:"p50_ms"`
	P90      float64 `json:"p90_ms"`
	P99      float64 `json:"p99_ms"`
	Max      float64 `json:"max_ms"`
	// FirstError and FirstNon2xx describe the first failure of each kind,
	// to tell what went wrong without a second run.
	FirstError  string `json:"first_error,omitempty"`
	FirstNon2xx string `json:"first_non2xx,omitempty"`
}

type headerList []string

func (h *headerList) String() string { return strings.Join(*h, ", ") }

func (h *headerList) Set(v string) error {
	k, _, ok := strings.Cut(v, ":")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("want 'Name: value', got %q", v)
	}
	*h = append(*h, v)
	return nil
}

// config is a parsed command line.
type config struct {
	url         string
	method      string
	body        []byte
	headers     []string
	unique      bool
	concurrency int
	requests    int64
	duration    time.Duration
	timeout     time.Duration
}

func parse(args []string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c config
	var bodyFile string
	var headers headerList
	fs.StringVar(&c.url, "url", "", "URL to load (host 127.0.0.1, ::1 or localhost)")
	fs.StringVar(&c.method, "method", http.MethodGet, "HTTP method")
	fs.StringVar(&bodyFile, "body", "", "file whose content is every request's body")
	fs.Var(&headers, "header", "request header 'Name: value' (repeatable)")
	fs.BoolVar(&c.unique, "unique", false, "replace {{n}} in the body and the header values with the request number (1, 2, …)")
	fs.IntVar(&c.concurrency, "c", 1, "requests in flight (workers, each with its own kept-alive connection)")
	fs.Int64Var(&c.requests, "n", 0, "stop after this many requests")
	fs.DurationVar(&c.duration, "d", 0, "stop after this long (at most "+hardCap.String()+")")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "timeout of one request")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	var errs []error
	if fs.NArg() > 0 {
		errs = append(errs, fmt.Errorf("unexpected arguments %q", fs.Args()))
	}
	if err := loopbackOnly(c.url); err != nil {
		errs = append(errs, err)
	}
	if c.method == "" {
		errs = append(errs, errors.New("-method: must not be empty"))
	}
	if c.concurrency < 1 {
		errs = append(errs, fmt.Errorf("-c: must be at least 1, got %d", c.concurrency))
	}
	switch {
	case c.requests < 0:
		errs = append(errs, fmt.Errorf("-n: must not be negative, got %d", c.requests))
	case c.duration < 0:
		errs = append(errs, fmt.Errorf("-d: must not be negative, got %s", c.duration))
	case c.requests == 0 && c.duration == 0:
		errs = append(errs, errors.New("give -n REQUESTS or -d DURATION (or both: whichever ends first)"))
	}
	if c.duration > hardCap {
		errs = append(errs, fmt.Errorf("-d: at most %s, got %s", hardCap, c.duration))
	}
	if c.timeout <= 0 {
		errs = append(errs, fmt.Errorf("-timeout: must be positive, got %s", c.timeout))
	}
	if bodyFile != "" {
		b, err := os.ReadFile(bodyFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("-body: %w", err))
		}
		c.body = b
	}
	for _, h := range headers {
		k, v, _ := strings.Cut(h, ":")
		c.headers = append(c.headers, http.CanonicalHeaderKey(strings.TrimSpace(k)), strings.TrimSpace(v))
	}
	return c, errors.Join(errs...)
}

// loopbackOnly refuses a URL whose host is not a loopback address: the load
// must not leave the machine.
func loopbackOnly(raw string) error {
	if raw == "" {
		return errors.New("-url: required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("-url %q: want an http(s) URL", raw)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("-url %q: the host must be a loopback address (127.0.0.1, ::1, localhost)", raw)
	}
	return nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cfg, err := parse(args, stderr)
	if err != nil {
		return err
	}
	r := load(ctx, cfg)
	return json.NewEncoder(stdout).Encode(r)
}

// newRequest builds request number n (from 1).
func (c *config) newRequest(ctx context.Context, n int64) (*http.Request, error) {
	body := c.body
	num := strconv.FormatInt(n, 10)
	if c.unique {
		body = bytes.ReplaceAll(body, []byte("{{n}}"), []byte(num))
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, c.method, c.url, rd)
	if err != nil {
		return nil, err
	}
	for i := 0; i+1 < len(c.headers); i += 2 {
		v := c.headers[i+1]
		if c.unique {
			v = strings.ReplaceAll(v, "{{n}}", num)
		}
		if c.headers[i] == "Host" {
			req.Host = v
			continue
		}
		req.Header.Add(c.headers[i], v)
	}
	return req, nil
}

// tally is one worker's figures, merged at the end.
type tally struct {
	latencies             []time.Duration
	errors, non2xx        int64
	firstErr, firstStatus string
}

func load(ctx context.Context, c config) Result {
	limit := hardCap
	if c.duration > 0 {
		limit = c.duration
	}
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	tr := &http.Transport{
		Proxy:               nil, // loopback only: never through a proxy from the environment
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        c.concurrency,
		MaxIdleConnsPerHost: c.concurrency,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: c.timeout}

	var next atomic.Int64
	tallies := make([]tally, c.concurrency)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for w := range tallies {
		t := &tallies[w]
		wg.Go(func() {
			<-start
			buf := make([]byte, 32<<10)
			for ctx.Err() == nil {
				n := next.Add(1)
				if c.requests > 0 && n > c.requests {
					return
				}
				req, err := c.newRequest(ctx, n)
				if err != nil {
					t.fail(err)
					continue
				}
				began := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					_, err = io.CopyBuffer(io.Discard, resp.Body, buf)
					resp.Body.Close()
				}
				took := time.Since(began)
				switch {
				case err != nil && ctx.Err() != nil:
					// Cut short by -d or the hard cap: not a failure
					// of the server, and not a request either.
					return
				case err != nil:
					t.fail(err)
				default:
					t.latencies = append(t.latencies, took)
					if resp.StatusCode < 200 || resp.StatusCode > 299 {
						t.non2xx++
						if t.firstStatus == "" {
							t.firstStatus = resp.Status
						}
					}
				}
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)

	var all []time.Duration
	r := Result{Seconds: round(elapsed.Seconds(), 3)}
	for _, t := range tallies {
		all = append(all, t.latencies...)
		r.Errors += t.errors
		r.Non2xx += t.non2xx
		if r.FirstError == "" {
			r.FirstError = t.firstErr
		}
		if r.FirstNon2xx == "" {
			r.FirstNon2xx = t.firstStatus
		}
	}
	r.Requests = int64(len(all))
	if elapsed > 0 {
		r.RPS = round(float64(r.Requests)/elapsed.Seconds(), 1)
	}
	slices.Sort(all)
	r.P50, r.P90, r.P99 = ms(percentile(all, 50)), ms(percentile(all, 90)), ms(percentile(all, 99))
	if len(all) > 0 {
		r.Max = ms(all[len(all)-1])
	}
	return r
}

func (t *tally) fail(err error) {
	t.errors++
	if t.firstErr == "" {
		t.firstErr = err.Error()
	}
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) float64 { return round(float64(d)/float64(time.Millisecond), 3) }

func round(v float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(v*p) / p
}
