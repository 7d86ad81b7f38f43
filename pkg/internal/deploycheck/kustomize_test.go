package deploycheck

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

const kubeDir = "deployments/kubernetes"

// kustomization is the part of kustomize's Kustomization and Component that
// the tree uses, decoded strictly: a field the checks do not model fails
// them instead of passing unchecked.
type kustomization struct {
	APIVersion         string      `yaml:"apiVersion"`
	Kind               string      `yaml:"kind"`
	Namespace          string      `yaml:"namespace"`
	Resources          []string    `yaml:"resources"`
	Components         []string    `yaml:"components"`
	Patches            []kpatch    `yaml:"patches"`
	ConfigMapGenerator []generator `yaml:"configMapGenerator"`
	SecretGenerator    []generator `yaml:"secretGenerator"`
	Images             []kimage    `yaml:"images"`
}

type kpatch struct {
	Path   string   `yaml:"path"`
	Patch  string   `yaml:"patch"`
	Target *ktarget `yaml:"target"`
}

type ktarget struct {
	Kind          string `yaml:"kind"`
	Name          string `yaml:"name"`
	LabelSelector string `yaml:"labelSelector"`
}

type generator struct {
	Name     string   `yaml:"name"`
	Behavior string   `yaml:"behavior"`
	Envs     []string `yaml:"envs"`
	Literals []string `yaml:"literals"`
	Files    []string `yaml:"files"`
}

type kimage struct {
	Name    string `yaml:"name"`
	NewName string `yaml:"newName"`
	NewTag  string `yaml:"newTag"`
	Digest  string `yaml:"digest"`
}

// The Kubernetes objects, as far as the checks read them.
type (
	k8sMeta struct {
		Name        string            `yaml:"name"`
		Labels      map[string]string `yaml:"labels"`
		Annotations map[string]string `yaml:"annotations"`
	}
	k8sDeployment struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     struct {
			Replicas *int        `yaml:"replicas"`
			Selector k8sSelector `yaml:"selector"`
			Template struct {
				Metadata k8sMeta `yaml:"metadata"`
				Spec     struct {
					SecurityContext struct {
						RunAsNonRoot *bool `yaml:"runAsNonRoot"`
					} `yaml:"securityContext"`
					Containers []k8sContainer `yaml:"containers"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
		// file is where the Deployment was read.
		file string
	}
	k8sSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	k8sContainer struct {
		Name  string `yaml:"name"`
		Image string `yaml:"image"`
		Ports []struct {
			Name          string `yaml:"name"`
			ContainerPort int    `yaml:"containerPort"`
		} `yaml:"ports"`
		Env []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		EnvFrom []struct {
			Prefix       string   `yaml:"prefix"`
			ConfigMapRef *k8sName `yaml:"configMapRef"`
			SecretRef    *k8sName `yaml:"secretRef"`
		} `yaml:"envFrom"`
		LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
		ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
		Resources      struct {
			Requests map[string]string `yaml:"requests"`
			Limits   map[string]string `yaml:"limits"`
		} `yaml:"resources"`
		SecurityContext struct {
			RunAsNonRoot             *bool `yaml:"runAsNonRoot"`
			ReadOnlyRootFilesystem   *bool `yaml:"readOnlyRootFilesystem"`
			AllowPrivilegeEscalation *bool `yaml:"allowPrivilegeEscalation"`
		} `yaml:"securityContext"`
	}
	k8sName struct {
		Name string `yaml:"name"`
	}
	k8sProbe struct {
		HTTPGet *struct {
			Path string    `yaml:"path"`
			Port yaml.Node `yaml:"port"`
		} `yaml:"httpGet"`
	}
	k8sPDB struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     struct {
			Selector k8sSelector `yaml:"selector"`
		} `yaml:"spec"`
	}
	k8sData struct {
		Metadata   k8sMeta           `yaml:"metadata"`
		Data       map[string]string `yaml:"data"`
		StringData map[string]string `yaml:"stringData"`
	}
)

// build is what a kustomization renders to, as far as the checks go.
type build struct {
	deployments []*k8sDeployment
	pdbs        []k8sPDB
	configMaps  map[string]map[string]string
	secrets     map[string]map[string]string
}

func newBuild() *build {
	return &build{configMaps: map[string]map[string]string{}, secrets: map[string]map[string]string{}}
}

func (b *build) add(o *build) {
	b.deployments = append(b.deployments, o.deployments...)
	b.pdbs = append(b.pdbs, o.pdbs...)
	for k, v := range o.configMaps {
		b.configMaps[k] = v
	}
	for k, v := range o.secrets {
		b.secrets[k] = v
	}
}

// kube renders the kustomize tree under root.
type kube struct {
	r    *repo
	p    *problems
	used map[string]bool // files a kustomization refers to
}

func (k *kube) rel(path string) string {
	rel, err := filepath.Rel(k.r.root, path)
	if err != nil {
		return path
	}
	return rel
}

// readKustomization decodes dir/kustomization.yaml strictly.
func (k *kube) readKustomization(dir string) (*kustomization, error) {
	path := filepath.Join(dir, "kustomization.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	k.used[path] = true
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	var kz kustomization
	if err := dec.Decode(&kz); err != nil {
		return nil, fmt.Errorf("%s: %w", k.rel(path), err)
	}
	return &kz, nil
}

// render builds the Kustomization in dir the way kustomize orders it:
// resources, components, generators, then patches and images.
func (k *kube) render(dir string) *build {
	kz, err := k.readKustomization(dir)
	if err != nil {
		k.p.add("%v", err)
		return newBuild()
	}
	if kz.Kind != "" && kz.Kind != "Kustomization" {
		k.p.add("%s/kustomization.yaml: kind %s where a Kustomization is expected", k.rel(dir), kz.Kind)
	}
	b := newBuild()
	k.apply(dir, kz, b)
	return b
}

// apply adds what kustomization kz of dir does to b.
func (k *kube) apply(dir string, kz *kustomization, b *build) {
	where := k.rel(filepath.Join(dir, "kustomization.yaml"))
	for _, res := range kz.Resources {
		path := filepath.Join(dir, res)
		if strings.Contains(res, "://") || strings.HasPrefix(res, "github.com/") {
			k.p.add("%s: remote resource %s cannot be checked offline; vendor it", where, res)
			continue
		}
		st, err := os.Stat(path)
		switch {
		case err != nil:
			k.p.add("%s: resource %s: %v", where, res, err)
		case st.IsDir():
			b.add(k.render(path))
		default:
			k.used[path] = true
			k.readManifests(path, b)
		}
	}
	for _, c := range kz.Components {
		path := filepath.Join(dir, c)
		ckz, err := k.readKustomization(path)
		if err != nil {
			k.p.add("%s: component %s: %v", where, c, err)
			continue
		}
		if ckz.Kind != "Component" {
			k.p.add("%s: component %s is a %s", where, c, ckz.Kind)
		}
		k.apply(path, ckz, b)
	}
	k.generate(dir, where, kz.ConfigMapGenerator, b.configMaps)
	k.generate(dir, where, kz.SecretGenerator, b.secrets)
	for _, pt := range kz.Patches {
		k.patch(dir, where, pt, b)
	}
	for _, d := range b.deployments {
		for i := range d.Spec.Template.Spec.Containers {
			c := &d.Spec.Template.Spec.Containers[i]
			name, tag := splitImage(c.Image)
			for _, img := range kz.Images {
				if img.Name != name {
					continue
				}
				if img.NewName != "" {
					name = img.NewName
				}
				if img.NewTag != "" {
					tag = img.NewTag
				}
				c.Image = name
				if tag != "" {
					c.Image += ":" + tag
				}
				if img.Digest != "" {
					c.Image += "@" + img.Digest
				}
			}
		}
	}
}

// generate runs configMapGenerator or secretGenerator entries into into.
func (k *kube) generate(dir, where string, gens []generator, into map[string]map[string]string) {
	for _, g := range gens {
		data := map[string]string{}
		for _, env := range g.Envs {
			path := filepath.Join(dir, env)
			k.used[path] = true
			kv, err := readEnvFile(path)
			if err != nil {
				k.p.add("%s: generator %s: %v", where, g.Name, err)
			}
			for key, v := range kv {
				data[key] = v
			}
		}
		for _, lit := range g.Literals {
			key, v, ok := strings.Cut(lit, "=")
			if !ok {
				k.p.add("%s: generator %s: literal %q is not KEY=value", where, g.Name, lit)
			}
			data[key] = v
		}
		for _, f := range g.Files {
			key, file, ok := strings.Cut(f, "=")
			if !ok {
				key, file = filepath.Base(f), f
			}
			path := filepath.Join(dir, file)
			k.used[path] = true
			if _, err := os.Stat(path); err != nil {
				k.p.add("%s: generator %s: %v", where, g.Name, err)
			}
			data[key] = "(file)"
		}
		old, exists := into[g.Name]
		switch g.Behavior {
		case "", "create":
			if exists {
				k.p.add("%s: generator %s already exists; use behavior merge or replace", where, g.Name)
			}
			into[g.Name] = data
		case "merge":
			if !exists {
				k.p.add("%s: generator %s merges into nothing", where, g.Name)
				old = map[string]string{}
			}
			for key, v := range data {
				old[key] = v
			}
			into[g.Name] = old
		case "replace":
			if !exists {
				k.p.add("%s: generator %s replaces nothing", where, g.Name)
			}
			into[g.Name] = data
		default:
			k.p.add("%s: generator %s: behavior %q", where, g.Name, g.Behavior)
		}
	}
}

var (
	envOpPath    = regexp.MustCompile(`^/spec/template/spec/containers/(\d+)/env/(-|\d+)$`)
	ignoreOpPath = regexp.MustCompile(`^/spec/template/spec/(volumes|containers/\d+/volumeMounts)/`)
)

// patch applies the part of a JSON 6902 patch that the checks care about:
// the variables it adds to containers. Anything else it does must be known
// to be irrelevant here (ignoreOpPath), so a patch cannot slip a variable
// past the checks in a form they do not read.
func (k *kube) patch(dir, where string, pt kpatch, b *build) {
	text := []byte(pt.Patch)
	if pt.Path != "" {
		path := filepath.Join(dir, pt.Path)
		k.used[path] = true
		var err error
		if text, err = os.ReadFile(path); err != nil {
			k.p.add("%s: patch: %v", where, err)
			return
		}
	}
	var ops []struct {
		Op    string    `yaml:"op"`
		Path  string    `yaml:"path"`
		Value yaml.Node `yaml:"value"`
	}
	if err := yaml.Unmarshal(text, &ops); err != nil {
		k.p.add("%s: patch %s: only JSON 6902 patches (a list of operations) are checked: %v", where, pt.Path, err)
		return
	}
	if pt.Target == nil || pt.Target.Kind != "Deployment" {
		k.p.add("%s: patch %s: only patches that target kind Deployment are checked", where, pt.Path)
		return
	}
	var targets []*k8sDeployment
	for _, d := range b.deployments {
		if (pt.Target.Name == "" || pt.Target.Name == d.Metadata.Name) && selects(pt.Target.LabelSelector, d.Metadata.Labels) {
			targets = append(targets, d)
		}
	}
	if len(targets) == 0 {
		k.p.add("%s: patch %s matches no Deployment", where, pt.Path)
	}
	for _, op := range ops {
		if ignoreOpPath.MatchString(op.Path) {
			continue
		}
		m := envOpPath.FindStringSubmatch(op.Path)
		if m == nil || (op.Op != "add" && op.Op != "replace") {
			k.p.add("%s: patch %s: %s %s is not an operation the checks understand (kustomize_test.go)", where, pt.Path, op.Op, op.Path)
			continue
		}
		i, _ := strconv.Atoi(m[1])
		var env struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		}
		if err := op.Value.Decode(&env); err != nil || env.Name == "" {
			k.p.add("%s: patch %s: %s adds no named variable", where, pt.Path, op.Path)
			continue
		}
		for _, d := range targets {
			cs := d.Spec.Template.Spec.Containers
			if i >= len(cs) {
				k.p.add("%s: patch %s: %s has no container %d", where, pt.Path, d.Metadata.Name, i)
				continue
			}
			cs[i].Env = append(cs[i].Env, env)
		}
	}
}

// selects reports whether an equality-based label selector ("k=v,k2=v2")
// matches labels.
func selects(selector string, labels map[string]string) bool {
	for _, req := range strings.Split(selector, ",") {
		if req = strings.TrimSpace(req); req == "" {
			continue
		}
		key, v, ok := strings.Cut(req, "=")
		if !ok || labels[strings.TrimSpace(key)] != strings.TrimSpace(v) {
			return false
		}
	}
	return true
}

// readManifests adds the objects of a YAML file to b.
func (k *kube) readManifests(path string, b *build) {
	docs, err := readDocs(path)
	if err != nil {
		k.p.add("%s: %v", k.rel(path), err)
		return
	}
	for _, doc := range docs {
		var head struct {
			Kind     string  `yaml:"kind"`
			Metadata k8sMeta `yaml:"metadata"`
		}
		if err := doc.Decode(&head); err != nil {
			k.p.add("%s: %v", k.rel(path), err)
			continue
		}
		var err error
		switch head.Kind {
		case "Deployment":
			d := &k8sDeployment{file: k.rel(path)}
			err = doc.Decode(d)
			b.deployments = append(b.deployments, d)
		case "PodDisruptionBudget":
			var pdb k8sPDB
			err = doc.Decode(&pdb)
			b.pdbs = append(b.pdbs, pdb)
		case "ConfigMap", "Secret":
			var o k8sData
			err = doc.Decode(&o)
			data := map[string]string{}
			for key, v := range o.Data {
				data[key] = v
			}
			for key, v := range o.StringData {
				data[key] = v
			}
			if head.Kind == "ConfigMap" {
				b.configMaps[o.Metadata.Name] = data
			} else {
				b.secrets[o.Metadata.Name] = data
			}
		}
		if err != nil {
			k.p.add("%s: %s %s: %v", k.rel(path), head.Kind, head.Metadata.Name, err)
		}
	}
}

// readDocs parses every document of a YAML file; each must be an object
// with apiVersion, kind and metadata.name.
func readDocs(path string) ([]*yaml.Node, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []*yaml.Node
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
		var head struct {
			APIVersion string  `yaml:"apiVersion"`
			Kind       string  `yaml:"kind"`
			Metadata   k8sMeta `yaml:"metadata"`
		}
		if err := doc.Decode(&head); err != nil {
			return nil, err
		}
		if head.APIVersion == "" || head.Kind == "" || head.Metadata.Name == "" {
			return nil, fmt.Errorf("document %d lacks apiVersion, kind or metadata.name", len(docs)+1)
		}
		docs = append(docs, &doc)
	}
	return docs, nil
}

// readEnvFile reads an env file (kustomize's, compose's env_file):
// KEY=value lines, # comments.
func readEnvFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, v, ok := strings.Cut(line, "=")
		if !ok || key == "" {
			return out, fmt.Errorf("%s:%d: not KEY=value", filepath.Base(path), n)
		}
		out[key] = v
	}
	return out, nil
}

// checkKubernetes checks the kustomize tree: every YAML file parses, every
// file is used, and every Kustomization (and every Component, on top of
// the base) renders to Deployments that pass checkBuild.
func checkKubernetes(r *repo) error {
	var p problems
	k := &kube{r: r, p: &p, used: map[string]bool{}}
	top := filepath.Join(r.root, kubeDir)
	var kustomizations, components []string
	examples := newBuild()
	var files []string
	err := filepath.WalkDir(top, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files = append(files, path)
		name := d.Name()
		switch {
		case name == "kustomization.yaml":
			kz, err := k.readKustomization(filepath.Dir(path))
			if err != nil {
				p.add("%v", err)
				return nil
			}
			if kz.Kind == "Component" {
				components = append(components, filepath.Dir(path))
			} else {
				kustomizations = append(kustomizations, filepath.Dir(path))
			}
		case strings.HasSuffix(name, ".example.yaml"):
			k.readManifests(path, examples)
		case strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml"):
			var v any
			b, err := os.ReadFile(path)
			if err == nil {
				err = yaml.Unmarshal(b, &v)
			}
			if err != nil {
				p.add("%s: %v", k.rel(path), err)
			}
		}
		return nil
	})
	if err != nil {
		p.add("%s: %v", kubeDir, err)
	}
	if len(kustomizations) == 0 {
		p.add("%s: no kustomization", kubeDir)
	}
	k.used = map[string]bool{}
	for _, dir := range kustomizations {
		checkBuild(r, &p, k.rel(dir), k.render(dir), examples)
	}
	base := filepath.Join(top, "base")
	for _, dir := range components {
		kz, err := k.readKustomization(dir)
		if err != nil {
			continue
		}
		b := k.render(base)
		k.apply(dir, kz, b)
		checkBuild(r, &p, k.rel(dir)+" on base", b, examples)
	}
	for _, f := range files {
		name := filepath.Base(f)
		// *-values.yaml are Helm values for charts installed beside the
		// manifests (checkNATSValues checks nats-values.yaml).
		if !k.used[f] && name != "kustomization.yaml" && !strings.HasSuffix(name, ".md") && !strings.HasSuffix(name, ".example.yaml") && !strings.HasSuffix(name, "-values.yaml") {
			p.add("%s is used by no kustomization", k.rel(f))
		}
	}
	return p.err()
}

// checkBuild checks what a kustomization renders to.
func checkBuild(r *repo, p *problems, name string, b *build, examples *build) {
	type consumer struct {
		kind, name string
	}
	readers := map[consumer][]string{}
	for _, d := range b.deployments {
		where := fmt.Sprintf("%s: Deployment %s (%s)", name, d.Metadata.Name, d.file)
		tmpl := d.Spec.Template
		if len(tmpl.Spec.Containers) == 0 {
			p.add("%s has no container", where)
		}
		for _, c := range tmpl.Spec.Containers {
			img, tag := splitImage(c.Image)
			svc, ours := strings.CutPrefix(img, "ghcr.io/sfsync/")
			if !pinned(c.Image) {
				p.add("%s: image %s is not pinned to a tag or digest (%q)", where, c.Image, tag)
			}
			if !ours {
				continue
			}
			if !r.isService(svc) {
				p.add("%s: image %s is not one the Dockerfile builds (services %v)", where, c.Image, r.services)
				continue
			}
			env := map[string]string{}
			for _, ef := range c.EnvFrom {
				src, kind, data, known := ef.ConfigMapRef, "ConfigMap", b.configMaps, examples.configMaps
				if src == nil {
					src, kind, data, known = ef.SecretRef, "Secret", b.secrets, examples.secrets
				}
				if src == nil {
					p.add("%s: envFrom without configMapRef or secretRef", where)
					continue
				}
				vals, ok := data[src.Name]
				if !ok {
					vals, ok = known[src.Name]
				}
				if !ok {
					p.add("%s: envFrom %s %s, which neither the kustomization nor an .example.yaml defines", where, kind, src.Name)
					continue
				}
				key := consumer{kind, src.Name}
				readers[key] = append(readers[key], svc)
				for k, v := range vals {
					env[ef.Prefix+k] = v
				}
				if ef.Prefix != "" {
					p.add("%s: envFrom %s %s with a prefix: the checks read keys as variables", where, kind, src.Name)
				}
			}
			for _, e := range c.Env {
				if !r.reads(svc, e.Name) {
					p.add("%s sets %s, which %s does not read (services/%s and its pkg config structs)", where, e.Name, svc, svc)
				}
				env[e.Name] = e.Value
			}
			checkContainer(r, p, where, svc, c, env, d)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas >= 2 {
			covered := false
			for _, pdb := range b.pdbs {
				covered = covered || subset(pdb.Spec.Selector.MatchLabels, tmpl.Metadata.Labels)
			}
			if !covered {
				p.add("%s has replicas but no PodDisruptionBudget selects its pods", where)
			}
		}
		if !subset(d.Spec.Selector.MatchLabels, tmpl.Metadata.Labels) {
			p.add("%s: the selector does not match the pod labels", where)
		}
	}
	for _, pdb := range b.pdbs {
		used := false
		for _, d := range b.deployments {
			used = used || subset(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Metadata.Labels)
		}
		if !used {
			p.add("%s: PodDisruptionBudget %s selects no Deployment's pods", name, pdb.Metadata.Name)
		}
	}
	// A shared ConfigMap or Secret may hold variables of several services,
	// but each must be read by one of the services that receive it.
	keys := make([]consumer, 0, len(readers))
	for c := range readers {
		keys = append(keys, c)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].name < keys[j].name })
	for _, c := range keys {
		data := b.configMaps
		if c.kind == "Secret" {
			data = b.secrets
		}
		vals, ok := data[c.name]
		if !ok {
			if c.kind == "Secret" {
				vals = examples.secrets[c.name]
			} else {
				vals = examples.configMaps[c.name]
			}
		}
		for _, v := range sortedKeys(vals) {
			read := false
			for _, svc := range readers[c] {
				read = read || r.reads(svc, v)
			}
			if !read {
				p.add("%s: %s %s sets %s, which none of the services that receive it (%s) reads", name, c.kind, c.name, v, strings.Join(readers[c], ", "))
			}
		}
	}
}

// checkContainer checks the probes, metrics annotations, resources and
// security context of one of our containers.
func checkContainer(r *repo, p *problems, where, svc string, c k8sContainer, env map[string]string, d *k8sDeployment) {
	known := r.vars[svc]
	port, variable, listens := listenPort(known, env)
	_, opsServer := known["HTTP_ADDR"]
	ready := "/healthz"
	if opsServer {
		ready = "/readyz"
	}
	for _, pr := range []struct {
		name, path string
		probe      *k8sProbe
	}{{"liveness", "/healthz", c.LivenessProbe}, {"readiness", ready, c.ReadinessProbe}} {
		if pr.probe == nil || pr.probe.HTTPGet == nil {
			p.add("%s: container %s has no HTTP %s probe", where, c.Name, pr.name)
			continue
		}
		if pr.probe.HTTPGet.Path != pr.path {
			p.add("%s: %s probe on %s, want %s", where, pr.name, pr.probe.HTTPGet.Path, pr.path)
		}
		got := pr.probe.HTTPGet.Port.Value
		for _, cp := range c.Ports {
			if cp.Name == got {
				got = strconv.Itoa(cp.ContainerPort)
			}
		}
		if !listens || got != port {
			p.add("%s: %s probe on port %s, but %s listens on %q (%s)", where, pr.name, got, svc, port, variable)
		}
	}
	ann := d.Spec.Template.Metadata.Annotations
	if opsServer {
		if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/port"] != port || ann["prometheus.io/path"] != "/metrics" {
			p.add("%s: want prometheus.io annotations scrape=true, port=%s, path=/metrics; have %v", where, port, ann)
		}
	}
	res := c.Resources
	if res.Requests["cpu"] == "" || res.Requests["memory"] == "" || res.Limits["memory"] == "" {
		p.add("%s: container %s wants cpu and memory requests and a memory limit", where, c.Name)
	}
	sc := c.SecurityContext
	nonRoot := sc.RunAsNonRoot
	if nonRoot == nil {
		nonRoot = d.Spec.Template.Spec.SecurityContext.RunAsNonRoot
	}
	if nonRoot == nil || !*nonRoot {
		p.add("%s: container %s may run as root (runAsNonRoot)", where, c.Name)
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		p.add("%s: container %s has a writable root filesystem", where, c.Name)
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		p.add("%s: container %s allows privilege escalation", where, c.Name)
	}
}

// subset reports whether every label of sel is in labels (and sel is not
// empty, which would select everything).
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}
