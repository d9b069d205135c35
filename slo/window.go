package slo

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Calendar is the unit of a calendar-aligned window.
type Calendar string

const (
	CalendarWeek    Calendar = "week"
	CalendarMonth   Calendar = "month"
	CalendarQuarter Calendar = "quarter"
	CalendarYear    Calendar = "year"
)

// Window is an SLO's time window: rolling (the last Duration before an
// instant) or calendar-aligned (the current week, month, quarter or year in
// a time zone).
type Window struct {
	// Rolling windows: the length.
	Duration time.Duration
	// Calendar windows: the unit and the time zone (nil means UTC).
	Calendar Calendar
	Location *time.Location
}

// Rolling returns a rolling window of length d.
func Rolling(d time.Duration) Window { return Window{Duration: d} }

// IsCalendar reports whether the window is calendar-aligned.
func (w Window) IsCalendar() bool { return w.Calendar != "" }

func (w Window) loc() *time.Location {
	if w.Location == nil {
		return time.UTC
	}
	return w.Location
}

// String is the window as written in SLO files: "30d", or "month" with its
// zone, e.g. "month (Europe/Paris)".
func (w Window) String() string {
	if w.IsCalendar() {
		return fmt.Sprintf("%s (%s)", w.Calendar, w.loc())
	}
	return FormatDuration(w.Duration)
}

// Bounds returns the calendar period that contains at: its start and its
// end (exclusive), in the window's time zone, so a month in Europe/Paris
// starts at local midnight whatever daylight-saving time says. For a
// rolling window it is [at − duration, at].
func (w Window) Bounds(at time.Time) (start, end time.Time) {
	if !w.IsCalendar() {
		return at.Add(-w.Duration), at
	}
	t := at.In(w.loc())
	y, m, d := t.Date()
	switch w.Calendar {
	case CalendarWeek:
		// ISO weeks start on Monday.
		offset := (int(t.Weekday()) + 6) % 7
		start = time.Date(y, m, d-offset, 0, 0, 0, 0, w.loc())
		end = time.Date(y, m, d-offset+7, 0, 0, 0, 0, w.loc())
	case CalendarMonth:
		start = time.Date(y, m, 1, 0, 0, 0, 0, w.loc())
		end = time.Date(y, m+1, 1, 0, 0, 0, 0, w.loc())
	case CalendarQuarter:
		q := time.Month((int(m)-1)/3*3 + 1)
		start = time.Date(y, q, 1, 0, 0, 0, 0, w.loc())
		end = time.Date(y, q+3, 1, 0, 0, 0, 0, w.loc())
	case CalendarYear:
		start = time.Date(y, 1, 1, 0, 0, 0, 0, w.loc())
		end = time.Date(y+1, 1, 1, 0, 0, 0, 0, w.loc())
	}
	return start, end
}

// Range is the span measured at instant at: for a rolling window the last
// Duration, for a calendar window from the start of the current period to
// at.
func (w Window) Range(at time.Time) Range {
	start, end := w.Bounds(at)
	if w.IsCalendar() {
		end = at
	}
	return Range{Start: start, End: end}
}

// Period is the full length of the window at instant at: the rolling
// duration, or the length of the calendar period containing at (a month
// with a daylight-saving change is an hour shorter or longer). It sizes the
// burn-rate factors.
func (w Window) Period(at time.Time) time.Duration {
	start, end := w.Bounds(at)
	return end.Sub(start)
}

// NominalPeriod is the period used where no instant is given (generated
// rules): the rolling duration, or 7, 30, 90 or 365 days.
func (w Window) NominalPeriod() time.Duration {
	switch w.Calendar {
	case CalendarWeek:
		return 7 * Day
	case CalendarMonth:
		return 30 * Day
	case CalendarQuarter:
		return 90 * Day
	case CalendarYear:
		return 365 * Day
	}
	return w.Duration
}

// Range is a half-open span of time [Start, End).
type Range struct {
	Start, End time.Time
}

// Duration is End − Start.
func (r Range) Duration() time.Duration { return r.End.Sub(r.Start) }

func (r Range) String() string {
	return r.Start.UTC().Format(time.RFC3339) + "/" + r.End.UTC().Format(time.RFC3339)
}

// Day and Week are the fixed-length units of SLO durations.
const (
	Day  = 24 * time.Hour
	Week = 7 * Day
)

// ParseDuration reads an SLO-file duration: a whole number followed by one
// unit, s, m (minutes), h, d, w, or the OpenSLO calendar units M (month, 30
// days), Q (quarter, 90 days) and Y (year, 365 days). Prometheus-style
// compound durations ("1h30m") are accepted too.
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("empty duration")
	}
	var total time.Duration
	rest := s
	for rest != "" {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("invalid duration %q: want a number and a unit (s, m, h, d, w, M, Q, Y)", s)
		}
		n, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil || n > 1<<20 {
			return 0, fmt.Errorf("invalid duration %q: number out of range", s)
		}
		j := i
		for j < len(rest) && (rest[j] < '0' || rest[j] > '9') {
			j++
		}
		var unit time.Duration
		switch rest[i:j] {
		case "ms":
			unit = time.Millisecond
		case "s":
			unit = time.Second
		case "m":
			unit = time.Minute
		case "h":
			unit = time.Hour
		case "d":
			unit = Day
		case "w":
			unit = Week
		case "M":
			unit = 30 * Day
		case "Q":
			unit = 90 * Day
		case "Y", "y":
			unit = 365 * Day
		case "":
			return 0, fmt.Errorf("invalid duration %q: missing unit (s, m, h, d, w, M, Q, Y)", s)
		default:
			return 0, fmt.Errorf("invalid duration %q: unknown unit %q (want s, m, h, d, w, M, Q, Y)", s, rest[i:j])
		}
		total += time.Duration(n) * unit
		rest = rest[j:]
	}
	if total <= 0 {
		return 0, fmt.Errorf("invalid duration %q: must be positive", s)
	}
	return total, nil
}

// FormatDuration writes a duration in the largest whole unit that fits:
// 30d, 2w is written 14d, 6h, 5m, 90s; mixed values as Prometheus does
// (1h30m).
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		name string
		d    time.Duration
	}{{"d", Day}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond}} {
		if n := d / u.d; n > 0 {
			fmt.Fprintf(&b, "%d%s", n, u.name)
			d -= n * u.d
		}
	}
	return b.String()
}

// calendarUnit maps an OpenSLO calendar window duration to its unit.
func calendarUnit(s string) (Calendar, error) {
	switch strings.TrimSpace(s) {
	case "1w", "7d":
		return CalendarWeek, nil
	case "1M":
		return CalendarMonth, nil
	case "1Q", "3M":
		return CalendarQuarter, nil
	case "1Y", "1y", "12M":
		return CalendarYear, nil
	}
	return "", fmt.Errorf("calendar window %q not supported: want 1w, 1M, 1Q or 1Y", s)
}
