package deploycheck

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// repo is what the checks read: the deployment files under root, and the
// services' binaries and variables (always the real ones: the broken copies
// of the mutation tests change only deployment files).
type repo struct {
	root     string
	services []string
	// vars are the variables each service reads, with their defaults.
	vars map[string]vars
	// bins builds the services' binaries, which the compose health checks
	// run.
	bins *binaries
}

// loadRepo reads the real repository.
func loadRepo(t testing.TB) *repo {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.work")); err != nil {
		t.Fatalf("repository root: %v", err)
	}
	names, err := serviceNames(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatal("no service under services/")
	}
	r := &repo{root: root, services: names, vars: map[string]vars{}, bins: sharedBinaries(root)}
	for _, n := range names {
		v, err := serviceVars(root, n)
		if err != nil {
			t.Fatal(err)
		}
		r.vars[n] = v
	}
	return r
}

// isService reports whether name is one of the service binaries.
func (r *repo) isService(name string) bool {
	for _, s := range r.services {
		if s == name {
			return true
		}
	}
	return false
}

// reads reports whether service svc reads variable v.
func (r *repo) reads(svc, v string) bool {
	if _, ok := r.vars[svc][v]; ok {
		return true
	}
	for _, g := range goRuntimeVars {
		if g == v {
			return true
		}
	}
	return false
}

// problems collects what a check finds.
type problems []error

func (p *problems) add(format string, args ...any) {
	*p = append(*p, fmt.Errorf(format, args...))
}

func (p problems) err() error { return errors.Join(p...) }

// pinned reports whether an image reference names a fixed version: a digest,
// or a tag other than latest.
func pinned(ref string) bool {
	if strings.Contains(ref, "@sha256:") {
		return true
	}
	_, tag := splitImage(ref)
	return tag != "" && tag != "latest"
}

// splitImage splits "host:port/name:tag" into name and tag.
func splitImage(ref string) (name, tag string) {
	ref, _, _ = strings.Cut(ref, "@")
	i := strings.LastIndex(ref, ":")
	if i < 0 || strings.Contains(ref[i:], "/") {
		return ref, ""
	}
	return ref[:i], ref[i+1:]
}
