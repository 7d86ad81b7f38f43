package deploycheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// The deployment files of the repository pass every check.

func TestDockerfile(t *testing.T) {
	if err := checkDockerfile(loadRepo(t)); err != nil {
		t.Error(err)
	}
}

func TestCompose(t *testing.T) {
	if err := checkCompose(loadRepo(t)); err != nil {
		t.Error(err)
	}
}

func TestNATSValues(t *testing.T) {
	if err := checkNATSValues(loadRepo(t)); err != nil {
		t.Error(err)
	}
}

func TestKubernetes(t *testing.T) {
	if err := checkKubernetes(loadRepo(t)); err != nil {
		t.Error(err)
	}
}

// TestConfigTypesComplete keeps configTypes in step with pkg: every struct
// with env tags in pkg's non-test sources is one of them or is reached from
// one of them by go-envconfig's walk (sfsandbox.Faults is, through
// sfsandbox.Config). A new config struct missing here would make the
// checks reject the variables of a service that holds it.
func TestConfigTypesComplete(t *testing.T) {
	reached := map[string]bool{}
	for _, typ := range configTypes {
		seen := map[reflect.Type]bool{}
		typeVars(typ, "", vars{}, seen)
		for s := range seen {
			reached[s.PkgPath()+"."+s.Name()] = true
		}
	}
	root := loadRepo(t).root
	fset := token.NewFileSet()
	err := filepath.WalkDir(filepath.Join(root, "pkg"), func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(filepath.Join(root, "pkg"), filepath.Dir(path))
		importPath := pkgPath + "/" + filepath.ToSlash(rel)
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok {
				continue
			}
			for _, spec := range gd.Specs {
				ts, ok := spec.(*ast.TypeSpec)
				if !ok {
					continue
				}
				st, ok := ts.Type.(*ast.StructType)
				if !ok || !hasEnvTag(st) {
					continue
				}
				if name := importPath + "." + ts.Name.Name; !reached[name] {
					t.Errorf("%s has env tags but is not in configTypes (vars_test.go)", name)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func hasEnvTag(st *ast.StructType) bool {
	for _, f := range st.Fields.List {
		if f.Tag == nil {
			continue
		}
		tag, _ := strconv.Unquote(f.Tag.Value)
		if _, ok := reflect.StructTag(tag).Lookup("env"); ok {
			return true
		}
	}
	return false
}

// TestServiceVars pins down how the variables of a service are found, on
// the services whose configuration is settled.
func TestServiceVars(t *testing.T) {
	r := loadRepo(t)
	for _, tc := range []struct {
		service   string
		reads     []string
		readsNot  []string
		defaultOf map[string]string
	}{
		{
			service:   "detector",
			reads:     []string{"MYSQL_DSN", "DB_PREFIX", "NATS_URL", "NATS_REPLICAS", "LOG_FORMAT", "HTTP_ADDR", "LEASE_TTL", "POLL_INTERVAL", "START_FROM"},
			readsNot:  []string{"SF_API_URL", "SANDBOX_STORES", "SMTP_URL", "SYNC_MODE"},
			defaultOf: map[string]string{"HTTP_ADDR": ":8080", "NATS_REPLICAS": "1"},
		},
		{
			service:  "sender",
			reads:    []string{"MYSQL_DSN", "SF_API_URL", "SF_RATE_LIMIT", "SYNC_MODE", "SF_TOKEN", "SF_STORE_ID"},
			readsNot: []string{"SANDBOX_STORES", "POLL_INTERVAL"},
		},
		{
			service: "sfsandbox",
			// Faults is walked through sfsandbox.Config; SHUTDOWN_TIMEOUT
			// is a tag of the service's own Config.
			reads:     []string{"SANDBOX_STORES", "SANDBOX_ERROR_RATE", "SANDBOX_STUCK_FOR", "LOG_LEVEL", "SHUTDOWN_TIMEOUT"},
			readsNot:  []string{"MYSQL_DSN", "HTTP_ADDR", "NATS_URL"},
			defaultOf: map[string]string{"SANDBOX_ADDR": ":8090", "SHUTDOWN_TIMEOUT": "10s"},
		},
	} {
		t.Run(tc.service, func(t *testing.T) {
			for _, v := range tc.reads {
				if !r.reads(tc.service, v) {
					t.Errorf("does not read %s", v)
				}
			}
			for _, v := range tc.readsNot {
				if r.reads(tc.service, v) {
					t.Errorf("reads %s", v)
				}
			}
			for v, want := range tc.defaultOf {
				if got := r.vars[tc.service][v]; got != want {
					t.Errorf("default of %s = %q, want %q", v, got, want)
				}
			}
		})
	}
}

// Each check fails on a copy of the files with one deliberate mistake: a
// check that cannot fail is a defect.
func TestChecksFail(t *testing.T) {
	for _, tc := range []struct {
		name    string
		file    string
		old     string // replaced, once, by new; must be in file
		new     string
		check   func(*repo) error
		wantErr string
	}{
		// docker-compose.yml
		{"compose: misspelt variable", composePath,
			"REPORT_FROM: sfsync@example.com", "REPORT_FORM: sfsync@example.com", checkCompose,
			"REPORT_FORM, which ticketpoller does not read"},
		{"compose: another service's variable", composePath,
			"    environment:\n      <<: *worker-env\n", "    environment:\n      <<: *worker-env\n      SANDBOX_STORES: x:1\n", checkCompose,
			"SANDBOX_STORES, which detector does not read"},
		{"compose: misspelt variable in an anchor", composePath,
			"  NATS_URL: nats://nats:4222", "  NATS_ULR: nats://nats:4222", checkCompose,
			"NATS_ULR, which"},
		{"compose: misspelt mysql variable", composePath,
			"MYSQL_DATABASE: prestashop", "MYSQL_DATABSE: prestashop", checkCompose,
			"MYSQL_DATABSE, which is not a variable of mysql"},
		{"compose: unknown service to build", composePath,
			"SERVICE: detector", "SERVICE: detectr", checkCompose,
			`SERVICE="detectr" is not one of the services`},
		{"compose: missing Dockerfile", composePath,
			"dockerfile: deployments/docker/Dockerfile", "dockerfile: deployments/docker/Dockerfile.missing", checkCompose,
			"builds deployments/docker/Dockerfile.missing"},
		{"compose: unknown target", composePath,
			"target: with-probe", "target: with-prob", checkCompose,
			`target "with-prob" is not a stage`},
		{"compose: probe absent from the image", composePath,
			"target: with-probe", "target: runtime", checkCompose,
			`runs /usr/local/bin/sfsync, which target "runtime"`},
		{"compose: health check that the binary reads as a command", composePath,
			`"/usr/local/bin/sfsync", "probe", "http://127.0.0.1:8090/healthz"`, `"/usr/local/bin/sfsync", "http://127.0.0.1:8090/healthz"`, checkCompose,
			"fails against a healthy endpoint"},
		{"compose: health check of a binary the image does not build", dockerfilePath,
			"COPY --from=probe /out/sfsync /usr/local/bin/sfsync", "COPY --from=probe /out/probe /usr/local/bin/sfsync", checkCompose,
			"does not build from a service"},
		{"compose: probe on the wrong port", composePath,
			"http://127.0.0.1:8090/healthz", "http://127.0.0.1:8080/healthz", checkCompose,
			"probes port 8080, but sfsandbox listens on 8090 (SANDBOX_ADDR)"},
		{"compose: misspelt key", composePath,
			"  stop_grace_period: 35s", "  stop_grace_perod: 35s", checkCompose,
			"stop_grace_perod"},
		{"compose: waits for health that is not checked", composePath,
			`      test: ["CMD", "/mailpit", "readyz"]`, "      disable: true", checkCompose,
			`waits for "mailpit" to be healthy, but it has no health check`},
		{"compose: a one-shot nobody waits for", composePath,
			"      condition: service_completed_successfully", "      condition: service_started", checkCompose,
			`service "seed" runs once`},
		{"compose: fixed host port on replicas", composePath,
			`"127.0.0.1::8080"`, `"127.0.0.1:8080:8080"`, checkCompose,
			"fixed host port"},
		{"compose: misspelt variable in an env_file", "deployments/compose/nats.env",
			"NATS_PASSWORD=", "NATS_PASWORD=", checkCompose,
			"NATS_PASWORD, which detector does not read"},
		{"compose: missing env_file", composePath,
			"  env_file: deployments/compose/nats.env", "  env_file: deployments/compose/nats-creds.env", checkCompose,
			"nats-creds.env: no such file"},
		{"compose: missing bind-mounted file", composePath,
			"./deployments/compose/nats.conf:", "./deployments/compose/nat.conf:", checkCompose,
			"mounts ./deployments/compose/nat.conf"},
		{"compose: unpinned image", composePath,
			"image: mysql:8.4", "image: mysql:latest", checkCompose,
			"not pinned"},

		// deployments/docker/Dockerfile
		{"dockerfile: a service it does not build", dockerfilePath,
			"detector|sender|ticketpoller|sfsandbox|sfsync)", "detector|sender|sfsandbox|sfsync)", checkDockerfile,
			"accepts SERVICE"},
		{"dockerfile: root user", dockerfilePath,
			"USER 65532:65532", "USER root", checkDockerfile,
			"not a numeric non-root user"},
		{"dockerfile: unpinned base", dockerfilePath,
			"ARG GO_VERSION=1.26", "ARG GO_VERSION=latest", checkDockerfile,
			"golang:latest is not pinned"},
		{"dockerfile: entrypoint not in the image", dockerfilePath,
			`ENTRYPOINT ["/usr/local/bin/service"]`, `ENTRYPOINT ["/usr/local/bin/detector"]`, checkDockerfile,
			"ENTRYPOINT /usr/local/bin/detector is not a file"},

		// deployments/kubernetes
		{"kubernetes: misspelt variable in the ConfigMap", kubeDir + "/base/config.env",
			"REPORT_FROM=", "REPORT_FORM=", checkKubernetes,
			"sets REPORT_FORM, which none of the services that receive it"},
		{"kubernetes: misspelt variable in an overlay", kubeDir + "/overlays/nats-cluster/kustomization.yaml",
			"- NATS_REPLICAS=3", "- NATS_REPLICA=3", checkKubernetes,
			"sets NATS_REPLICA, which none"},
		{"kubernetes: misspelt variable in the Secret", kubeDir + "/base/secret.example.yaml",
			"  MYSQL_DSN:", "  MYSQL_DNS:", checkKubernetes,
			"sets MYSQL_DNS"},
		{"kubernetes: another service's variable in a Deployment", kubeDir + "/base/detector.yaml",
			"            - name: GOMEMLIMIT", "            - name: SF_API_URL\n              value: x\n            - name: GOMEMLIMIT", checkKubernetes,
			"sets SF_API_URL, which detector does not read"},
		{"kubernetes: misspelt variable in a patch", kubeDir + "/components/nats-creds/nats-creds.patch.yaml",
			"name: NATS_CREDS", "name: NATS_CRED", checkKubernetes,
			"sets NATS_CRED, which"},
		{"kubernetes: patch operation the checks do not read", kubeDir + "/components/nats-creds/nats-creds.patch.yaml",
			"path: /spec/template/spec/containers/0/env/-", "path: /spec/template/spec/containers/0/envFrom/-", checkKubernetes,
			"not an operation the checks understand"},
		{"kubernetes: missing resource", kubeDir + "/base/kustomization.yaml",
			"  - sender.yaml", "  - senders.yaml", checkKubernetes,
			"resource senders.yaml"},
		{"kubernetes: unused file", kubeDir + "/base/kustomization.yaml",
			"  - ticketpoller.yaml\n", "", checkKubernetes,
			"ticketpoller.yaml is used by no kustomization"},
		{"kubernetes: misspelt kustomization field", kubeDir + "/base/kustomization.yaml",
			"configMapGenerator:", "configMapGenerators:", checkKubernetes,
			"configMapGenerators"},
		{"kubernetes: unpinned image", kubeDir + "/base/kustomization.yaml",
			"  - name: ghcr.io/sfsync/sender\n    newTag: \"0.1.0\"", "  - name: ghcr.io/sfsync/sender\n    newTag: latest", checkKubernetes,
			"image ghcr.io/sfsync/sender:latest is not pinned"},
		{"kubernetes: image of no service", kubeDir + "/base/sender.yaml",
			"image: ghcr.io/sfsync/sender", "image: ghcr.io/sfsync/sendr:1.0", checkKubernetes,
			"is not one the Dockerfile builds"},
		{"kubernetes: readiness on the wrong path", kubeDir + "/base/sender.yaml",
			"path: /readyz", "path: /healthz", checkKubernetes,
			"readiness probe on /healthz, want /readyz"},
		{"kubernetes: probe on the wrong port", kubeDir + "/components/sfsandbox/sfsandbox.yaml",
			"containerPort: 8090", "containerPort: 8080", checkKubernetes,
			"sfsandbox listens on \"8090\""},
		{"kubernetes: no disruption budget", kubeDir + "/base/ticketpoller.yaml",
			"kind: PodDisruptionBudget", "kind: PodDisruptionBudgets", checkKubernetes,
			"no PodDisruptionBudget selects its pods"},
		{"kubernetes: missing Secret", kubeDir + "/base/detector.yaml",
			"                name: sfsync\n", "                name: sfsync-db\n", checkKubernetes,
			"envFrom Secret sfsync-db"},
		{"kubernetes: writable root filesystem", kubeDir + "/base/detector.yaml",
			"readOnlyRootFilesystem: true", "readOnlyRootFilesystem: false", checkKubernetes,
			"writable root filesystem"},
		{"kubernetes: metrics annotation on the wrong port", kubeDir + "/base/sender.yaml",
			`prometheus.io/port: "8080"`, `prometheus.io/port: "9090"`, checkKubernetes,
			"prometheus.io annotations"},
		{"nats values: literal password", natsValuesPath,
			"password: << $NATS_PASSWORD >>", "password: hunter2", checkNATSValues,
			"not an environment reference"},
		{"nats values: no authorization", natsValuesPath,
			"    authorization:\n      user: << $NATS_USER >>\n", "    authorizations:\n      user: << $NATS_USER >>\n", checkNATSValues,
			"has no user"},
		{"nats values: password not from a Secret", natsValuesPath,
			"          name: nats-auth\n          key: NATS_PASSWORD", "          name: \"\"\n          key: NATS_PASSWORD", checkNATSValues,
			"container.env.NATS_PASSWORD, which authorization.password reads"},
		{"nats values: JetStream off", natsValuesPath,
			"  jetstream:\n    enabled: true", "  jetstream:\n    enabled: false", checkNATSValues,
			"jetstream.enabled is not true"},
		{"kubernetes: unparsable YAML", kubeDir + "/base/namespace.yaml",
			"  name: sfsync\n", "  name: [sfsync\n", checkKubernetes,
			"namespace.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := brokenCopy(t, loadRepo(t), tc.file, tc.old, tc.new)
			err := tc.check(r)
			if err == nil {
				t.Fatalf("no error after replacing %q with %q in %s", tc.old, tc.new, tc.file)
			}
			if !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error does not mention %q:\n%v", tc.wantErr, err)
			}
		})
	}
}

// brokenCopy copies the deployment files of r into a temporary root and
// replaces old with new, once, in file.
func brokenCopy(t *testing.T, r *repo, file, old, new string) *repo {
	t.Helper()
	dst := t.TempDir()
	for _, p := range []string{composePath, "deployments"} {
		src := filepath.Join(r.root, p)
		err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(r.root, path)
			if d.IsDir() {
				return os.MkdirAll(filepath.Join(dst, rel), 0o755)
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dst, file)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), old) {
		t.Fatalf("%s does not contain %q: update the test", file, old)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	broken := *r
	broken.root = dst
	return &broken
}
