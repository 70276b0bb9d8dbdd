package http

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/chat"
)

// The chat gateway's transports: GET /ws, a WebSocket carrying chat
// commands and events, and the same operations over REST under
// /api/v1/threads for clients that cannot hold a socket. Both hand every
// operation to the chat engine, which asks the service.

// ChatLimits bound the chat's sockets. Zero values take the defaults.
type ChatLimits struct {
	// MaxFrameBytes bounds one frame read from a client (default 16 MiB,
	// room for a 10 MiB attachment in base64).
	MaxFrameBytes int64
	// MessagesPerMinute bounds the frames a user sends, over all of the
	// user's sockets (default 120).
	MessagesPerMinute int
	// IdleTimeout closes a socket that sent nothing for this long
	// (default 10 minutes); PingInterval is the keep-alive (default 30 s).
	IdleTimeout  time.Duration
	PingInterval time.Duration
	// MaxSocketsPerUser bounds a user's concurrent sockets (default 8).
	MaxSocketsPerUser int
	// AuthTimeout bounds the wait for a first frame carrying the token,
	// for browsers that cannot send a header (default 10 s).
	AuthTimeout time.Duration
	// OriginPatterns are the browser origins besides the server's own that
	// may open a socket (see websocket.AcceptOptions).
	OriginPatterns []string
}

func (l *ChatLimits) defaults() {
	if l.MaxFrameBytes <= 0 {
		l.MaxFrameBytes = 16 << 20
	}
	if l.MessagesPerMinute <= 0 {
		l.MessagesPerMinute = 120
	}
	if l.IdleTimeout <= 0 {
		l.IdleTimeout = 10 * time.Minute
	}
	if l.PingInterval <= 0 {
		l.PingInterval = 30 * time.Second
	}
	if l.MaxSocketsPerUser <= 0 {
		l.MaxSocketsPerUser = 8
	}
	if l.AuthTimeout <= 0 {
		l.AuthTimeout = 10 * time.Second
	}
}

// chatState is the server's bookkeeping of open sockets.
type chatState struct {
	mu       sync.Mutex
	sockets  map[*websocket.Conn]struct{}
	perUser  map[string]int
	limiters map[string]*rate.Limiter
	closing  bool
}

// socketBuffer is how many events may wait for a slow client before its
// socket is closed.
const socketBuffer = 256

func (s *Server) chatRoutes(mux *http.ServeMux) {
	if s.cfg.Chat == nil {
		return
	}
	s.cfg.ChatLimits.defaults()
	s.chat = &chatState{sockets: map[*websocket.Conn]struct{}{}, perUser: map[string]int{}, limiters: map[string]*rate.Limiter{}}
	s.route(mux, http.MethodGet, "/ws", http.HandlerFunc(s.handleWS),
		operation{id: "chat_socket", summary: "The chat WebSocket (see docs/chat.md)", tag: "chat", security: securityBearer, scope: gatehouse.ScopeChat})
	doc := func(id, summary string, in, out any) operation {
		return apiDoc(id, summary, in, out).tagged("chat").withScope(gatehouse.ScopeChat)
	}
	s.route(mux, http.MethodGet, "/api/v1/threads", s.authenticated(s.handleListThreads),
		doc("listThreads", "The caller's chat threads in a tenant, newest first", new(threadsQuery), new(chat.ThreadsData)))
	s.route(mux, http.MethodPost, "/api/v1/threads", s.authenticated(s.handleStartThread),
		doc("startThread", "Start a thread, optionally with its first message", new(startThreadBody), new(gatehouse.Thread)))
	s.route(mux, http.MethodGet, "/api/v1/threads/{id}", s.authenticated(s.handleOpenThread),
		doc("openThread", "A thread and its messages", new(threadPath), new(chat.ThreadData)))
	s.route(mux, http.MethodPatch, "/api/v1/threads/{id}", s.authenticated(s.handleRenameThread),
		doc("renameThread", "Rename a thread", new(renameThreadBody), new(gatehouse.Thread)))
	s.route(mux, http.MethodDelete, "/api/v1/threads/{id}", s.authenticated(s.handleDeleteThread),
		doc("deleteThread", "Delete a thread with its messages and attachments", new(threadPath), nil))
	s.route(mux, http.MethodPost, "/api/v1/threads/{id}/messages", s.authenticated(s.handleSubmitMessage),
		doc("submitMessage", "Send a message; the agent answers in the background (poll the thread)", new(messageBody), new(gatehouse.Message)))
	s.route(mux, http.MethodPost, "/api/v1/threads/{id}/attachments", s.authenticated(s.handleUpload),
		doc("uploadAttachment", "Upload a document (the raw body, its Content-Type, ?name=) for a message to carry", new(uploadQuery), new(gatehouse.Attachment)))
	s.route(mux, http.MethodGet, "/api/v1/attachments/{id}", s.authenticated(s.handlePreview),
		doc("previewAttachment", "An attachment and, for text, its content", new(threadPath), new(chat.AttachmentData)))
}

// Parameters and bodies of the chat's REST routes.
type (
	threadsQuery struct {
		Tenant string `query:"tenant" description:"the tenant; else X-Tenant-ID, else the token's tenant claim"`
		Owner  string `query:"owner" description:"another subject's threads (titles only), for holders of the list permission"`
	}
	threadPath struct {
		ID string `path:"id"`
	}
	startThreadBody struct {
		Title   string `json:"title,omitempty"`
		Content string `json:"content,omitempty"`
	}
	renameThreadBody struct {
		ID    string `path:"id" json:"-"`
		Title string `json:"title"`
	}
	messageBody struct {
		ID          string   `path:"id" json:"-"`
		Content     string   `json:"content"`
		Attachments []string `json:"attachments,omitempty"`
	}
	uploadQuery struct {
		ID   string `path:"id"`
		Name string `query:"name" description:"the document's file name"`
	}
)

// chatActor is who a request acts as in the chat: the caller, the
// request's tenant (?tenant=, X-Tenant-ID, the token's tenant) and
// language.
func chatActor(r *http.Request) chat.Actor {
	c := callerOf(r)
	tenant := r.URL.Query().Get("tenant")
	if tenant == "" {
		tenant = r.Header.Get("X-Tenant-ID")
	}
	if tenant == "" {
		tenant = c.Tenant
	}
	return chat.Actor{Caller: c, Tenant: tenant, Lang: language(r.Context()), RequestID: requestID(r.Context())}
}

// writeChatError answers a chat error: its status from its kind, its
// already localized message and code.
func (s *Server) writeChatError(w http.ResponseWriter, r *http.Request, err error) {
	var ce *chat.Error
	if !errors.As(err, &ce) {
		s.writeError(w, r, err)
		return
	}
	code := gatehouse.ErrorCode(ce)
	var reason gatehouse.Reason
	switch {
	case errors.Is(ce, gatehouse.ErrForbidden):
		code, reason = CodeForbidden, gatehouse.Reason(ce.Code)
	case ce.Code == chat.CodeTooLarge:
		code = CodePayloadTooLarge
	case ce.Code == chat.CodeUnsupported:
		code = CodeUnsupportedMediaType
	}
	if StatusCode(code) >= 500 {
		s.cfg.Logger.Error("chat request failed", "request_id", requestID(r.Context()), "err", err)
	}
	s.writeJSON(w, r, StatusCode(code), errorBody{Error: errorDetail{Code: code, Message: ce.Message, Reason: reason}})
}

func (s *Server) handleListThreads(w http.ResponseWriter, r *http.Request) {
	ts, err := s.cfg.Chat.ListThreads(r.Context(), chatActor(r), r.URL.Query().Get("owner"))
	if err != nil {
		s.writeChatError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, chat.ThreadsData{Threads: ts})
}

func (s *Server) handleStartThread(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in startThreadBody
	if err := decodeStrict(body, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.cfg.Chat.StartThread(r.Context(), chatActor(r), in.Title, in.Content)
	if err != nil {
		s.writeChatError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/threads/"+t.ID)
	s.writeJSON(w, r, http.StatusCreated, t)
}

func (s *Server) handleOpenThread(w http.ResponseWriter, r *http.Request) {
	var after int64
	if v := r.URL.Query().Get("after"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			s.writeError(w, r, invalid("error.bad_query", map[string]any{"Name": "after"}).wrap(fmt.Errorf("after %q", v)))
			return
		}
		after = n
	}
	t, msgs, err := s.cfg.Chat.OpenThread(r.Context(), chatActor(r), r.PathValue("id"), after)
	if err != nil {
		s.writeChatError(w, r, err)
		return
	}
	if msgs == nil {
		msgs = []gatehouse.Message{}
	}
	s.writeJSON(w, r, http.StatusOK, chat.ThreadData{Thread: t, Messages: msgs})
}

func (s *Server) handleRenameThread(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in renameThreadBody
	if err := decodeStrict(body, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	t, err := s.cfg.Chat.RenameThread(r.Context(), chatActor(r), r.PathValue("id"), in.Title)
	if err != nil {
		s.writeChatError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, t)
}

func (s *Server) handleDeleteThread(w http.ResponseWriter, r *http.Request) {
	if err := s.cfg.Chat.DeleteThread(r.Context(), chatActor(r), r.PathValue("id")); err != nil {
		s.writeChatError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleSubmitMessage(w http.ResponseWriter, r *http.Request) {
	body, err := s.readBody(w, r)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var in messageBody
	if err := decodeStrict(body, &in); err != nil {
		s.writeError(w, r, err)
		return
	}
	m, err := s.cfg.Chat.SubmitMessage(r.Context(), chatActor(r), r.PathValue("id"), in.Content, in.Attachments)
	if err != nil {
		s.writeChatError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusAccepted, m)
}

// handleUpload stores the raw body as an attachment; it has its own size
// limit, the chat's, instead of the server's JSON body limit.
func (s *Server) handleUpload(w http.ResponseWriter, r *http.Request) {
	limit := s.cfg.Chat.MaxAttachmentBytes()
	a := chatActor(r)
	if r.ContentLength > limit {
		s.writeError(w, r, &Error{Code: CodePayloadTooLarge, Data: map[string]any{"Max": limit}, Err: fmt.Errorf("content length %d", r.ContentLength)})
		return
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			s.writeError(w, r, &Error{Code: CodePayloadTooLarge, Data: map[string]any{"Max": limit}, Err: err})
			return
		}
		s.writeError(w, r, invalid("error.bad_json", nil).wrap(err))
		return
	}
	att, err := s.cfg.Chat.Upload(r.Context(), a, r.PathValue("id"), r.URL.Query().Get("name"), r.Header.Get("Content-Type"), data)
	if err != nil {
		s.writeChatError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusCreated, att)
}

func (s *Server) handlePreview(w http.ResponseWriter, r *http.Request) {
	att, text, err := s.cfg.Chat.Preview(r.Context(), chatActor(r), r.PathValue("id"))
	if err != nil {
		s.writeChatError(w, r, err)
		return
	}
	s.writeJSON(w, r, http.StatusOK, chat.AttachmentData{Attachment: att, Text: text})
}

// handleWS serves the chat socket. The caller authenticates first: a
// bearer header, a token query parameter (browsers cannot set headers on
// a WebSocket; the request log records only the path), or a first frame
// {"type":"auth","token":…}. Then the engine checks the chat's access
// permission: denied, the socket gets a permission_error event and is
// closed with 1008 "Permission denied"; a check that fails closes it with
// 1008 "Permission check failed".
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	lim := s.cfg.ChatLimits
	var caller gatehouse.Caller
	authed := false
	if tok := r.URL.Query().Get("token"); tok != "" && r.Header.Get("Authorization") == "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	if r.Header.Get("Authorization") != "" {
		c, err := s.authenticateAny(r)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		caller, authed = c, true
		if !s.chatClaim(caller.Subject.String()) {
			s.writeError(w, r, &Error{Code: CodeRateLimited, Err: fmt.Errorf("%s has %d chat sockets open", caller.Subject, lim.MaxSocketsPerUser)})
			return
		}
	}
	// The socket outlives the server's write timeout.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Time{})
	_ = rc.SetWriteDeadline(time.Time{})
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{OriginPatterns: lim.OriginPatterns})
	if err != nil {
		if authed {
			s.chatRelease(caller.Subject.String())
		}
		s.cfg.Logger.Debug("chat: websocket handshake", "request_id", requestID(r.Context()), "err", err)
		return
	}
	conn.SetReadLimit(lim.MaxFrameBytes)
	if !s.chatTrack(conn) {
		conn.Close(websocket.StatusGoingAway, "Server shutting down")
		if authed {
			s.chatRelease(caller.Subject.String())
		}
		return
	}
	defer s.chatUntrack(conn)
	ctx := r.Context()
	if !authed {
		c, ok := s.chatAuthFrame(ctx, conn, r)
		if !ok {
			return
		}
		if !s.chatClaim(c.Subject.String()) {
			conn.Close(websocket.StatusPolicyViolation, "Too many chat connections")
			return
		}
		caller = c
	}
	defer s.chatRelease(caller.Subject.String())
	r = s.withCaller(r, caller)
	actor := chatActor(r)
	if l := r.URL.Query().Get("lang"); l != "" {
		actor.Lang = s.cfg.Catalog.Match(l)
	}
	s.serveSocket(gatehouse.NewContext(ctx, caller), conn, actor)
}

// chatAuthFrame reads the first frame of a socket opened without a
// credential; it must be {"type":"auth","token":…}.
func (s *Server) chatAuthFrame(ctx context.Context, conn *websocket.Conn, r *http.Request) (gatehouse.Caller, bool) {
	actx, cancel := context.WithTimeout(ctx, s.cfg.ChatLimits.AuthTimeout)
	defer cancel()
	_, data, err := conn.Read(actx)
	if err != nil {
		conn.Close(websocket.StatusPolicyViolation, "Authentication required")
		return gatehouse.Caller{}, false
	}
	var frame struct {
		Type  string `json:"type"`
		Token string `json:"token"`
	}
	if err := decodeStrict(data, &frame); err != nil || frame.Type != "auth" || frame.Token == "" {
		conn.Close(websocket.StatusPolicyViolation, "Authentication required")
		return gatehouse.Caller{}, false
	}
	ar := r.Clone(ctx)
	ar.Header = r.Header.Clone()
	ar.Header.Set("Authorization", "Bearer "+frame.Token)
	c, err := s.authenticateAny(ar)
	if err != nil {
		conn.Close(websocket.StatusPolicyViolation, "Authentication failed")
		return gatehouse.Caller{}, false
	}
	return c, true
}

// serveSocket runs an authenticated socket until it closes.
func (s *Server) serveSocket(ctx context.Context, conn *websocket.Conn, actor chat.Actor) {
	lim := s.cfg.ChatLimits
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	out := make(chan chat.Event, socketBuffer)
	var overflow sync.Once
	send := func(ev chat.Event) {
		select {
		case out <- ev:
		default:
			// A client that does not read is disconnected rather than
			// letting events pile up.
			overflow.Do(func() {
				s.cfg.Logger.Warn("chat: client too slow, closing its socket", "subject", actor.Caller.Subject.String())
				go conn.Close(websocket.StatusTryAgainLater, "Client too slow")
			})
		}
	}
	writeDone := make(chan struct{})
	go func() {
		defer close(writeDone)
		s.writeEvents(ctx, conn, out)
	}()
	closeWith := func(code websocket.StatusCode, reason string) {
		// Let queued events (the permission_error) reach the client first.
		close(out)
		select {
		case <-writeDone:
		case <-time.After(2 * time.Second):
		}
		conn.Close(code, reason)
	}
	sess, err := s.cfg.Chat.Open(ctx, actor, send)
	if err != nil {
		var ce *chat.Error
		if errors.As(err, &ce) {
			out <- chat.Event{Type: chat.EventPermissionError, Data: chat.ErrorData{Error: ce.Message, Reason: ce.Code, Permission: ce.Permission}}
			closeWith(websocket.StatusPolicyViolation, "Permission denied")
			return
		}
		closeWith(websocket.StatusPolicyViolation, "Permission check failed")
		return
	}
	defer sess.Close()
	s.metrics.chatSockets.Inc()
	defer s.metrics.chatSockets.Dec()
	go s.keepAlive(ctx, conn, cancel)
	limiter := s.chatLimiter(actor.Caller.Subject.String())
	for {
		rctx, rcancel := context.WithTimeout(ctx, lim.IdleTimeout)
		typ, data, err := conn.Read(rctx)
		rcancel()
		if err != nil {
			switch {
			case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
				conn.Close(websocket.StatusNormalClosure, "Idle timeout")
			case websocket.CloseStatus(err) == websocket.StatusMessageTooBig:
				s.metrics.chatFrames.WithLabelValues("too_big").Inc()
			}
			return
		}
		if !limiter.Allow() {
			s.metrics.chatFrames.WithLabelValues("rate_limited").Inc()
			sess.SendError(chat.CodeRateLimited, "chat.rate_limited", nil)
			continue
		}
		if typ != websocket.MessageText {
			s.metrics.chatFrames.WithLabelValues("bad_frame").Inc()
			sess.SendError(chat.CodeBadFrame, "chat.bad_frame", map[string]string{"Problem": "frames are JSON text"})
			continue
		}
		var cmd chat.Command
		if err := decodeStrict(data, &cmd); err != nil {
			s.metrics.chatFrames.WithLabelValues("bad_frame").Inc()
			sess.SendError(chat.CodeBadFrame, "chat.bad_frame", map[string]string{"Problem": frameProblem(err)})
			continue
		}
		s.metrics.chatFrames.WithLabelValues(frameLabel(cmd.Type)).Inc()
		sess.Handle(ctx, cmd)
	}
}

// frameProblem says in English what is wrong with a frame.
func frameProblem(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Err != nil {
		return e.Err.Error()
	}
	return err.Error()
}

// frameLabel is a command type as a metric label: known types, else
// "unknown", so that clients cannot grow the label set.
func frameLabel(t string) string {
	for _, c := range chat.Commands {
		if c == t {
			return t
		}
	}
	return "unknown"
}

// writeEvents writes events to the socket in order until out closes or
// the socket fails.
func (s *Server) writeEvents(ctx context.Context, conn *websocket.Conn, out <-chan chat.Event) {
	var buf bytes.Buffer
	for ev := range out {
		buf.Reset()
		if err := json.NewEncoder(&buf).Encode(ev); err != nil {
			s.cfg.Logger.Error("chat: encode event", "type", ev.Type, "err", err)
			continue
		}
		wctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := conn.Write(wctx, websocket.MessageText, bytes.TrimRight(buf.Bytes(), "\n"))
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Debug("chat: write event", "err", err)
			}
			for range out {
				// Drain, so that senders never block on a dead socket.
			}
			return
		}
	}
}

// keepAlive pings the client; a client that does not answer is closed.
func (s *Server) keepAlive(ctx context.Context, conn *websocket.Conn, cancel context.CancelFunc) {
	t := time.NewTicker(s.cfg.ChatLimits.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, pcancel := context.WithTimeout(ctx, s.cfg.ChatLimits.PingInterval)
			err := conn.Ping(pctx)
			pcancel()
			if err != nil {
				cancel()
				return
			}
		}
	}
}

// chatClaim counts a socket of subject; false at the per-user limit.
func (s *Server) chatClaim(subject string) bool {
	s.chat.mu.Lock()
	defer s.chat.mu.Unlock()
	if s.chat.perUser[subject] >= s.cfg.ChatLimits.MaxSocketsPerUser {
		return false
	}
	s.chat.perUser[subject]++
	return true
}

func (s *Server) chatRelease(subject string) {
	s.chat.mu.Lock()
	defer s.chat.mu.Unlock()
	if s.chat.perUser[subject]--; s.chat.perUser[subject] <= 0 {
		delete(s.chat.perUser, subject)
		delete(s.chat.limiters, subject)
	}
}

// chatLimiter is subject's frame rate limiter, shared by its sockets.
func (s *Server) chatLimiter(subject string) *rate.Limiter {
	s.chat.mu.Lock()
	defer s.chat.mu.Unlock()
	l := s.chat.limiters[subject]
	if l == nil {
		per := s.cfg.ChatLimits.MessagesPerMinute
		l = rate.NewLimiter(rate.Limit(float64(per)/60), max(per/4, 1))
		s.chat.limiters[subject] = l
	}
	return l
}

// chatTrack records an open socket; false once the server is closing.
func (s *Server) chatTrack(c *websocket.Conn) bool {
	s.chat.mu.Lock()
	defer s.chat.mu.Unlock()
	if s.chat.closing {
		return false
	}
	s.chat.sockets[c] = struct{}{}
	return true
}

func (s *Server) chatUntrack(c *websocket.Conn) {
	s.chat.mu.Lock()
	delete(s.chat.sockets, c)
	s.chat.mu.Unlock()
}

// closeChat closes every chat socket with 1001 "Server shutting down";
// http.Server.Shutdown does not wait for hijacked connections.
func (s *Server) closeChat() {
	if s.chat == nil {
		return
	}
	s.chat.mu.Lock()
	s.chat.closing = true
	conns := make([]*websocket.Conn, 0, len(s.chat.sockets))
	for c := range s.chat.sockets {
		conns = append(conns, c)
	}
	s.chat.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Go(func() { c.Close(websocket.StatusGoingAway, "Server shutting down") })
	}
	wg.Wait()
}
