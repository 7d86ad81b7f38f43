// Package buildinfo holds what `make build` stamps into every binary
// (version, commit, build date, through -ldflags -X), the --version and
// --help handling the binaries share, and the sfsync_build_info gauge.
package buildinfo

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sfsync/sfsync/pkg/config"
)

// Set by the linker: go build -ldflags "-X github.com/sfsync/sfsync/pkg/buildinfo.version=v1.2.3 ...".
var (
	version = ""
	commit  = ""
	date    = ""
)

// Info is one binary's build.
type Info struct {
	Version, Commit, Date, GoVersion string
}

// Get returns the stamped build, falling back to what the Go toolchain
// records (the VCS revision and time of a plain go build) and to "dev".
func Get() Info {
	i := Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && i.Commit == "":
				i.Commit = s.Value
			case s.Key == "vcs.time" && i.Date == "":
				i.Date = s.Value
			}
		}
	}
	if i.Version == "" {
		i.Version = "dev"
	}
	if i.Commit == "" {
		i.Commit = "unknown"
	}
	if i.Date == "" {
		i.Date = "unknown"
	}
	return i
}

// String is the --version line of binary name.
func (i Info) String() string {
	return fmt.Sprintf("version %s, commit %s, built %s, %s", i.Version, i.Commit, i.Date, i.GoVersion)
}

// Collector is the sfsync_build_info gauge: always 1, the build in its labels.
func Collector() prometheus.Collector {
	i := Get()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "sfsync_build_info",
		Help:        "The running binary's build: always 1, with version, commit and Go version as labels.",
		ConstLabels: prometheus.Labels{"version": i.Version, "commit": i.Commit, "goversion": i.GoVersion},
	})
	g.Set(1)
	return g
}

// UsageError is a command line that could not be understood; binaries exit
// 2 on it.
type UsageError struct{ Err error }

func (e *UsageError) Error() string { return e.Err.Error() }
func (e *UsageError) Unwrap() error { return e.Err }

// ErrDone means the arguments asked for something already answered
// (--help, --version): the binary exits 0 without starting.
var ErrDone = errors.New("answered")

// Args handles the command line of a worker that takes no arguments, only
// environment variables: --version and --help (-h, help) print to stdout and
// return ErrDone; anything else is a UsageError. summary is the binary's one
// line description; cfg its configuration struct, whose variables --help lists.
func Args(name, summary string, args []string, cfg any, stdout io.Writer) error {
	if len(args) == 0 {
		return nil
	}
	switch args[0] {
	case "--version", "-version", "version":
		fmt.Fprintf(stdout, "%s %s\n", name, Get())
		return ErrDone
	case "--help", "-help", "-h", "help":
		fmt.Fprint(stdout, Usage(name, summary, cfg))
		return ErrDone
	}
	return &UsageError{Err: fmt.Errorf("unexpected argument %q: %s takes its configuration from the environment (%s --help lists it)", args[0], name, name)}
}

// Usage is the --help text: the summary and every environment variable cfg
// reads, with its default.
func Usage(name, summary string, cfg any) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s\n\nusage: %s [--help | --version]\n\nenvironment:\n", name, summary, name)
	for _, v := range config.Vars(cfg) {
		switch {
		case v.Required:
			fmt.Fprintf(&b, "  %-36s required\n", v.Name)
		case v.Default != "":
			fmt.Fprintf(&b, "  %-36s default %s\n", v.Name, v.Default)
		default:
			fmt.Fprintf(&b, "  %s\n", v.Name)
		}
	}
	b.WriteString("\nSee README.md for what each variable does.\n")
	return b.String()
}

// Exit is what a binary's main does with run's error: the exit code, the
// error printed on stderr as "name: error" (nothing for ErrDone).
func Exit(name string, err error, stderr io.Writer) int {
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, ErrDone):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "%s: %v\n", name, err)
		return 2
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	return 1
}
