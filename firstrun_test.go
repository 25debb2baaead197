package main

import (
	"os"
	"strings"
	"testing"
)

// The README promises a first run that builds task without the AWS and
// Google Cloud SDKs (go-task v3.46 and later pull them in through go-getter
// for remote Taskfiles: twice the packages, 1.2 GB of module cache). go.mod
// lists every module a build needs, so a task upgrade that brings them
// back shows here.
func TestFirstRunBuildsNoCloudSDKs(t *testing.T) {
	b, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		for _, heavy := range []string{"github.com/aws/", "cloud.google.com/", "github.com/hashicorp/go-getter", "google.golang.org/api "} {
			if strings.Contains(line, heavy) {
				t.Errorf("go.mod needs %s: the first `go tool task` would build it", strings.TrimSpace(line))
			}
		}
	}
}
