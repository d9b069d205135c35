package alerting

import "net/http"

// OrderKey is the key under which e's messages to one peer are delivered
// one at a time, in the order of their events: for an alert, its SLO and
// severity (a trigger, its re-sends and its resolve; and the next
// incident's trigger after them, since Alertmanager knows the alert by
// these labels). Other events need no order: "".
func (e Event) OrderKey() string {
	if e.Kind != KindAlert || e.Alert == nil {
		return ""
	}
	return "alert/" + e.Alert.Service + "/" + e.Alert.SLO + "/" + string(e.Alert.Severity)
}

// ConfigError is a notifier's error for an answer that says slogate's
// configuration of the peer is wrong rather than the message (401, 403:
// the token; 404: the URL or a proxy's route). Notify returns it with
// retry true: the Dispatcher retries it with back-off until MaxAge, logs
// it at error and counts it as OutcomeConfigError, so a misconfiguration
// never drops a page silently.
type ConfigError struct {
	Status int
	Err    error
}

func (e *ConfigError) Error() string { return e.Err.Error() }

func (e *ConfigError) Unwrap() error { return e.Err }

// Misconfigured reports whether an HTTP status may be a misconfiguration
// (401, 403, 404) to retry as a ConfigError rather than a final refusal.
func Misconfigured(status int) bool {
	return status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusNotFound
}
