package main

import (
	"crypto/rand"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDockerImage builds the image of the Dockerfile and runs it as a
// user would: version names the VERSION it was built with, and the
// HEALTHCHECK finds a container running a shipped example (which sets no
// http.listen) healthy, and its state without a daemon unhealthy with
// exit code 1. It needs a Docker engine; without one it skips and says so.
func TestDockerImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Docker image; skipped with -short")
	}
	if _, err := exec.LookPath("docker"); err != nil {
		t.Skip("no docker client on this machine: the image is not tested")
	}
	if out, err := exec.Command("docker", "info", "--format", "{{.ServerVersion}}").CombinedOutput(); err != nil {
		t.Skipf("no Docker engine on this machine (the docker client is here, but docker info fails: %s): the image's build, version and HEALTHCHECK are not tested",
			strings.TrimSpace(string(out)))
	}
	root, _ := filepath.Abs("../..")
	name := "pollhook-test-" + strings.ToLower(rand.Text()[:8])
	docker := func(args ...string) (string, error) {
		t.Helper()
		out, err := exec.Command("docker", args...).CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	must := func(args ...string) string {
		t.Helper()
		out, err := docker(args...)
		if err != nil {
			t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}

	must("build", "--build-arg", "VERSION=v0.0.0-docker-test", "-t", name, root)
	t.Cleanup(func() { docker("rmi", "-f", name) })
	if out := must("run", "--rm", name, "version"); !strings.HasPrefix(out, "pollhook v0.0.0-docker-test ") {
		t.Errorf("version in the image: %q, want it to name VERSION v0.0.0-docker-test", out)
	}

	// The GitHub example as shipped, its API out of reach: the polls fail,
	// the daemon runs on and holds its leases.
	t.Cleanup(func() { docker("volume", "rm", "-f", name) })
	env := []string{"GITHUB_TOKEN=t", "GITHUB_OWNER=o", "GITHUB_REPO=r", "GITHUB_API_URL=http://127.0.0.1:9",
		"WEBHOOK_URL=http://127.0.0.1:9/hooks", "WEBHOOK_SECRET=whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
	args := []string{"run", "-d", "--name", name, "-v", name + ":/data",
		"-v", filepath.Join(root, "examples", "github-issues.yaml") + ":/etc/pollhook/pollhook.yaml:ro",
		"--health-interval", "1s", "--health-start-period", "0s"}
	for _, e := range env {
		args = append(args, "-e", e)
	}
	must(append(args, name)...)
	t.Cleanup(func() { docker("rm", "-f", name) })
	status := ""
	for deadline := time.Now().Add(60 * time.Second); status != "healthy" && time.Now().Before(deadline); time.Sleep(time.Second) {
		status, _ = docker("inspect", "--format", "{{.State.Health.Status}}", name)
	}
	if status != "healthy" {
		logs, _ := docker("logs", name)
		t.Fatalf("the container of the github-issues example is %q, not healthy, after 60s; its logs:\n%s", status, logs)
	}

	// Stopped, its state holds no live lease: unhealthy, exit code 1.
	must("stop", name)
	_, err := docker("run", "--rm", "-v", name+":/data",
		"-v", filepath.Join(root, "examples", "github-issues.yaml")+":/etc/pollhook/pollhook.yaml:ro",
		name, "healthcheck", "-c", "/etc/pollhook/pollhook.yaml")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Errorf("healthcheck of a stopped daemon's state: %v, want exit code 1", err)
	}
}
