package deploycheck

import (
	"bytes"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

const composePath = "docker-compose.yml"

// composeFile is the part of the Compose specification that
// docker-compose.yml uses. The file is decoded strictly: a key that is not
// modelled here (a misspelt one, or a new one the checks do not know yet)
// fails the check instead of being ignored.
type composeFile struct {
	Name     string                    `yaml:"name"`
	Services map[string]composeService `yaml:"services"`
	Volumes  map[string]any            `yaml:"volumes"`
	// Extensions are the top-level x- keys that hold the YAML anchors.
	Extensions map[string]yaml.Node `yaml:",inline"`
}

type composeService struct {
	Image           string              `yaml:"image"`
	Build           *composeBuild       `yaml:"build"`
	Command         []string            `yaml:"command"`
	Restart         string              `yaml:"restart"`
	Environment     envMap              `yaml:"environment"`
	EnvFile         stringList          `yaml:"env_file"`
	DependsOn       dependsOn           `yaml:"depends_on"`
	Healthcheck     *composeHealthcheck `yaml:"healthcheck"`
	Deploy          *composeDeploy      `yaml:"deploy"`
	Ports           []string            `yaml:"ports"`
	Volumes         []string            `yaml:"volumes"`
	StopGracePeriod string              `yaml:"stop_grace_period"`
}

type composeBuild struct {
	Context    string            `yaml:"context"`
	Dockerfile string            `yaml:"dockerfile"`
	Target     string            `yaml:"target"`
	Args       map[string]string `yaml:"args"`
}

// UnmarshalYAML takes the short form (the context) or the long one.
func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	if err := strictKeys(n, "build", "context", "dockerfile", "target", "args"); err != nil {
		return err
	}
	type plain composeBuild
	return n.Decode((*plain)(b))
}

type composeHealthcheck struct {
	Test        []string `yaml:"test"`
	Interval    string   `yaml:"interval"`
	Timeout     string   `yaml:"timeout"`
	Retries     int      `yaml:"retries"`
	StartPeriod string   `yaml:"start_period"`
	Disable     bool     `yaml:"disable"`
}

type composeDeploy struct {
	Replicas *int `yaml:"replicas"`
}

// envMap is environment: in its map or its list ("KEY=value") form.
type envMap map[string]string

func (e *envMap) UnmarshalYAML(n *yaml.Node) error {
	out := envMap{}
	switch n.Kind {
	case yaml.SequenceNode:
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, kv := range list {
			k, v, _ := strings.Cut(kv, "=")
			out[k] = v
		}
	default:
		var m map[string]any
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			if v == nil {
				out[k] = ""
			} else {
				out[k] = fmt.Sprint(v)
			}
		}
	}
	*e = out
	return nil
}

// stringList is a string or a list of strings (env_file).
type stringList []string

func (l *stringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = stringList{n.Value}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*l = list
	return nil
}

// dependsOn is depends_on: a list of services, or a map to conditions.
type dependsOn map[string]string

func (d *dependsOn) UnmarshalYAML(n *yaml.Node) error {
	out := dependsOn{}
	if n.Kind == yaml.SequenceNode {
		var list []string
		if err := n.Decode(&list); err != nil {
			return err
		}
		for _, s := range list {
			out[s] = "service_started"
		}
		*d = out
		return nil
	}
	var m map[string]yaml.Node
	if err := n.Decode(&m); err != nil {
		return err
	}
	for name, node := range m {
		if err := strictKeys(&node, "depends_on."+name, "condition", "restart", "required"); err != nil {
			return err
		}
		var c struct {
			Condition string `yaml:"condition"`
		}
		if err := node.Decode(&c); err != nil {
			return err
		}
		if c.Condition == "" {
			c.Condition = "service_started"
		}
		out[name] = c.Condition
	}
	*d = out
	return nil
}

// strictKeys fails on a key of mapping n (merges resolved) outside allowed:
// a custom unmarshaler does not inherit the decoder's KnownFields.
func strictKeys(n *yaml.Node, where string, allowed ...string) error {
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		return err
	}
	for k := range m {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return fmt.Errorf("%s: key %q is not one the checks know (%s)", where, k, strings.Join(allowed, ", "))
		}
	}
	return nil
}

// thirdPartyEnv are the variables that the entrypoints of the third-party
// images in docker-compose.yml document; the rest of their configuration is
// their command line.
var thirdPartyEnv = map[string][]string{
	// https://hub.docker.com/_/mysql, "Environment Variables".
	"mysql": {"MYSQL_ROOT_PASSWORD", "MYSQL_DATABASE", "MYSQL_USER", "MYSQL_PASSWORD",
		"MYSQL_ALLOW_EMPTY_PASSWORD", "MYSQL_RANDOM_ROOT_PASSWORD", "MYSQL_ONETIME_PASSWORD",
		"MYSQL_ROOT_HOST", "MYSQL_INITDB_SKIP_TZINFO"},
	// nats-server reads no variable of its own; these are the ones that
	// deployments/compose/nats.conf references ($NATS_USER).
	"nats": {"NATS_USER", "NATS_PASSWORD"},
	// https://mailpit.axllent.org/docs/configuration/runtime-options/
	"axllent/mailpit": {"MP_MAX_MESSAGES", "MP_SMTP_AUTH_ACCEPT_ANY", "MP_SMTP_AUTH_ALLOW_INSECURE",
		"MP_UI_BIND_ADDR", "MP_SMTP_BIND_ADDR", "MP_DATABASE", "TZ"},
}

// readCompose decodes docker-compose.yml strictly.
func (r *repo) readCompose() (*composeFile, error) {
	b, err := os.ReadFile(filepath.Join(r.root, composePath))
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(interpolateDefaults(b)))
	dec.KnownFields(true)
	var cf composeFile
	if err := dec.Decode(&cf); err != nil {
		return nil, fmt.Errorf("%s: %w", composePath, err)
	}
	return &cf, nil
}

// checkCompose checks docker-compose.yml.
func checkCompose(r *repo) error {
	var p problems
	cf, err := r.readCompose()
	if err != nil {
		return err
	}
	for _, k := range sortedKeys(cf.Extensions) {
		if !strings.HasPrefix(k, "x-") {
			p.add("%s: top-level key %q is neither a Compose key the checks know nor an x- extension", composePath, k)
		}
	}
	if len(cf.Services) == 0 {
		p.add("%s: no services", composePath)
	}
	df := r.readDockerfile(&p)
	adopted := map[string]bool{}
	for _, name := range sortedKeys(cf.Services) {
		s := cf.Services[name]
		where := fmt.Sprintf("%s service %q", composePath, name)
		svc := composeImage(r, df, where, s, &p)

		// Every variable, of environment or of an env_file, is one the
		// receiving program reads.
		env := envMap{}
		for _, f := range s.EnvFile {
			vars, err := readEnvFile(filepath.Join(r.root, f))
			if err != nil {
				p.add("%s: env_file: %v", where, err)
			}
			for k, v := range vars {
				env[k] = v
			}
		}
		for k, v := range s.Environment {
			env[k] = v
		}
		// A bind mount's source is a file of the repository.
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
				if _, err := os.Stat(filepath.Join(r.root, src)); err != nil {
					p.add("%s mounts %s: %v", where, src, err)
				}
			}
		}
		for _, k := range sortedKeys(env) {
			switch {
			case svc != "" && !r.reads(svc, k):
				p.add("%s sets %s, which %s does not read (services/%s and its pkg config structs)", where, k, svc, svc)
			case svc == "":
				repo, _ := splitImage(s.Image)
				if !contains(thirdPartyEnv[repo], k) {
					p.add("%s sets %s, which is not a variable of %s's entrypoint (thirdPartyEnv)", where, k, repo)
				}
			}
		}

		for dep, cond := range s.DependsOn {
			d, ok := cf.Services[dep]
			switch {
			case !ok:
				p.add("%s depends on %q, which is not a service", where, dep)
			case cond == "service_healthy" && (d.Healthcheck == nil || d.Healthcheck.Disable):
				p.add("%s waits for %q to be healthy, but it has no health check", where, dep)
			case cond == "service_completed_successfully":
				if d.Restart != "no" {
					p.add("%s waits for %q to complete, but it restarts (restart: %q)", where, dep, d.Restart)
				}
				if s.Restart != "no" {
					adopted[dep] = true
				}
			case cond != "service_healthy" && cond != "service_started":
				p.add("%s: depends_on %q has condition %q", where, dep, cond)
			}
		}

		replicas := 1
		if s.Deploy != nil && s.Deploy.Replicas != nil {
			replicas = *s.Deploy.Replicas
		}
		if replicas > 1 {
			for _, port := range s.Ports {
				if hostPort(port) != "" {
					p.add("%s has %d replicas but publishes the fixed host port of %q: the second replica cannot bind it", where, replicas, port)
				}
			}
		}

		if s.Restart == "no" {
			continue // a one-shot task; adoption checked below
		}
		if s.Restart != "unless-stopped" && s.Restart != "always" {
			p.add("%s: restart is %q; a long-running service wants unless-stopped", where, s.Restart)
		}
		if s.Healthcheck == nil || s.Healthcheck.Disable || len(s.Healthcheck.Test) < 2 {
			p.add("%s has no health check (make up waits for every service to be healthy)", where)
			continue
		}
		checkComposeProbe(r, df, where, svc, s, &p)
	}
	// `docker compose up --wait` fails on a one-shot container that exits,
	// unless a long-running service waits for it to complete.
	for _, name := range sortedKeys(cf.Services) {
		if cf.Services[name].Restart == "no" && !adopted[name] {
			p.add("%s service %q runs once, but no long-running service depends on it with service_completed_successfully: `docker compose up --wait` would fail", composePath, name)
		}
	}
	return p.err()
}

// composeImage checks where a service's image comes from and returns the
// sfsync service it runs, or "" for a third-party image.
func composeImage(r *repo, df *dockerfile, where string, s composeService, p *problems) string {
	if s.Build == nil {
		repo, _ := splitImage(s.Image)
		switch {
		case s.Image == "":
			p.add("%s has neither image nor build", where)
		case !pinned(s.Image):
			p.add("%s: image %s is not pinned to a version", where, s.Image)
		case !hasKey(thirdPartyEnv, repo):
			p.add("%s: third-party image %s: list its entrypoint's variables in thirdPartyEnv", where, s.Image)
		}
		return ""
	}
	b := s.Build
	ctx := filepath.Join(r.root, b.Context)
	if filepath.Clean(ctx) != filepath.Clean(r.root) {
		p.add("%s: build context %q is not the repository root, which the Dockerfile copies pkg/, proto/ and services/ from", where, b.Context)
	}
	dockerfile := b.Dockerfile
	if dockerfile == "" {
		dockerfile = "Dockerfile"
	}
	if rel, _ := filepath.Rel(r.root, filepath.Join(ctx, dockerfile)); rel != dockerfilePath {
		p.add("%s builds %s, not %s", where, rel, dockerfilePath)
	} else if _, err := os.Stat(filepath.Join(ctx, dockerfile)); err != nil {
		p.add("%s: %v", where, err)
	}
	svc := b.Args["SERVICE"]
	if !r.isService(svc) {
		p.add("%s: build arg SERVICE=%q is not one of the services %v", where, svc, r.services)
		svc = ""
	}
	if df != nil {
		for arg := range b.Args {
			if !df.image(b.Target).args[arg] && !hasKey(df.args, arg) {
				p.add("%s: build arg %s is not an ARG of target %q", where, arg, b.Target)
			}
		}
		if b.Target != "" && df.stage(b.Target) == nil {
			p.add("%s: build target %q is not a stage of %s", where, b.Target, dockerfilePath)
		}
	}
	return svc
}

// checkComposeProbe checks a health check that runs a program of our image:
// the image has it, it is one of the services' binaries, the command line
// works as a probe when that binary runs it, and the URL it probes is the
// service's listen port.
func checkComposeProbe(r *repo, df *dockerfile, where, svc string, s composeService, p *problems) {
	test := s.Healthcheck.Test
	if svc == "" || df == nil || test[0] != "CMD" {
		if svc != "" && test[0] != "CMD" {
			p.add("%s: health check %v needs a shell, which the distroless image lacks; use CMD", where, test)
		}
		return
	}
	target := s.Build.Target
	if target == "" {
		target = df.stages[len(df.stages)-1].name
	}
	if !df.image(target).files[test[1]] {
		p.add("%s: health check runs %s, which target %q of %s does not hold", where, test[1], target, dockerfilePath)
	} else if bin := df.binary(target, test[1], s.Build.Args); !r.isService(bin) {
		p.add("%s: health check runs %s, which target %q of %s does not build from a service", where, test[1], target, dockerfilePath)
	} else if err := runHealthcheck(r.bins, bin, test); err != nil {
		p.add("%s: %v", where, err)
	}
	port, variable, ok := listenPort(r.vars[svc], s.Environment)
	for _, arg := range test[2:] {
		u, err := url.Parse(arg)
		if err != nil || u.Host == "" {
			continue
		}
		if !ok {
			p.add("%s: health check probes %s, but %s serves no HTTP port", where, arg, svc)
		} else if u.Port() != port {
			p.add("%s: health check probes port %s, but %s listens on %s (%s)", where, u.Port(), svc, port, variable)
		}
	}
}

var composeVar = regexp.MustCompile(`\$\{[A-Za-z_][A-Za-z0-9_]*:?-([^}]*)\}`)

// interpolateDefaults replaces ${VAR:-default} and ${VAR-default} with the
// default, as Compose does when VAR is unset.
func interpolateDefaults(b []byte) []byte {
	return composeVar.ReplaceAll(b, []byte("$1"))
}

// hostPort returns the host port of a short-syntax port mapping
// ("[ip:]host:container"), "" when the host port is left to Docker.
func hostPort(mapping string) string {
	mapping, _, _ = strings.Cut(mapping, "/")
	parts := strings.Split(mapping, ":")
	switch len(parts) {
	case 2:
		return parts[0]
	case 3:
		return parts[1]
	}
	return ""
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasKey[V any](m map[string]V, k string) bool {
	_, ok := m[k]
	return ok
}
