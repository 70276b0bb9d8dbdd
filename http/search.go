package http

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/gatehouse/gatehouse/service"
)

// Search page sizes: a request without page.limit gets DefaultSearchLimit
// results per page; a larger limit than MaxSearchLimit is lowered to it.
const (
	DefaultSearchLimit = 100
	MaxSearchLimit     = 1000
)

// searchTarget is what an AuthZEN search looks for.
type searchTarget int

const (
	searchSubject  = searchTarget(service.SearchSubject)
	searchResource = searchTarget(service.SearchResource)
	searchAction   = searchTarget(service.SearchAction)
)

// searchRequest is a parsed Search API request: the evaluation every
// candidate is decided as, with the target's id or name filled in.
type searchRequest struct {
	target   searchTarget
	template evaluation
	limit    int
	// after is the candidate the previous page ended with; "" for the first.
	after string
	// query identifies the search's entities; a page token is only valid
	// for the query it was issued for.
	query string
}

// pageToken is the content of an opaque next_token.
type pageToken struct {
	After string `json:"a"`
	Query string `json:"q"`
}

// parseSearch parses a Search API request for target. The searched-for
// entity needs only its type (its id is ignored); every other entity must
// be complete. Action Search ignores an action.
func parseSearch(body []byte, target searchTarget) (searchRequest, error) {
	top, err := topObject(body)
	if err != nil {
		return searchRequest{}, err
	}
	sr := searchRequest{target: target, limit: DefaultSearchLimit}
	subject, err := parseEntity(top["subject"], "subject", target != searchSubject)
	if err != nil {
		return searchRequest{}, err
	}
	resource, err := parseEntity(top["resource"], "resource", target != searchResource)
	if err != nil {
		return searchRequest{}, err
	}
	var p parts
	if target != searchAction {
		if p, err = parseParts(map[string]json.RawMessage{"action": top["action"]}, ""); err != nil {
			return searchRequest{}, err
		}
	}
	ctx, err := parseAny(top["context"], "context")
	if err != nil {
		return searchRequest{}, err
	}
	switch {
	case subject == nil:
		return searchRequest{}, missingField("subject")
	case resource == nil:
		return searchRequest{}, missingField("resource")
	case target != searchAction && p.action == nil:
		return searchRequest{}, missingField("action")
	}
	sr.template = evaluation{subject: *subject, resource: *resource, context: ctx}
	if p.action != nil {
		sr.template.action = *p.action
	}
	sr.query = queryID(top)
	if err := sr.parsePage(top["page"]); err != nil {
		return searchRequest{}, err
	}
	return sr, nil
}

// parsePage reads page.limit and page.token.
func (sr *searchRequest) parsePage(raw json.RawMessage) error {
	page, err := parseObject(raw, "page")
	if err != nil || page == nil {
		return err
	}
	if raw := page["limit"]; !isNull(raw) {
		var n json.Number
		if first(raw) == '"' || json.Unmarshal(raw, &n) != nil {
			return wrongType("page.limit", "integer")
		}
		limit, err := n.Int64()
		if err != nil || limit < 0 {
			return wrongType("page.limit", "integer")
		}
		// A limit of 0 asks for nothing in particular: the default.
		if limit > 0 {
			sr.limit = int(min(limit, MaxSearchLimit))
		}
	}
	if raw := page["token"]; !isNull(raw) {
		var token string
		if first(raw) != '"' || json.Unmarshal(raw, &token) != nil {
			return wrongType("page.token", "string")
		}
		if token == "" {
			return nil
		}
		var pt pageToken
		b, err := base64.RawURLEncoding.DecodeString(token)
		if err == nil {
			err = json.Unmarshal(b, &pt)
		}
		if err != nil || pt.After == "" {
			return invalid("error.bad_page_token", nil).wrap(fmt.Errorf("page token %q: %v", token, err))
		}
		if pt.Query != sr.query {
			return invalid("error.bad_page_token", nil).wrap(fmt.Errorf("page token of another query"))
		}
		sr.after = pt.After
	}
	return nil
}

// queryID identifies a search by its entities, whatever their spacing and
// key order: a hash of top without page, in encoding/json's canonical form.
func queryID(top map[string]json.RawMessage) string {
	entities := make(map[string]any, len(top))
	for k, raw := range top {
		if k == "page" {
			continue
		}
		var v any
		if json.Unmarshal(raw, &v) == nil {
			entities[k] = v
		}
	}
	b, _ := json.Marshal(entities)
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:12])
}

type searchPage struct {
	NextToken string `json:"next_token"`
	Count     int    `json:"count"`
}

type searchResponse struct {
	Page    searchPage          `json:"page"`
	Context searchContext       `json:"context"`
	Results []service.SearchHit `json:"results"`
}

type searchContext struct {
	// Version is the policy version of the snapshot that decided.
	Version int64 `json:"version"`
}

// handleSearch serves one of the three Search APIs: the service decides
// every candidate as the Access Evaluation API would.
func (s *Server) handleSearch(target searchTarget) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, scope, err := s.authzenRequest(w, r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		sr, err := parseSearch(body, target)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		q := s.question(r, "search", scope, &sr.template)
		res, err := s.svc.Search(r.Context(), callerOf(r), service.Search{
			Target: service.SearchTarget(target), Template: q, After: sr.after, Limit: sr.limit})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		resp := searchResponse{Context: searchContext{Version: res.Version}, Results: res.Hits,
			Page: searchPage{Count: len(res.Hits)}}
		if res.More {
			token, _ := json.Marshal(pageToken{After: res.Last, Query: sr.query})
			resp.Page.NextToken = base64.RawURLEncoding.EncodeToString(token)
		}
		s.writeJSON(w, r, http.StatusOK, resp)
	}
}
