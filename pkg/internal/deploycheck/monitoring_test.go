package deploycheck

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.yaml.in/yaml/v3"

	"github.com/sfsync/sfsync/pkg/config"
	"github.com/sfsync/sfsync/pkg/detector"
	"github.com/sfsync/sfsync/pkg/logging"
	"github.com/sfsync/sfsync/pkg/sender"
	"github.com/sfsync/sfsync/pkg/service"
	"github.com/sfsync/sfsync/pkg/shoppingfeed"
	"github.com/sfsync/sfsync/pkg/testenv"
	"github.com/sfsync/sfsync/pkg/ticketpoller"
)

const (
	alertsPath    = "deployments/monitoring/alerts.yml"
	dashboardPath = "deployments/monitoring/grafana-dashboard.json"
)

// exported is what the services export: each metric's name and label names.
type exported map[string][]string

// recorder passes registrations on and notes each collector's metrics from
// its descriptions, so that a vector nobody has set yet is known too.
type recorder struct {
	prometheus.Registerer
	seen exported
}

var (
	descName   = regexp.MustCompile(`fqName: "([^"]+)"`)
	descLabels = regexp.MustCompile(`(?:constLabels|variableLabels): \{([^}]*)\}`)
	labelName  = regexp.MustCompile(`[a-zA-Z_][a-zA-Z0-9_]*`)
)

func (r recorder) Register(c prometheus.Collector) error {
	note(r.seen, c)
	return r.Registerer.Register(c)
}

func (r recorder) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		note(r.seen, c)
	}
	r.Registerer.MustRegister(cs...)
}

func note(seen exported, c prometheus.Collector) {
	ch := make(chan *prometheus.Desc, 64)
	go func() { c.Describe(ch); close(ch) }()
	for d := range ch {
		s := d.String()
		m := descName.FindStringSubmatch(s)
		if m == nil {
			continue
		}
		var labels []string
		for _, l := range descLabels.FindAllStringSubmatch(s, -1) {
			for _, kv := range strings.Split(l[1], ",") {
				if n := labelName.FindString(strings.TrimSpace(kv)); n != "" {
					labels = append(labels, n)
				}
			}
		}
		seen[m[1]] = append(seen[m[1]], labels...)
	}
}

// exportedMetrics builds every worker the way its binary does (service.Open,
// then the worker on the ops server's registry), against a real database and
// broker, and returns every metric they register plus everything the ops
// registry gathers (Go, process, database pool, build info).
func exportedMetrics(t *testing.T) exported {
	t.Helper()
	ctx := context.Background()
	db, _, _ := testenv.Shop(t)
	b := testenv.NATS(t)
	cfg := service.Config{}
	if err := config.Load(ctx, config.MapLookup(map[string]string{"MYSQL_DSN": db.DSN, "NATS_URL": b.URL}), &cfg); err != nil {
		t.Fatal(err)
	}
	deps, err := service.Open(ctx, "deploycheck", cfg, logging.Discard(), service.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(deps.Close)
	rec := recorder{Registerer: deps.Ops.Registry(), seen: exported{}}
	var dcfg detector.Config
	var scfg sender.Config
	var pcfg ticketpoller.Config
	var sfcfg shoppingfeed.Config
	for _, c := range []any{&dcfg, &scfg, &pcfg, &sfcfg} {
		if err := config.Load(ctx, config.MapLookup(nil), c); err != nil {
			t.Fatal(err)
		}
	}
	client, err := shoppingfeed.New(sfcfg, logging.Discard(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := detector.New(ctx, dcfg, detector.Deps{Store: deps.Store, NC: deps.NC, Log: logging.Discard(), Registry: rec, Instance: "d", LeaseTTL: 10 * time.Second}); err != nil {
		t.Fatal(err)
	}
	if _, err := sender.New(scfg, sender.Deps{Store: deps.Store, NC: deps.NC, Client: client, Log: logging.Discard(), Registry: rec, Instance: "s"}); err != nil {
		t.Fatal(err)
	}
	if _, err := ticketpoller.New(pcfg, ticketpoller.Deps{Store: deps.Store, NC: deps.NC, SF: client, Log: logging.Discard(), Registry: rec, Instance: "p"}); err != nil {
		t.Fatal(err)
	}
	mfs, err := deps.Ops.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				rec.seen[mf.GetName()] = append(rec.seen[mf.GetName()], l.GetName())
			}
		}
		if _, ok := rec.seen[mf.GetName()]; !ok {
			rec.seen[mf.GetName()] = nil
		}
	}
	return rec.seen
}

// An identifier in PromQL, possibly followed by a label matcher.
var (
	promIdent   = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promMatcher = regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{([^}]*)\}`)
	matcherName = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
	// Metric families of our own and of the client library's collectors.
	metricPrefixes = []string{"sfsync_", "go_", "process_"}
)

// checkQuery reports the metrics (and label matchers) expr uses that the
// services do not export; a query that uses no metric at all is an error.
func checkQuery(where, expr string, have exported) []string {
	var errs []string
	lookup := func(name string) ([]string, bool) {
		if l, ok := have[name]; ok {
			return l, true
		}
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if l, ok := have[strings.TrimSuffix(name, suf)]; ok && strings.HasSuffix(name, suf) {
				return append(l, "le"), true
			}
		}
		return nil, false
	}
	// Strings ("429", "5m" inside [...]) are not identifiers.
	bare := regexp.MustCompile(`"[^"]*"|\[[^\]]*\]`).ReplaceAllString(expr, " ")
	used := 0
	for _, id := range promIdent.FindAllString(bare, -1) {
		if !slices.ContainsFunc(metricPrefixes, func(p string) bool { return strings.HasPrefix(id, p) }) {
			continue
		}
		used++
		if _, ok := lookup(id); !ok {
			errs = append(errs, fmt.Sprintf("%s uses %s, which no service exports", where, id))
		}
	}
	for _, m := range promMatcher.FindAllStringSubmatch(expr, -1) {
		labels, ok := lookup(m[1])
		if !ok {
			continue
		}
		for _, lm := range matcherName.FindAllStringSubmatch(m[2], -1) {
			if !slices.Contains(labels, lm[1]) {
				errs = append(errs, fmt.Sprintf("%s matches label %q of %s, which has labels %v", where, lm[1], m[1], labels))
			}
		}
	}
	if used == 0 {
		errs = append(errs, fmt.Sprintf("%s uses no sfsync metric: %q", where, expr))
	}
	return errs
}

// alertRules is a Prometheus rule file.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// wantAlerts are the conditions issue 17 asks an operator be told about,
// each as a metric some rule must use.
var wantAlerts = map[string]string{
	"detector lag":      "sfsync_detector_lag_seconds",
	"oldest due update": "sfsync_tasks_oldest_due_seconds",
	"failed tasks":      "sfsync_tasks",
	"held token":        "sfsync_sender_deferred_total",
	"429 rate":          "sfsync_shoppingfeed_requests_total",
	"backlog":           "sfsync_consumer_pending",
}

func checkAlerts(root string, have exported) error {
	b, err := os.ReadFile(filepath.Join(root, alertsPath))
	if err != nil {
		return err
	}
	var rf alertRules
	dec := yaml.NewDecoder(strings.NewReader(string(b)))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		return fmt.Errorf("%s: %w", alertsPath, err)
	}
	var errs []string
	all := ""
	names := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			where := fmt.Sprintf("%s: alert %s", alertsPath, r.Alert)
			switch {
			case r.Alert == "" || r.Expr == "":
				errs = append(errs, fmt.Sprintf("%s: a rule without alert or expr", alertsPath))
				continue
			case names[r.Alert]:
				errs = append(errs, where+" is defined twice")
			case r.Labels["severity"] == "" || r.Annotations["summary"] == "":
				errs = append(errs, where+" has no severity label or no summary")
			}
			if r.For != "" {
				if _, err := time.ParseDuration(r.For); err != nil {
					errs = append(errs, fmt.Sprintf("%s: for %q is not a duration", where, r.For))
				}
			}
			names[r.Alert] = true
			errs = append(errs, checkQuery(where, r.Expr, have)...)
			all += " " + r.Expr
		}
	}
	for what, metric := range wantAlerts {
		if !regexp.MustCompile(`\b` + metric + `\b`).MatchString(all) {
			errs = append(errs, fmt.Sprintf("%s: no rule alerts on %s (%s)", alertsPath, what, metric))
		}
	}
	if len(errs) > 0 {
		sort.Strings(errs)
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

type dashboard struct {
	Title  string `json:"title"`
	UID    string `json:"uid"`
	Panels []struct {
		Title   string `json:"title"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func checkDashboard(root string, have exported) error {
	b, err := os.ReadFile(filepath.Join(root, dashboardPath))
	if err != nil {
		return err
	}
	var d dashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("%s: %w", dashboardPath, err)
	}
	var errs []string
	if d.Title == "" || d.UID == "" || len(d.Panels) == 0 {
		errs = append(errs, dashboardPath+": no title, uid or panel")
	}
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			errs = append(errs, fmt.Sprintf("%s: panel %q has no query", dashboardPath, p.Title))
		}
		for _, tg := range p.Targets {
			errs = append(errs, checkQuery(fmt.Sprintf("%s: panel %q", dashboardPath, p.Title), tg.Expr, have)...)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "\n"))
	}
	return nil
}

// TestMonitoring: the alert rules and the dashboard parse, and every metric
// and label they use is one the services really export. Each check also
// fails on a copy with one deliberate mistake.
func TestMonitoring(t *testing.T) {
	root := loadRepo(t).root
	have := exportedMetrics(t)
	for _, name := range []string{"sfsync_build_info", "sfsync_detector_lag_seconds", "sfsync_tasks", "go_sql_in_use_connections"} {
		if _, ok := have[name]; !ok {
			t.Fatalf("the metric inventory lacks %s: %v", name, have)
		}
	}
	if err := checkAlerts(root, have); err != nil {
		t.Error(err)
	}
	if err := checkDashboard(root, have); err != nil {
		t.Error(err)
	}
	for _, tc := range []struct {
		name, file, old, new string
		check                func(string, exported) error
		wantErr              string
	}{
		{"alert: misspelt metric", alertsPath, "max(sfsync_detector_lag_seconds) > 60", "max(sfsync_detector_lag_secs) > 60", checkAlerts,
			"uses sfsync_detector_lag_secs, which no service exports"},
		{"alert: unknown label", alertsPath, `sfsync_tasks{state="failed"}`, `sfsync_tasks{status="failed"}`, checkAlerts,
			`matches label "status" of sfsync_tasks`},
		{"alert: a condition left out", alertsPath, "max(sfsync_tasks_oldest_due_seconds) > 600", "max(sfsync_detector_lag_rows) > 600", checkAlerts,
			"no rule alerts on oldest due update"},
		{"alert: no severity", alertsPath, "severity: critical\n        annotations:\n          summary: \"no detector", "team: x\n        annotations:\n          summary: \"no detector", checkAlerts,
			"no severity label"},
		{"alert: misspelt key", alertsPath, "        for: 5m\n", "        fro: 5m\n", checkAlerts,
			"field fro not found"},
		{"dashboard: misspelt metric", dashboardPath, "sfsync_consumer_ack_pending", "sfsync_consumer_acks_pending", checkDashboard,
			"uses sfsync_consumer_acks_pending, which no service exports"},
		{"dashboard: histogram without its bucket", dashboardPath, "sfsync_sender_change_to_post_seconds_bucket", "sfsync_sender_change_to_post_bucket", checkDashboard,
			"uses sfsync_sender_change_to_post_bucket"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			broken := t.TempDir()
			b, err := os.ReadFile(filepath.Join(root, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(b), tc.old) {
				t.Fatalf("%s no longer holds %q: update the test", tc.file, tc.old)
			}
			if err := os.MkdirAll(filepath.Join(broken, filepath.Dir(tc.file)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(broken, tc.file), []byte(strings.Replace(string(b), tc.old, tc.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			err = tc.check(broken, have)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
