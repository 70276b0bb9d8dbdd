package main

import (
	"flag"
	"time"

	gatehttp "github.com/gatehouse/gatehouse/http"
	"github.com/gatehouse/gatehouse/web"
)

func webFlags(fs *flag.FlagSet, o *options) {
	fs.BoolVar(&o.web, "web", true, "serve the dashboard and chat UI at / (see docs/web.md)")
	fs.DurationVar(&o.webSessionTTL, "web-session-ttl", 8*time.Hour, "how long a browser session lasts after sign-in")
}

// loadWeb puts the browser UI in front of cfg's API, offering demo on its
// sign-in page; without --web it does nothing.
func (m *Main) loadWeb(cfg *gatehttp.Config, demo []web.DemoUser) error {
	if !m.opts.web {
		return nil
	}
	wc := web.DefaultConfig()
	wc.Catalog, wc.Logger, wc.DemoUsers = m.catalog, cfg.Logger, demo
	wc.SessionTTL = m.opts.webSessionTTL
	ui, err := web.New(wc)
	if err != nil {
		return usageErrorf("%v", err)
	}
	cfg.Web = ui.Wrap
	return nil
}
