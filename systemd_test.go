package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The systemd unit in docs/ is the one docs/deploy.md shows, it passes
// `systemd-analyze verify`, and `systemd-analyze security` scores it 2.0 or
// less (the hardened unit; 8.3 "EXPOSED" before). It also keeps the settings
// that make it work when followed literally: it retries for ever while
// Redis is not up yet, and reads the TLS key through LoadCredential under
// DynamicUser.
func TestSystemdUnit(t *testing.T) {
	unit, err := os.ReadFile("docs/sessionlab@.service")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := os.ReadFile("docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "```ini\n"+string(unit)+"```") {
		t.Error("docs/deploy.md does not show docs/sessionlab@.service as it is (one ```ini block, byte for byte)")
	}
	for _, line := range []string{"StartLimitIntervalSec=0", "Restart=always", "RestartSec=2s", "DynamicUser=yes",
		"LoadCredential=redis-client-key.pem:/etc/sessionlab/redis-client-key.pem", "REDIS_KEY=%d/redis-client-key.pem"} {
		if !strings.Contains(string(unit), line) {
			t.Errorf("the unit lost %q", line)
		}
	}

	tool, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed here: the unit was not verified (apt-get install systemd)")
	}
	// An instance of the template, its binary replaced by one that exists
	// here (verify checks that ExecStart is executable).
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sessionlab@1.service")
	if err := os.WriteFile(path, []byte(strings.ReplaceAll(string(unit), "/usr/local/bin/sessionlab", exe)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(tool, "verify", path).CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err := exec.Command(tool, "security", "--offline=true", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security --offline=true: %v\n%s", err, out)
	}
	m := regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score > 2.0 {
		t.Errorf("systemd-analyze security: exposure %.1f, want 2.0 or less:\n%s", score, out)
	} else {
		t.Logf("systemd-analyze security: exposure %.1f", score)
	}
}
