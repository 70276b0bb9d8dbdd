package billing_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gatehouse/gatehouse/billing"
)

// FuzzDecodeEvent: the decoder never panics, and what it accepts has a
// printable id and type and a created time a store can keep.
func FuzzDecodeEvent(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "events", "*.json"))
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(payload))
	f.Add([]byte(`{"id":"evt_1","object":"event","type":"customer.subscription.deleted","created":1,"data":{"object":{"customer":{"id":"c"}}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := billing.DecodeEvent(data)
		if err != nil {
			return
		}
		if e.ID == "" || e.Type == "" || e.Created.Unix() <= 0 || e.Created.Year() > 9999 {
			t.Errorf("DecodeEvent(%q) accepted %+v", data, e)
		}
	})
}

// FuzzVerify: any header is refused or accepted without a panic, and a
// payload signed by Sign always verifies.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1_800_000_000, 0)
	f.Add([]byte(payload), billing.Sign([]byte(payload), secret, now))
	f.Add([]byte("{}"), "t=1800000000,v1=00,v1=zz,t=")
	f.Fuzz(func(t *testing.T, body []byte, header string) {
		_ = billing.Verify(body, header, []string{secret}, billing.DefaultTolerance, now)
		if err := billing.Verify(body, billing.Sign(body, secret, now), []string{secret}, billing.DefaultTolerance, now); err != nil {
			t.Errorf("Verify(Sign(%q)) = %v", body, err)
		}
	})
}
