package gatehouse

import "time"

// EventKind says what an Event is about.
type EventKind string

// Event kinds.
const (
	// EventPolicy: a new policy snapshot decides from now on (a change
	// made here, or followed from another instance).
	EventPolicy EventKind = "policy"
	// EventAction: an agent action record moved (reserved pending or
	// confirmed, confirmed, executed, failed, cancelled, expired).
	EventAction EventKind = "action"
	// EventResync: the subscriber fell behind and missed events; it should
	// read afresh what it shows.
	EventResync EventKind = "resync"
)

// Event is a change a subscriber of the service is told about.
type Event struct {
	Kind EventKind `json:"kind"`
	// Version is the policy version current when the event was sent.
	Version int64 `json:"version"`
	// Action is the record as it is after the move, for EventAction.
	Action *ActionRecord `json:"action,omitempty"`
	Time   time.Time     `json:"time"`
}
