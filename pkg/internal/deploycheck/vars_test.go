package deploycheck

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"github.com/sethvargo/go-envconfig"

	"github.com/sfsync/sfsync/pkg/broker"
	"github.com/sfsync/sfsync/pkg/detector"
	"github.com/sfsync/sfsync/pkg/logging"
	"github.com/sfsync/sfsync/pkg/prestashop"
	"github.com/sfsync/sfsync/pkg/sender"
	"github.com/sfsync/sfsync/pkg/service"
	"github.com/sfsync/sfsync/pkg/sfsandbox"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/ticketpoller"
)

const pkgPath = "github.com/sfsync/sfsync/pkg"

// configTypes are pkg's configuration structs, by import path and type
// name. A service reads the variables of each one it holds as a field
// (TestConfigTypesComplete keeps this list in step with pkg).
var configTypes = map[string]reflect.Type{
	pkgPath + "/service.Config":      reflect.TypeFor[service.Config](),
	pkgPath + "/logging.Config":      reflect.TypeFor[logging.Config](),
	pkgPath + "/broker.Config":       reflect.TypeFor[broker.Config](),
	pkgPath + "/prestashop.Config":   reflect.TypeFor[prestashop.Config](),
	pkgPath + "/detector.Config":     reflect.TypeFor[detector.Config](),
	pkgPath + "/sender.Config":       reflect.TypeFor[sender.Config](),
	pkgPath + "/shoppingfeed.Config": reflect.TypeFor[shoppingfeed.Config](),
	pkgPath + "/sfsandbox.Config":    reflect.TypeFor[sfsandbox.Config](),
	pkgPath + "/ticketpoller.Config": reflect.TypeFor[ticketpoller.Config](),
}

// goRuntimeVars are read by the Go runtime of every binary.
var goRuntimeVars = []string{"GOMEMLIMIT", "GOMAXPROCS", "GOGC", "GODEBUG"}

// listenVars name a service's HTTP listen address, in order of preference:
// the ops server of the workers, then the sandbox's API.
var listenVars = []string{"HTTP_ADDR", "SANDBOX_ADDR"}

// vars maps a variable to its default ("" when it has none).
type vars map[string]string

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// envTag splits a go-envconfig tag into the variable and its options.
func envTag(tag string) (key string, opts map[string]string) {
	parts := strings.Split(tag, ",")
	opts = map[string]string{}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		opts[k] = v
	}
	return strings.TrimSpace(parts[0]), opts
}

var decoderType = reflect.TypeFor[envconfig.Decoder]()

// isLeaf reports whether go-envconfig reads t from one variable rather than
// walking its fields.
func isLeaf(t reflect.Type) bool {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Kind() != reflect.Struct || t.Implements(decoderType) || reflect.PointerTo(t).Implements(decoderType)
}

// typeVars adds to into the variables that go-envconfig reads into a value
// of type t, as go-envconfig walks it: a tagged field is one variable (with
// the prefixes of the structs above it), an untagged struct field is walked,
// with its tag's prefix= if any. seen collects every struct type walked.
func typeVars(t reflect.Type, prefix string, into vars, seen map[reflect.Type]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	seen[t] = true
	for i := range t.NumField() {
		f := t.Field(i)
		key, opts := envTag(f.Tag.Get("env"))
		switch {
		case key != "":
			into[prefix+key] = opts["default"]
		case !isLeaf(f.Type) && (f.IsExported() || f.Anonymous):
			typeVars(f.Type, prefix+opts["prefix"], into, seen)
		}
	}
}

// serviceNames lists the service binaries: the directories of services/
// that hold a Go module.
func serviceNames(root string) ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "services"))
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if _, err := os.Stat(filepath.Join(root, "services", e.Name(), "go.mod")); err == nil && e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// serviceVars returns the variables the binary of services/<name> reads:
// those of every pkg configuration struct that a struct of its non-test
// sources holds as a field (embedded or named), plus its own env tags.
func serviceVars(root, name string) (vars, error) {
	out := vars{}
	seen := map[reflect.Type]bool{}
	fset := token.NewFileSet()
	err := filepath.WalkDir(filepath.Join(root, "services", name), func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".")) {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		imports := map[string]string{}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			local := p[strings.LastIndex(p, "/")+1:]
			if imp.Name != nil {
				local = imp.Name.Name
			}
			imports[local] = p
		}
		ast.Inspect(f, func(n ast.Node) bool {
			st, ok := n.(*ast.StructType)
			if !ok {
				return true
			}
			for _, field := range st.Fields.List {
				var key string
				opts := map[string]string{}
				if field.Tag != nil {
					tag, _ := strconv.Unquote(field.Tag.Value)
					key, opts = envTag(reflect.StructTag(tag).Get("env"))
				}
				if key != "" {
					out[key] = opts["default"]
					continue
				}
				typ := field.Type
				if star, ok := typ.(*ast.StarExpr); ok {
					typ = star.X
				}
				sel, ok := typ.(*ast.SelectorExpr)
				if !ok {
					continue
				}
				x, ok := sel.X.(*ast.Ident)
				if !ok {
					continue
				}
				if t, ok := configTypes[imports[x.Name]+"."+sel.Sel.Name]; ok {
					typeVars(t, opts["prefix"], out, seen)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read services/%s: %w", name, err)
	}
	return out, nil
}

// listenPort returns the port a service listens on, from env (what the
// deployment sets) or the default of its listen variable.
func listenPort(known vars, env map[string]string) (port, variable string, ok bool) {
	for _, v := range listenVars {
		def, reads := known[v]
		if !reads {
			continue
		}
		addr := def
		if set, ok := env[v]; ok {
			addr = set
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil || port == "" {
			return "", v, false
		}
		return port, v, true
	}
	return "", "", false
}
