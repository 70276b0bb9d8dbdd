package billing

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse/gatehouse"
)

// Event types Gatehouse acts on; every other type is acknowledged and
// ignored.
const (
	TypeCheckoutCompleted   = "checkout.session.completed"
	TypeSubscriptionCreated = "customer.subscription.created"
	TypeSubscriptionUpdated = "customer.subscription.updated"
	TypeSubscriptionDeleted = "customer.subscription.deleted"
	TypePaymentFailed       = "invoice.payment_failed"
	// TypeGraceExpired is Gatehouse's own event: a past-due customer's
	// grace period ended (see Next). Providers never send it.
	TypeGraceExpired = "gatehouse.grace_expired"
)

// Handled reports whether Gatehouse acts on events of type typ sent by a
// provider.
func Handled(typ string) bool {
	switch typ {
	case TypeCheckoutCompleted, TypeSubscriptionCreated, TypeSubscriptionUpdated,
		TypeSubscriptionDeleted, TypePaymentFailed:
		return true
	}
	return false
}

// Event is what Gatehouse reads of a provider event: the envelope and, of
// the object it is about (a checkout session, subscription or invoice),
// the customer, the price ids and the statuses.
type Event struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Created time.Time `json:"created"`
	// Customer is the provider's customer id; "" when the object has none.
	Customer string `json:"customer,omitempty"`
	// Prices are the price ids of a subscription's items or a checkout
	// session's line items (or its metadata.price_id), in order.
	Prices []string `json:"prices,omitempty"`
	// Status is a subscription's status (active, past_due, canceled, …).
	Status string `json:"status,omitempty"`
	// Mode and PaymentStatus are a checkout session's.
	Mode          string `json:"mode,omitempty"`
	PaymentStatus string `json:"payment_status,omitempty"`
}

// Limits of what DecodeEvent accepts.
const (
	maxIDLength = 255
	maxPrices   = 100
)

// latestCreated is the last second of the year 9999: later timestamps are
// not dates any store keeps.
const latestCreated = 253402300799

type wireEvent struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Type    string `json:"type"`
	Created int64  `json:"created"`
	Data    struct {
		Object json.RawMessage `json:"object"`
	} `json:"data"`
}

type wireObject struct {
	Customer      json.RawMessage `json:"customer"`
	Status        string          `json:"status"`
	Mode          string          `json:"mode"`
	PaymentStatus string          `json:"payment_status"`
	Metadata      map[string]any  `json:"metadata"`
	Items         *wireList       `json:"items"`
	LineItems     *wireList       `json:"line_items"`
}

type wireList struct {
	Data []struct {
		Price json.RawMessage `json:"price"`
	} `json:"data"`
}

// DecodeEvent parses a provider event (Stripe's JSON shape). It returns an
// error wrapping gatehouse.ErrInvalid for anything but a JSON object with
// object "event", an id and a type of printable text, and a created time
// in seconds since the epoch; for an event of a handled type, also when
// data.object is not an object or names its customer or prices as
// something other than an id or an object with one.
func DecodeEvent(payload []byte) (Event, error) {
	if !utf8.Valid(payload) {
		return Event{}, gatehouse.Invalidf("billing event: not UTF-8")
	}
	var w wireEvent
	if err := json.Unmarshal(payload, &w); err != nil {
		return Event{}, gatehouse.Invalidf("billing event: %v", err)
	}
	switch {
	case w.Object != "event":
		return Event{}, gatehouse.Invalidf("billing event: object %q, want event", w.Object)
	case !isID(w.ID):
		return Event{}, gatehouse.Invalidf("billing event: id %q is not printable text of 1 to %d bytes", w.ID, maxIDLength)
	case !isID(w.Type):
		return Event{}, gatehouse.Invalidf("billing event %s: type %q is not printable text of 1 to %d bytes", w.ID, w.Type, maxIDLength)
	case w.Created <= 0 || w.Created > latestCreated:
		return Event{}, gatehouse.Invalidf("billing event %s: created %d is not a time in seconds since 1970", w.ID, w.Created)
	}
	e := Event{ID: w.ID, Type: w.Type, Created: time.Unix(w.Created, 0).UTC()}
	if !Handled(e.Type) {
		return e, nil
	}
	if !bytes.HasPrefix(bytes.TrimSpace(w.Data.Object), []byte("{")) {
		return Event{}, gatehouse.Invalidf("billing event %s: data.object is not a JSON object", e.ID)
	}
	var o wireObject
	if err := json.Unmarshal(w.Data.Object, &o); err != nil {
		return Event{}, gatehouse.Invalidf("billing event %s: data.object: %v", e.ID, err)
	}
	var err error
	if e.Customer, err = ref(o.Customer); err != nil {
		return Event{}, fmt.Errorf("billing event %s: customer: %w", e.ID, err)
	}
	for _, list := range []*wireList{o.Items, o.LineItems} {
		if list == nil {
			continue
		}
		for _, item := range list.Data {
			price, err := ref(item.Price)
			if err != nil {
				return Event{}, fmt.Errorf("billing event %s: price: %w", e.ID, err)
			}
			if price != "" {
				e.Prices = append(e.Prices, price)
			}
		}
	}
	if price, ok := o.Metadata["price_id"].(string); ok && price != "" {
		e.Prices = append(e.Prices, price)
	}
	if len(e.Prices) > maxPrices {
		return Event{}, gatehouse.Invalidf("billing event %s: %d prices, at most %d", e.ID, len(e.Prices), maxPrices)
	}
	for _, s := range append([]string{o.Status, o.Mode, o.PaymentStatus}, e.Prices...) {
		if s != "" && !isID(s) {
			return Event{}, gatehouse.Invalidf("billing event %s: %q is not printable text of 1 to %d bytes", e.ID, s, maxIDLength)
		}
	}
	e.Status, e.Mode, e.PaymentStatus = o.Status, o.Mode, o.PaymentStatus
	return e, nil
}

// ref reads a reference to a provider object: null, an id, or the object
// expanded, with its id.
func ref(raw json.RawMessage) (string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return "", nil
	}
	var id string
	if raw[0] == '{' {
		var obj struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil {
			return "", gatehouse.Invalidf("%v", err)
		}
		id = obj.ID
	} else if err := json.Unmarshal(raw, &id); err != nil {
		return "", gatehouse.Invalidf("want an id or an object with one: %v", err)
	}
	if id != "" && !isID(id) {
		return "", gatehouse.Invalidf("id %q is not printable text of 1 to %d bytes", id, maxIDLength)
	}
	return id, nil
}

// isID reports whether s is an id Gatehouse stores: 1 to maxIDLength bytes
// of printable text.
func isID(s string) bool {
	if s == "" || len(s) > maxIDLength {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}
