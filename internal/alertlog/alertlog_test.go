package alertlog

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slogate/slogate/alerting"
	"github.com/slogate/slogate/store"
	"github.com/slogate/slogate/store/storetest"
)

func TestTheAlertRecordGivesThePageBurnsTheTrackerSaved(t *testing.T) {
	ctx := context.Background()
	st := storetest.SQLite(t)
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)
	at := func(h int) time.Time { return t0.Add(time.Duration(h) * time.Hour) }
	// What States.Save writes, at the instants the tracker saw.
	save := func(when time.Time, key string, s alerting.State) {
		b, _ := json.Marshal(s)
		if err := st.Audit(ctx, store.AuditEntry{At: when, Actor: "slogate", Action: ActionAlertState, Subject: key, Detail: string(b)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Audit(ctx, store.AuditEntry{At: at(1), Actor: "slogate", Action: ActionAlertTracking, Subject: "page"}); err != nil {
		t.Fatal(err)
	}
	save(at(2), "shop-availability/page", alerting.State{Firing: true, StartsAt: at(2)})
	save(at(2), "shop-availability/ticket", alerting.State{Firing: true, StartsAt: at(2)})
	save(at(3), "shop-availability/page", alerting.State{})
	save(at(5), "shop-availability/page", alerting.State{Firing: true, StartsAt: at(5)})
	save(at(6), "shop-availability/page", alerting.State{})
	save(at(30), "cart-latency/page", alerting.State{Firing: true, StartsAt: at(30)}) // still firing

	tests := map[string]struct {
		from, to time.Time
		want     []string
	}{
		"every burn of the record, the one still firing without an end": {
			from: at(0), to: at(40),
			want: []string{"shop-availability 02:00-03:00", "shop-availability 05:00-06:00", "cart-latency 06:00-"},
		},
		"a burn that ended before from is left out; one going at from is in": {
			from: at(4), to: at(40),
			want: []string{"shop-availability 05:00-06:00", "cart-latency 06:00-"},
		},
		"a burn that begins after to is left out": {
			from: at(0), to: at(4),
			want: []string{"shop-availability 02:00-03:00"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			burns, since, err := Record{Store: st}.PageBurns(ctx, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, b := range burns {
				end := ""
				if !b.End.IsZero() {
					end = b.End.Format("15:04")
				}
				got = append(got, fmt.Sprintf("%s %s-%s", b.SLO, b.Start.Format("15:04"), end))
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("burns = %q, want %q", got, tc.want)
			}
			if !since.Equal(at(1)) {
				t.Errorf("since = %s, want the tracking mark at %s", since, at(1))
			}
		})
	}
}

func TestStates(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 20, 0, 0, 0, 0, time.UTC)

	t.Run("the newest saved state of each alert is loaded", func(t *testing.T) {
		st := storetest.SQLite(t)
		s := States{Store: st}
		for _, x := range []struct {
			key string
			s   alerting.State
		}{
			{"shop-availability/page", alerting.State{Firing: true, StartsAt: t0}},
			{"shop-availability/ticket", alerting.State{Firing: true, StartsAt: t0}},
			{"shop-availability/page", alerting.State{}},
		} {
			if err := s.Save(ctx, x.key, x.s); err != nil {
				t.Fatal(err)
			}
		}
		got, err := s.Load(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]alerting.State{
			"shop-availability/page":   {},
			"shop-availability/ticket": {Firing: true, StartsAt: t0},
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Load = %v, want %v", got, want)
		}
	})
	t.Run("a state that does not decode is an error naming the alert", func(t *testing.T) {
		st := storetest.SQLite(t)
		if err := st.Audit(ctx, store.AuditEntry{Actor: "slogate", Action: ActionAlertState, Subject: "x/page", Detail: "{"}); err != nil {
			t.Fatal(err)
		}
		if _, err := (States{Store: st}).Load(ctx); err == nil || !strings.Contains(err.Error(), "x/page") {
			t.Errorf("Load of a broken state: %v, want an error naming x/page", err)
		}
	})
}
