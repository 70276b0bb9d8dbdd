// Command chatclient talks to Gatehouse's chat gateway over its WebSocket,
// as a chat frontend would, and prints what happens: the capabilities the
// user gets, each message, tool call, refusal and confirmation.
//
//	go run ./examples/chatclient -url http://127.0.0.1:8080 -token "$OLGA" -tenant acme-berlin
//
// By default it asks what the assistant can do, for a tool the user may
// not use (loan analysis), for an order lookup, and for a 20 EUR refund,
// which waits for a confirmation that -confirm (default true) gives; pass
// your own messages as arguments instead.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/coder/websocket"
)

type event struct {
	Type string          `json:"event_type"`
	Data json.RawMessage `json:"data"`
}

func main() {
	base := flag.String("url", "http://127.0.0.1:8080", "the Gatehouse server")
	token := flag.String("token", os.Getenv("TOKEN"), "a bearer token (a JWT or an API key with the chat scope)")
	tenant := flag.String("tenant", "acme-berlin", "the tenant to chat in")
	lang := flag.String("lang", "en", "the language of messages: de, en, es, fr, it or zh")
	confirm := flag.Bool("confirm", true, "confirm actions that need it (false: cancel them)")
	flag.Parse()
	msgs := flag.Args()
	if len(msgs) == 0 {
		msgs = []string{"what can you do", "analyze loan L-1001", "order 1042", "refund 20.00 EUR on order 1042"}
	}
	if err := run(*base, *token, *tenant, *lang, *confirm, msgs); err != nil {
		fmt.Fprintln(os.Stderr, "chatclient:", err)
		os.Exit(1)
	}
}

func run(base, token, tenant, lang string, confirm bool, msgs []string) error {
	if token == "" {
		return errors.New("-token is required (the demo prints one per user)")
	}
	u, err := url.Parse(base)
	if err != nil {
		return err
	}
	u.Scheme = map[string]string{"http": "ws", "https": "wss"}[u.Scheme]
	u.Path = "/ws"
	u.RawQuery = url.Values{"tenant": {tenant}, "lang": {lang}}.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, u.String(), &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + token}}})
	if err != nil {
		return fmt.Errorf("connect to %s: %w", u, err)
	}
	defer conn.Close(websocket.StatusNormalClosure, "done")
	send := func(v map[string]any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		return conn.Write(ctx, websocket.MessageText, b)
	}
	thread := ""
	next := 0
	ask := func() error {
		if next == len(msgs) {
			return errDone
		}
		m := msgs[next]
		next++
		fmt.Printf("\n> %s\n", m)
		if thread == "" {
			return send(map[string]any{"type": "start_thread", "content": m})
		}
		return send(map[string]any{"type": "submit_message", "thread_id": thread, "content": m})
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			if s := websocket.CloseStatus(err); s != -1 {
				return fmt.Errorf("the server closed the chat: %v", err)
			}
			return err
		}
		var ev event
		if err := json.Unmarshal(data, &ev); err != nil {
			return fmt.Errorf("a frame that is not an event: %s", data)
		}
		var d map[string]any
		_ = json.Unmarshal(ev.Data, &d)
		switch ev.Type {
		case "capabilities":
			flags, _ := json.Marshal(d["flags"])
			fmt.Printf("capabilities: plan %v, flags %s\n", d["plan"], flags)
			err = ask()
		case "permission_error":
			fmt.Printf("permission error (%v): %v\n", d["reason"], d["error"])
			if d["command"] == nil {
				return nil
			}
		case "thread_created":
			thread = d["thread"].(map[string]any)["id"].(string)
		case "token":
			fmt.Print(d["text"])
		case "chat_tool_error":
			fmt.Printf("\n[tool %v refused or failed (%v): %v]\n", d["tool_name"], d["reason"], d["error"])
		case "tool_result":
			fmt.Printf("\n[tool %v ran]\n", d["tool_name"])
		case "confirmation_required":
			fmt.Printf("\n[confirmation required: %v]\n", d["summary"])
			verb := map[bool]string{true: "confirm", false: "cancel"}[confirm]
			fmt.Printf("[%s action %v]\n", verb, d["action_id"])
			err = send(map[string]any{"type": verb, "action_id": d["action_id"]})
		case "agent.completed", "agent.failed":
			if e, ok := d["error"]; ok {
				fmt.Printf("\n[%s: %v]\n", ev.Type, e)
			} else {
				fmt.Println()
			}
			err = ask()
		case "error":
			fmt.Printf("error (%v): %v\n", d["reason"], d["error"])
		}
		if errors.Is(err, errDone) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

var errDone = errors.New("done")
