package deploycheck

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"go.yaml.in/yaml/v3"
)

const natsValuesPath = kubeDir + "/nats-values.yaml"

// envRef is the NATS Helm chart's way to write a raw value into nats.conf:
// << $VAR >>, an environment variable reference of the server.
var envRef = regexp.MustCompile(`^<<\s*\$([A-Z_][A-Z0-9_]*)\s*>>$`)

// checkNATSValues checks the values of the NATS Helm chart that the
// manifests expect: JetStream on, and an authorization whose user and
// password are environment references that the container's env fills from
// a Secret, never literal values in the file.
func checkNATSValues(r *repo) error {
	var p problems
	b, err := os.ReadFile(filepath.Join(r.root, natsValuesPath))
	if err != nil {
		return err
	}
	var v struct {
		Config struct {
			JetStream struct {
				Enabled bool `yaml:"enabled"`
			} `yaml:"jetstream"`
			Merge struct {
				Authorization map[string]string `yaml:"authorization"`
			} `yaml:"merge"`
		} `yaml:"config"`
		Container struct {
			Env map[string]struct {
				Value     string `yaml:"value"`
				ValueFrom struct {
					SecretKeyRef struct {
						Name string `yaml:"name"`
						Key  string `yaml:"key"`
					} `yaml:"secretKeyRef"`
				} `yaml:"valueFrom"`
			} `yaml:"env"`
		} `yaml:"container"`
	}
	if err := yaml.Unmarshal(b, &v); err != nil {
		return fmt.Errorf("%s: %w", natsValuesPath, err)
	}
	if !v.Config.JetStream.Enabled {
		p.add("%s: config.jetstream.enabled is not true: the workers need JetStream", natsValuesPath)
	}
	for _, k := range []string{"user", "password"} {
		val, ok := v.Config.Merge.Authorization[k]
		m := envRef.FindStringSubmatch(val)
		switch {
		case !ok:
			p.add("%s: config.merge.authorization has no %s: the broker would accept any client", natsValuesPath, k)
		case m == nil:
			p.add("%s: config.merge.authorization.%s is %q, not an environment reference (<< $VAR >>) filled from a Secret", natsValuesPath, k, val)
		default:
			e, ok := v.Container.Env[m[1]]
			if !ok || e.ValueFrom.SecretKeyRef.Name == "" || e.ValueFrom.SecretKeyRef.Key == "" || e.Value != "" {
				p.add("%s: container.env.%s, which authorization.%s reads, does not come from a Secret (valueFrom.secretKeyRef)", natsValuesPath, m[1], k)
			}
		}
	}
	return p.err()
}
