package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// httpNotifier posts each event as JSON to a loopback sink, the cost of a
// real peer without the peer.
type httpNotifier struct {
	url    string
	client *http.Client
}

func (n *httpNotifier) Peer() string       { return PeerGrafana }
func (n *httpNotifier) Key(e Event) string { return e.Links[0].Text }
func (n *httpNotifier) Notify(ctx context.Context, e Event) (bool, error) {
	body, err := json.Marshal(e)
	if err != nil {
		return false, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.url, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	resp, err := n.client.Do(req)
	if err != nil {
		return true, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return false, nil
}

// BenchmarkDispatch compares the Dispatcher (in-memory outbox, 4 deliveries
// in flight) with bare loops calling the same notifier directly, one
// goroutine and four.
func BenchmarkDispatch(b *testing.B) {
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer sink.Close()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	n := &httpNotifier{url: sink.URL, client: client}
	at := time.Now()
	events := func(count int) []Event {
		out := make([]Event, count)
		for i := range out {
			out[i] = keyed(fmt.Sprintf("m%d", i), at)
		}
		return out
	}

	b.Run("dispatcher", func(b *testing.B) {
		box := newFakeOutbox()
		d, err := NewDispatcher(DispatcherConfig{Outbox: box, Notifiers: []Notifier{n}, Poll: 10 * time.Millisecond})
		if err != nil {
			b.Fatal(err)
		}
		evs := events(b.N)
		ctx, cancel := context.WithCancel(context.Background())
		b.ResetTimer()
		start := time.Now()
		if err := d.Send(ctx, evs...); err != nil {
			b.Fatal(err)
		}
		done := make(chan struct{})
		go func() { d.Run(ctx); close(done) }()
		for box.undelivered() > 0 {
			time.Sleep(100 * time.Microsecond)
		}
		elapsed := time.Since(start)
		b.StopTimer()
		cancel()
		<-done
		b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	})
	for _, workers := range []int{1, 4} {
		b.Run(fmt.Sprintf("bare loop, %d goroutines", workers), func(b *testing.B) {
			evs := events(b.N)
			next := make(chan Event, len(evs))
			for _, e := range evs {
				next <- e
			}
			close(next)
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for e := range next {
						if _, err := n.Notify(context.Background(), e); err != nil {
							b.Error(err)
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "deliveries/s")
		})
	}
}
