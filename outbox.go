package slogate

import "time"

// OutboxMessage is a notification to deliver to a peer, durably: it is
// enqueued in the transaction of the event that causes it and stays until
// it is marked delivered.
type OutboxMessage struct {
	ID int64
	// Key is unique in the outbox: peer + "/" + the notifier's key. A
	// second message with a key already enqueued is ignored.
	Key           string
	Peer          string    // e.g. "grafana", "pagerduty"
	Payload       []byte    // alerting: the Event as JSON
	Attempts      int       // claims so far, the current one included
	NextAttemptAt time.Time // defaults to CreatedAt
	// CreatedAt is the event's time (defaults to now): messages of one
	// OrderKey are delivered in its order.
	CreatedAt   time.Time
	DeliveredAt *time.Time
	LastError   string
	// OrderKey, when set, orders the messages of one peer that share it
	// (one alert: a trigger and its resolve): only the oldest undelivered
	// one (by CreatedAt, then ID) is claimed, so they are delivered one at
	// a time in the order their events happened.
	OrderKey string
	// Supersedes, on enqueue, gives up every older undelivered message of
	// the same peer and OrderKey that is not claimed (a resolve makes an
	// undelivered trigger moot). Not stored.
	Supersedes bool
	// EnqueuedAt is when the message was queued, set by the store; a
	// message's maximum age counts from it.
	EnqueuedAt time.Time
}
