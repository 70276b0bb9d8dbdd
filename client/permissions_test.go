package client_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/client"
)

// olga administers acme and its stores: she reads and changes their action
// permissions and limits; carl administers nothing.
func TestActionPermissions(t *testing.T) {
	t.Parallel()
	srv := newGatehouse(t, nil)
	c := newClient(t, srv, olga)
	ctx := context.Background()

	rows, err := c.ActionPermissions(ctx, "acme-milan")
	if err != nil || len(rows) != 7 {
		t.Fatalf("ActionPermissions(acme-milan) = %d rows, %v; want 7", len(rows), err)
	}
	for _, r := range rows {
		if r.ActionType == "cancel_order" && (!r.Enabled || r.EnabledFrom != "tenant:acme" || r.RequiresConfirmation ||
			r.RequiresConfirmationFrom != "tenant:acme-milan" || r.StoreID != "acme-milan" || r.ID == "") {
			t.Errorf("cancel_order in acme-milan = %+v", r)
		}
	}

	row, err := c.SetActionPermission(ctx, "acme-berlin", "update_address", client.ActionPermissionUpdate{Enabled: new(true)})
	if err != nil || !row.Enabled || row.EnabledFrom != "tenant:acme-berlin" || !row.RequiresConfirmation || row.RequiresConfirmationFrom != gatehouse.SourceDefault {
		t.Errorf("SetActionPermission(enabled) = %+v, %v", row, err)
	}
	row, err = c.InheritActionPermission(ctx, "acme-berlin", "update_address")
	if err != nil || row.Enabled || row.EnabledFrom != gatehouse.SourceDefault {
		t.Errorf("InheritActionPermission = %+v, %v", row, err)
	}

	limits, err := c.ActionLimits(ctx, "acme-berlin")
	if err != nil || len(limits) != 4 {
		t.Fatalf("ActionLimits(acme-berlin) = %+v, %v; want 4 rows", limits, err)
	}
	if l := limits[1]; l.ActionType != "process_refund" || l.LimitType != "max_amount" || l.LimitValue != "50.00" || l.Currency != "EUR" ||
		l.Source != "tenant:acme-berlin" {
		t.Errorf("the refund's max_amount in acme-berlin = %+v", l)
	}
	limit, err := c.SetActionLimit(ctx, "acme-milan", client.ActionLimitRequest{ActionType: "process_refund", LimitType: "time_window",
		LimitValue: "5", TimeWindowHours: 1})
	if err != nil || limit.LimitType != "time_window" || limit.LimitValue != "5" || limit.Window != "1h" || limit.TimeWindowHours != 1 ||
		limit.Source != "tenant:acme-milan" {
		t.Errorf("SetActionLimit(time_window) = %+v, %v", limit, err)
	}
	left, err := c.DeleteActionLimit(ctx, "acme-milan", "process_refund", "max_count")
	if err != nil || len(left) != 2 || left[0].LimitType != "max_amount" || left[1].LimitType != "max_total_amount" {
		t.Errorf("DeleteActionLimit(max_count) = %+v, %v; want max_amount and max_total_amount left", left, err)
	}

	_, err = c.SetActionLimit(ctx, "acme-milan", client.ActionLimitRequest{ActionType: "process_refund", LimitType: "max_amount", LimitValue: "-5"})
	checkErr(t, "SetActionLimit(negative)", err, http.StatusBadRequest, gatehouse.CodeInvalid)
	if e := (*client.Error)(nil); !errors.As(err, &e) || e.Field != "limit_value" {
		t.Errorf("SetActionLimit(negative) = %v, want the field limit_value named", err)
	}
	_, err = c.SetActionPermission(ctx, "acme-milan", "launch_rocket", client.ActionPermissionUpdate{Enabled: new(true)})
	checkErr(t, "SetActionPermission(unknown action type)", err, http.StatusNotFound, gatehouse.CodeNotFound)
	_, err = c.DeleteActionLimit(ctx, "acme-milan", "process_refund", "max_count")
	checkErr(t, "DeleteActionLimit(twice)", err, http.StatusNotFound, gatehouse.CodeNotFound)
	_, err = c.ActionPermissions(ctx, "")
	checkErr(t, "ActionPermissions(no tenant, three of hers)", err, http.StatusBadRequest, gatehouse.CodeInvalid)
	if e := (*client.Error)(nil); !errors.As(err, &e) || e.Field != "tenant" {
		t.Errorf("ActionPermissions(no tenant) = %v, want the field tenant named", err)
	}
	_, err = c.ActionLimits(ctx, "globex")
	checkErr(t, "ActionLimits(another organization)", err, http.StatusForbidden, client.CodeForbidden)
	_, err = newClient(t, srv, carl).ActionPermissions(ctx, "acme-berlin")
	checkErr(t, "ActionPermissions as carl", err, http.StatusForbidden, client.CodeForbidden)
}
