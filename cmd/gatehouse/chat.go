package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/gatehouse/gatehouse"
	"github.com/gatehouse/gatehouse/chat"
	"github.com/gatehouse/gatehouse/chat/openai"
	"github.com/gatehouse/gatehouse/chat/tools"
	gatehttp "github.com/gatehouse/gatehouse/http"
)

// chatFlags are serve's chat gateway flags.
func chatFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.chatModel, "chat-model", "", "serve the chat at /ws and /api/v1/threads with this model: scripted (deterministic rules, offline; see --chat-script) or openai (an OpenAI-compatible API: OPENAI_BASE_URL, OPENAI_API_KEY, GATEHOUSE_CHAT_MODEL)")
	fs.StringVar(&o.chatScript, "chat-script", "", "the scripted model's rules (YAML, see docs/chat.md); default: the demo's")
	fs.StringVar(&o.chatTools, "chat-tools", "", "the chat's tool executors (YAML, see docs/chat.md); default: the demo tools")
	fs.StringVar(&o.chatListOthers, "chat-list-permission", "", "a permission whose holders may list (never read) other users' chat threads in a tenant; default: no one")
}

// toolsFile is the YAML of --chat-tools.
type toolsFile struct {
	// Demo adds the demo tools (synthetic data) to the HTTP ones.
	Demo bool       `yaml:"demo"`
	HTTP []httpTool `yaml:"http"`
}

type httpTool struct {
	URL     string            `yaml:"url"`
	Headers map[string]string `yaml:"headers"`
	Timeout time.Duration     `yaml:"timeout"`
	Tools   []struct {
		Name        string         `yaml:"name"`
		Description string         `yaml:"description"`
		Parameters  map[string]any `yaml:"parameters"`
	} `yaml:"tools"`
}

// chatExecutor reads --chat-tools; without a file, the demo tools.
func chatExecutor(path string) (chat.Executor, error) {
	if path == "" {
		return tools.Demo{}, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, usage("bad_value", "Flag", "--chat-tools", "Detail", err)
	}
	var f toolsFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, gatehouse.Invalidf("%s: %v", path, err)
	}
	var mux tools.Mux
	if f.Demo {
		mux = append(mux, tools.Demo{})
	}
	for i, h := range f.HTTP {
		var specs []chat.ToolSpec
		for _, t := range h.Tools {
			spec := chat.ToolSpec{Name: t.Name, Description: t.Description}
			if t.Parameters != nil {
				if spec.Parameters, err = json.Marshal(t.Parameters); err != nil {
					return nil, gatehouse.Invalidf("%s: http[%d] tool %s: parameters: %v", path, i, t.Name, err)
				}
			}
			specs = append(specs, spec)
		}
		x, err := tools.NewHTTP(tools.HTTP{URL: h.URL, Headers: h.Headers, Timeout: h.Timeout, Specs: specs})
		if err != nil {
			return nil, fmt.Errorf("%s: http[%d]: %w", path, i, err)
		}
		mux = append(mux, x)
	}
	if len(mux) == 0 {
		return nil, gatehouse.Invalidf("%s: no tools: set demo: true or list http executors", path)
	}
	return mux, nil
}

// chatModel is the model of --chat-model.
func chatModel(name, script string) (chat.Model, error) {
	switch name {
	case "openai":
		cfg, err := openai.ConfigFromEnv()
		if err != nil {
			return nil, err
		}
		return openai.New(cfg)
	case "scripted":
		if script == "" {
			return chat.DefaultScripted(), nil
		}
		data, err := os.ReadFile(script)
		if err != nil {
			return nil, usage("bad_value", "Flag", "--chat-script", "Detail", err)
		}
		return chat.ParseScript(data)
	}
	return nil, usage("chat_model", "Model", name)
}

// loadChat starts the chat engine with model and tools, if a model is
// named, and sets cfg.Chat; the returned function stops it.
func (m *Main) loadChat(cfg *gatehttp.Config, model, script, toolsPath, listOthers string) (func(), error) {
	if model == "" {
		return func() {}, nil
	}
	threads, ok := m.store.(gatehouse.ThreadStore)
	if !ok {
		return nil, fmt.Errorf("the %s store keeps no chat threads", m.Config.storeName())
	}
	mdl, err := chatModel(model, script)
	if err != nil {
		return nil, err
	}
	exec, err := chatExecutor(toolsPath)
	if err != nil {
		return nil, err
	}
	e, err := chat.New(chat.Config{Decider: m.svc, Threads: threads, Model: mdl, Executor: exec, Catalog: m.catalog, Logger: cfg.Logger,
		ListOthersPermission: listOthers})
	if err != nil {
		return nil, err
	}
	cfg.Chat = e
	return e.Close, nil
}
