package main

import (
	"context"
	"fmt"
	"net/http"
)

// gatehouse is a Gatehouse server answering AuthZEN with a shared token.
type gatehouse struct {
	url, token string
}

// evaluation is an AuthZEN evaluation of q: the tool as the action, the
// tenant as the resource.
func evaluation(q question) map[string]any {
	return map[string]any{
		"subject":  map[string]string{"type": "user", "id": q.user},
		"action":   map[string]string{"name": q.tool},
		"resource": map[string]string{"type": "tenant", "id": q.tenant},
	}
}

// evaluationBody is the body of POST /access/v1/evaluation.
func (g *gatehouse) evaluationBody(q question) []byte { return mustJSON(evaluation(q)) }

// batchBody is the body of POST /access/v1/evaluations for qs.
func (g *gatehouse) batchBody(qs []question) []byte {
	items := make([]map[string]any, len(qs))
	for i, q := range qs {
		items[i] = evaluation(q)
	}
	return mustJSON(map[string]any{"evaluations": items})
}

func (g *gatehouse) request(ctx context.Context, path string, body []byte) (*http.Request, error) {
	req, err := newPost(ctx, g.url+path, body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+g.token)
	return req, nil
}

type decisionJSON struct {
	Decision bool `json:"decision"`
}

func (g *gatehouse) decide(ctx context.Context, hc *http.Client, q question) (bool, error) {
	req, err := g.request(ctx, "/access/v1/evaluation", g.evaluationBody(q))
	if err != nil {
		return false, err
	}
	var out decisionJSON
	err = do(hc, req, &out)
	return out.Decision, err
}

func (g *gatehouse) decideBatch(ctx context.Context, hc *http.Client, qs []question) ([]bool, error) {
	req, err := g.request(ctx, "/access/v1/evaluations", g.batchBody(qs))
	if err != nil {
		return nil, err
	}
	var out struct {
		Evaluations []decisionJSON `json:"evaluations"`
	}
	if err := do(hc, req, &out); err != nil {
		return nil, err
	}
	if len(out.Evaluations) != len(qs) {
		return nil, fmt.Errorf("evaluations: %d answers to %d questions", len(out.Evaluations), len(qs))
	}
	answers := make([]bool, len(qs))
	for i, d := range out.Evaluations {
		answers[i] = d.Decision
	}
	return answers, nil
}
