package service_test

import (
	"context"
	"testing"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/service"
)

// decide asks svc about req through the one door, as the operator.
func decide(t testing.TB, svc *service.Service, req *gatehouse.Request) gatehouse.Answer {
	t.Helper()
	a, err := svc.Evaluate(context.Background(), gatehouse.Operator, gatehouse.Question{Request: *req})
	if err != nil {
		t.Fatalf("Evaluate(%+v) = %v", req, err)
	}
	return a
}
