package deploycheck

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// dockerfilePath is the one Dockerfile of every sfsync image.
const dockerfilePath = "deployments/docker/Dockerfile"

// dockerfile is what the checks need of a Dockerfile.
type dockerfile struct {
	// args are the global ARGs (before the first FROM) and their defaults.
	args   map[string]string
	stages []*stage
	// serviceCase is the list of SERVICE values the build accepts (the case
	// pattern of the RUN that checks the build arg).
	serviceCase []string
}

type stage struct {
	name string
	// from is the image or the earlier stage it starts from, ARGs expanded.
	from  string
	args  map[string]bool
	files []string // absolute destinations of COPY
	// copies maps a destination of COPY --from=<stage> to that stage and
	// the source path in it.
	copies map[string]copySource
	// builds maps a file that a RUN of this stage writes with `go build -o`
	// to the service directory it builds (`cd services/<dir>`; <dir> may
	// name ${SERVICE}).
	builds     map[string]string
	user       string
	entrypoint []string
}

type copySource struct{ stage, path string }

// instructions splits a Dockerfile into instructions, joining continued
// lines and dropping comments.
func instructions(text string) []string {
	var out []string
	var cur strings.Builder
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(line, "#") || (line == "" && cur.Len() == 0) {
			continue
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			cur.WriteString(cont + " ")
			continue
		}
		cur.WriteString(line)
		out = append(out, strings.TrimSpace(cur.String()))
		cur.Reset()
	}
	if cur.Len() > 0 {
		out = append(out, strings.TrimSpace(cur.String()))
	}
	return out
}

var (
	argRef      = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?`)
	goBuildDir  = regexp.MustCompile(`cd services/(\S+?)/? `)
	goBuildOut  = regexp.MustCompile(`go build .*-o (/\S+)`)
	serviceCase = regexp.MustCompile(`case "\$\{?SERVICE\}?" in ([a-z|]+)\)`)
)

// parseDockerfile reads the parts of a Dockerfile that the checks use.
func parseDockerfile(text string, p *problems) *dockerfile {
	df := &dockerfile{args: map[string]string{}}
	var cur *stage
	for _, ins := range instructions(text) {
		op, rest, _ := strings.Cut(ins, " ")
		rest = strings.TrimSpace(rest)
		fields := strings.Fields(rest)
		switch strings.ToUpper(op) {
		case "ARG":
			for _, f := range fields {
				name, def, _ := strings.Cut(f, "=")
				if cur == nil {
					df.args[name] = def
				} else {
					cur.args[name] = true
				}
			}
		case "FROM":
			var ref, name string
			for i := 0; i < len(fields); i++ {
				switch {
				case strings.HasPrefix(fields[i], "--"):
				case strings.EqualFold(fields[i], "AS") && i+1 < len(fields):
					name = fields[i+1]
					i++
				default:
					ref = fields[i]
				}
			}
			ref = argRef.ReplaceAllStringFunc(ref, func(m string) string {
				return df.args[argRef.FindStringSubmatch(m)[1]]
			})
			cur = &stage{name: name, from: ref, args: map[string]bool{}, copies: map[string]copySource{}, builds: map[string]string{}}
			df.stages = append(df.stages, cur)
		case "COPY", "ADD":
			if cur != nil && len(fields) > 1 && strings.HasPrefix(fields[len(fields)-1], "/") {
				dst := fields[len(fields)-1]
				cur.files = append(cur.files, dst)
				if from, ok := strings.CutPrefix(fields[0], "--from="); ok && len(fields) == 3 {
					cur.copies[dst] = copySource{stage: from, path: fields[1]}
				}
			}
		case "USER":
			if cur != nil {
				cur.user = rest
			}
		case "ENTRYPOINT":
			if cur != nil {
				if err := json.Unmarshal([]byte(rest), &cur.entrypoint); err != nil {
					p.add("%s: ENTRYPOINT %s: use the exec (JSON) form", dockerfilePath, rest)
				}
			}
		case "RUN":
			if m := serviceCase.FindStringSubmatch(rest); m != nil {
				df.serviceCase = strings.Split(m[1], "|")
			}
			dir, out := goBuildDir.FindStringSubmatch(rest), goBuildOut.FindStringSubmatch(rest)
			if cur != nil && dir != nil && out != nil {
				cur.builds[out[1]] = dir[1]
			}
		}
	}
	return df
}

// stage returns the stage called name, or nil.
func (df *dockerfile) stage(name string) *stage {
	for _, s := range df.stages {
		if s.name == name {
			return s
		}
	}
	return nil
}

// chain returns the stages a target is built on, the target last.
func (df *dockerfile) chain(target string) []*stage {
	var out []*stage
	for s := df.stage(target); s != nil; s = df.stage(s.from) {
		out = append([]*stage{s}, out...)
	}
	return out
}

// binary returns the service whose Go binary target's image holds at path:
// the file is copied from a stage that builds it from services/<dir>, with
// ${SERVICE} in dir expanded from args (the build args); "" when the path
// is not such a binary.
func (df *dockerfile) binary(target, path string, args map[string]string) string {
	for _, s := range slices.Backward(df.chain(target)) {
		src, ok := s.copies[path]
		if !ok {
			continue
		}
		for _, b := range slices.Backward(df.chain(src.stage)) {
			if dir, ok := b.builds[src.path]; ok {
				return argRef.ReplaceAllStringFunc(dir, func(m string) string {
					return args[argRef.FindStringSubmatch(m)[1]]
				})
			}
		}
		return ""
	}
	return ""
}

// image describes the image a target of the Dockerfile produces.
type image struct {
	files      map[string]bool
	user       string
	entrypoint []string
	base       string
	args       map[string]bool
}

func (df *dockerfile) image(target string) image {
	img := image{files: map[string]bool{}, args: map[string]bool{}}
	for i, s := range df.chain(target) {
		if i == 0 {
			img.base = s.from
		}
		for _, f := range s.files {
			img.files[f] = true
		}
		for a := range s.args {
			img.args[a] = true
		}
		if s.user != "" {
			img.user = s.user
		}
		if s.entrypoint != nil {
			img.entrypoint = s.entrypoint
		}
	}
	return img
}

// readDockerfile parses the Dockerfile under r.root.
func (r *repo) readDockerfile(p *problems) *dockerfile {
	b, err := os.ReadFile(filepath.Join(r.root, dockerfilePath))
	if err != nil {
		p.add("every image needs a Dockerfile: %v", err)
		return nil
	}
	return parseDockerfile(string(b), p)
}

// checkDockerfile checks that the Dockerfile builds exactly the services,
// from pinned images, into non-root images whose entrypoint exists.
func checkDockerfile(r *repo) error {
	var p problems
	df := r.readDockerfile(&p)
	if df == nil {
		return p.err()
	}
	got := append([]string(nil), df.serviceCase...)
	sort.Strings(got)
	if strings.Join(got, ",") != strings.Join(r.services, ",") {
		p.add("%s accepts SERVICE %v, but the services are %v", dockerfilePath, got, r.services)
	}
	names := map[string]bool{}
	for _, s := range df.stages {
		if s.name != "" {
			names[s.name] = true
		}
	}
	for _, s := range df.stages {
		if names[s.from] || s.from == "scratch" {
			continue
		}
		if !pinned(s.from) {
			p.add("%s: FROM %s is not pinned to a version", dockerfilePath, s.from)
		}
	}
	if len(df.stages) == 0 {
		p.add("%s has no stage", dockerfilePath)
		return p.err()
	}
	// Every stage that is an image to run (the default, last one, and any
	// stage a compose file names) must run the service as a non-root user.
	last := df.stages[len(df.stages)-1]
	if last.name == "" {
		p.add("%s: the last stage (the default target) needs a name", dockerfilePath)
	}
	for _, s := range df.stages {
		img := df.image(s.name)
		if s != last && !names[s.name] || img.entrypoint == nil {
			continue
		}
		checkImage(&p, s.name, img)
	}
	if img := df.image(last.name); img.entrypoint == nil {
		p.add("%s: the default target %q has no ENTRYPOINT", dockerfilePath, last.name)
	}
	return p.err()
}

// checkImage checks a runnable target: a numeric non-root user (so that
// Kubernetes' runAsNonRoot can verify it) and an entrypoint the image holds.
func checkImage(p *problems, target string, img image) {
	uid, _, _ := strings.Cut(img.user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		p.add("%s target %q: USER %q is not a numeric non-root user", dockerfilePath, target, img.user)
	}
	if len(img.entrypoint) > 0 && !img.files[img.entrypoint[0]] {
		p.add("%s target %q: ENTRYPOINT %s is not a file the image copies in", dockerfilePath, target, img.entrypoint[0])
	}
}
