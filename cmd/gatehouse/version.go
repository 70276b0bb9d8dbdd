package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// buildVersion is what `gatehouse version` reports, from the build info
// the Go toolchain embeds.
type buildVersion struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
}

func readVersion(info *debug.BuildInfo, ok bool) buildVersion {
	v := buildVersion{Version: "(unknown)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok {
		return v
	}
	v.Module, v.Go = info.Main.Path, info.GoVersion
	if info.Main.Version != "" {
		v.Version = info.Main.Version
	}
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one line `gatehouse version` prints.
func (v buildVersion) String() string {
	s := "gatehouse " + v.Version
	switch {
	case v.Revision != "":
		s += " revision " + v.Revision
		if v.Modified {
			s += "+dirty"
		}
		if v.Time != "" {
			s += " (" + v.Time + ")"
		}
	default:
		s += " revision unknown"
	}
	return s + " " + v.Go + " " + v.Platform
}

func runVersion(_ context.Context, m *Main) error {
	v := readVersion(debug.ReadBuildInfo())
	if m.opts.jsonOut {
		return writeJSON(m, v)
	}
	_, err := fmt.Fprintln(m.Stdout, v)
	return err
}
