package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// nodeOpenAIVersion is the npm openai release the test installs.
const nodeOpenAIVersion = "7.57.0"

// TestNodeSDK proves a second real SDK works: the official openai npm
// package, installed by the test from the npm registry.
func TestNodeSDK(t *testing.T) {
	if testing.Short() {
		t.Skip("installs an npm package")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is required for the npm SDK test: ", err)
	}
	dir := nodeModules(t)
	s := startStack(t)

	script, err := filepath.Abs("testdata/node_client.mjs")
	if err != nil {
		t.Fatal(err)
	}
	// Node resolves packages from the script's directory upwards, so the
	// script runs from a copy inside the install directory.
	runScript := filepath.Join(dir, "node_client.mjs")
	src, err := os.ReadFile(script)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(runScript, src, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(t.Context(), node, runScript)
	cmd.Env = append(os.Environ(), "TOLLGATE_BASE_URL="+s.sim.URL()+"/v1", "TOLLGATE_KEY="+demoKey)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("node client: %v\n%s", err, stderr)
	}
	var got struct {
		Content     string                                       `json:"content"`
		Finish      string                                       `json:"finish"`
		Usage       struct{ PromptTokens, CompletionTokens int } `json:"usage"`
		Streamed    string                                       `json:"streamed"`
		StreamUsage struct {
			TotalTokens int `json:"total_tokens"`
		} `json:"streamUsage"`
		ErrorClass  string `json:"errorClass"`
		ErrorStatus int    `json:"errorStatus"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node output %s: %v", out, err)
	}
	if got.Content != "echo: hello from node" || got.Finish != "stop" {
		t.Errorf("non-stream: %+v", got)
	}
	if got.Streamed != "echo: stream from node" || got.StreamUsage.TotalTokens != 7 {
		t.Errorf("stream: %q usage %+v", got.Streamed, got.StreamUsage)
	}
	if got.ErrorClass != "NotFoundError" || got.ErrorStatus != 404 {
		t.Errorf("error: %s %d", got.ErrorClass, got.ErrorStatus)
	}
}

// nodeModules installs the openai package once per machine into the user
// cache, so repeated runs cost nothing.
func nodeModules(t *testing.T) string {
	t.Helper()
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "tollgate-e2e", "openai-"+nodeOpenAIVersion)
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai", "package.json")); err == nil {
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("npm is required for the npm SDK test: ", err)
	}
	cmd := exec.CommandContext(t.Context(), npm, "install", "--no-audit", "--no-fund", "--no-save", "--prefix", dir, "openai@"+nodeOpenAIVersion)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm install openai@%s: %v\n%s", nodeOpenAIVersion, err, out)
	}
	return dir
}
