package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// TestStaticBinary runs the go build line of the Dockerfile and checks the
// binary it makes needs no dynamic loader or shared library, so that it
// runs on a distroless or scratch image.
func TestStaticBinary(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("builds the binary; skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("checks an ELF binary: linux only")
	}
	root, _ := filepath.Abs("../..")
	df, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^RUN (CGO_ENABLED=0 go build .*) -o \S+ (\./cmd/pollhook)$`).FindStringSubmatch(string(df))
	if m == nil {
		t.Fatal("Dockerfile has no `RUN CGO_ENABLED=0 go build … -o … ./cmd/pollhook` line")
	}
	for _, want := range []string{"USER 65532", "HEALTHCHECK", `ENTRYPOINT ["pollhook"]`, "VOLUME /data", "WORKDIR /data", "-X main.version=${VERSION}"} {
		if !strings.Contains(string(df), want) {
			t.Errorf("Dockerfile lacks %q", want)
		}
	}
	out := filepath.Join(t.TempDir(), "pollhook")
	// Run the line as the image's shell would, with the VERSION build
	// argument in the environment as docker build puts it.
	cmd := exec.Command("sh", "-c", m[1]+" -o "+out+" "+m[2])
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "VERSION=v0.0.0-static-test")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %v\n%s", cmd.Args, err, b)
	}
	f, err := elf.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Fatal("the binary asks for a dynamic loader (PT_INTERP): it is not static")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Fatalf("the binary needs shared libraries %v", libs)
	}
	if b, err := exec.Command(out, "version").CombinedOutput(); err != nil || !strings.HasPrefix(string(b), "pollhook v0.0.0-static-test ") {
		t.Fatalf("the static binary's version: %v %s; want it to name the VERSION it was built with", err, b)
	}
}
