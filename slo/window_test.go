package slo

import (
	"testing"
	"time"
)

func TestParseDuration(t *testing.T) {
	tests := map[string]struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		"minutes are m":                       {in: "5m", want: 5 * time.Minute},
		"days are d":                          {in: "30d", want: 30 * Day},
		"weeks are w":                         {in: "4w", want: 28 * Day},
		"OpenSLO's M is a month, not minutes": {in: "1M", want: 30 * Day},
		"a quarter is 90 days":                {in: "1Q", want: 90 * Day},
		"a year is 365 days":                  {in: "1Y", want: 365 * Day},
		"compound durations are read":         {in: "1h30m", want: 90 * time.Minute},
		"a unit is required":                  {in: "30", wantErr: true},
		"an unknown unit is refused":          {in: "30x", wantErr: true},
		"zero is refused":                     {in: "0d", wantErr: true},
		"an empty string is refused":          {in: "", wantErr: true},
		"words are refused":                   {in: "ten minutes", wantErr: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	for in, want := range map[time.Duration]string{
		30 * Day: "30d", 6 * time.Hour: "6h", 5 * time.Minute: "5m", 90 * time.Minute: "1h30m", 3 * Day: "3d",
	} {
		if got := FormatDuration(in); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", in, got, want)
		}
	}
}

func TestCalendarWindowBoundsInATimeZone(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	if err != nil {
		t.Fatal(err)
	}
	ny, err := time.LoadLocation("America/New_York")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		w          Window
		at         time.Time
		start, end time.Time
		period     time.Duration
	}{
		// Paris switches to summer time on 2026-03-29: March is 31 days less an hour.
		"March in Paris starts at local midnight and is an hour short": {
			w: Window{Calendar: CalendarMonth, Location: paris}, at: time.Date(2026, 3, 30, 12, 0, 0, 0, time.UTC),
			start: time.Date(2026, 2, 28, 23, 0, 0, 0, time.UTC), end: time.Date(2026, 3, 31, 22, 0, 0, 0, time.UTC),
			period: 31*Day - time.Hour,
		},
		// 2026-11-01 00:30 UTC is still 31 October, 20:30 in New York: October's window.
		"an instant just past midnight UTC belongs to the previous local month": {
			w: Window{Calendar: CalendarMonth, Location: ny}, at: time.Date(2026, 11, 1, 0, 30, 0, 0, time.UTC),
			start: time.Date(2026, 10, 1, 4, 0, 0, 0, time.UTC), end: time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC),
			period: 31 * Day,
		},
		// New York leaves summer time on 2026-11-01: November is 30 days and an hour.
		"November in New York is an hour long": {
			w: Window{Calendar: CalendarMonth, Location: ny}, at: time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC),
			start: time.Date(2026, 11, 1, 4, 0, 0, 0, time.UTC), end: time.Date(2026, 12, 1, 5, 0, 0, 0, time.UTC),
			period: 30*Day + time.Hour,
		},
		// 2026-11-21 is a Saturday; its ISO week starts Monday 16th.
		"an ISO week starts on Monday": {
			w: Window{Calendar: CalendarWeek}, at: time.Date(2026, 11, 21, 23, 0, 0, 0, time.UTC),
			start: time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC), end: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
			period: 7 * Day,
		},
		"a Sunday still belongs to the week that began on Monday": {
			w: Window{Calendar: CalendarWeek}, at: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC),
			start: time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC), end: time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC),
			period: 7 * Day,
		},
		"the fourth quarter runs from October to December": {
			w: Window{Calendar: CalendarQuarter}, at: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC),
			start: time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC), end: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC),
			period: 92 * Day,
		},
		"a year is calendar-aligned": {
			w: Window{Calendar: CalendarYear}, at: time.Date(2028, 6, 1, 0, 0, 0, 0, time.UTC),
			start: time.Date(2028, 1, 1, 0, 0, 0, 0, time.UTC), end: time.Date(2029, 1, 1, 0, 0, 0, 0, time.UTC),
			period: 366 * Day,
		},
		"a rolling window ends at the instant": {
			w: Rolling(30 * Day), at: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC),
			start: time.Date(2026, 10, 22, 0, 0, 0, 0, time.UTC), end: time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC),
			period: 30 * Day,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			start, end := tc.w.Bounds(tc.at)
			if !start.Equal(tc.start) || !end.Equal(tc.end) {
				t.Errorf("bounds %v – %v, want %v – %v", start.UTC(), end.UTC(), tc.start, tc.end)
			}
			if p := tc.w.Period(tc.at); p != tc.period {
				t.Errorf("period %v, want %v", p, tc.period)
			}
			r := tc.w.Range(tc.at)
			if !r.Start.Equal(tc.start) || !r.End.Equal(tc.at) && tc.w.IsCalendar() {
				t.Errorf("range %v", r)
			}
		})
	}
}
