package examples_test

import (
	"os"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/pollhook/pollhook/config"
)

// TestHADeployment checks the replicas example: its config loads with the
// variables the docker compose file and the Kubernetes manifest give it,
// keeps its state in PostgreSQL and serves /readyz; the compose file runs
// three replicas of it on a PostgreSQL and the manifest three with a
// readiness probe on /readyz.
func TestHADeployment(t *testing.T) {
	env := map[string]string{
		"POLLHOOK_DSN": "postgres://pollhook:pollhook@postgres:5432/pollhook?sslmode=disable", "POLLHOOK_TOKEN": "t",
		"API_BASE_URL": "https://api.example.com/v1", "API_TOKEN": "a", "WEBHOOK_URL": "https://app.example.com/hooks",
		"WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := config.Load("deploy/ha/pollhook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.State.DSN == "" || cfg.State.Path != "" || cfg.HTTP.Listen == "" {
		t.Errorf("state %+v, listen %q: want a dsn and a listener", cfg.State, cfg.HTTP.Listen)
	}

	var compose struct {
		Services map[string]struct {
			Command     []string          `yaml:"command"`
			Environment map[string]string `yaml:"environment"`
			Deploy      struct {
				Replicas int `yaml:"replicas"`
			} `yaml:"deploy"`
			Healthcheck struct {
				Test []string `yaml:"test"`
			} `yaml:"healthcheck"`
		} `yaml:"services"`
	}
	decode(t, "deploy/ha/docker-compose.yaml", &compose)
	ph := compose.Services["pollhook"]
	if ph.Deploy.Replicas != 3 || compose.Services["postgres"].Healthcheck.Test == nil {
		t.Errorf("compose: %d pollhook replicas, postgres healthcheck %v; want 3 and one", ph.Deploy.Replicas, compose.Services["postgres"].Healthcheck.Test)
	}
	for k := range env {
		if _, ok := ph.Environment[k]; !ok {
			t.Errorf("compose: pollhook's environment lacks %s, which its config needs", k)
		}
	}
	if !strings.Contains(strings.Join(ph.Healthcheck.Test, " "), "/readyz") {
		t.Errorf("compose healthcheck %v: want /readyz", ph.Healthcheck.Test)
	}

	data, err := os.ReadFile("deploy/ha/kubernetes.yaml")
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, doc := range strings.Split(string(data), "\n---\n") {
		var d struct {
			Kind string `yaml:"kind"`
			Spec struct {
				Replicas int `yaml:"replicas"`
				Template struct {
					Spec struct {
						Containers []struct {
							ReadinessProbe struct {
								HTTPGet struct {
									Path string `yaml:"path"`
								} `yaml:"httpGet"`
							} `yaml:"readinessProbe"`
						} `yaml:"containers"`
					} `yaml:"spec"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := yaml.Unmarshal([]byte(doc), &d); err != nil {
			t.Fatalf("kubernetes.yaml: %v", err)
		}
		if d.Kind == "Deployment" {
			found = true
			c := d.Spec.Template.Spec.Containers
			if d.Spec.Replicas != 3 || len(c) != 1 || c[0].ReadinessProbe.HTTPGet.Path != "/readyz" {
				t.Errorf("Deployment: %d replicas, containers %+v; want 3 with a /readyz probe", d.Spec.Replicas, c)
			}
		}
	}
	if !found {
		t.Error("kubernetes.yaml has no Deployment")
	}
}

func decode(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
