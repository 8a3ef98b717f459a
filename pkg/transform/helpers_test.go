package transform_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata")

// created is the fixed creation time the response tests inject.
const created = 1700000000

// fixtures returns the names of the cases in testdata/<provider> with the
// given kind (request, response or stream).
func fixtures(t testing.TB, provider, kind string) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", provider, "*."+kind+".json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no %s fixtures for %s", kind, provider)
	}
	names := make([]string, len(paths))
	for i, p := range paths {
		names[i] = strings.TrimSuffix(filepath.Base(p), "."+kind+".json")
	}
	return names
}

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// streamPieces reads a stream fixture: a JSON array of the raw pieces the
// provider sent, as recorded.
func streamPieces(t testing.TB, path string) [][]byte {
	t.Helper()
	var pieces []string
	if err := json.Unmarshal(readFile(t, path), &pieces); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	out := make([][]byte, len(pieces))
	for i, p := range pieces {
		out[i] = []byte(p)
	}
	return out
}

// checkGolden compares got with the golden file, or rewrites it with
// -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update after checking):\n got: %s\nwant: %s", path, got, want)
	}
}

// indentJSON pretty-prints a JSON body for golden files and fails on
// invalid JSON.
func indentJSON(t testing.TB, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Indent(&buf, body, "", "  "); err != nil {
		t.Fatalf("invalid JSON %v: %s", err, body)
	}
	buf.WriteByte('\n')
	return buf.Bytes()
}

// requestGolden renders a translated request for a golden file.
func requestGolden(t testing.TB, res transform.RequestResult) []byte {
	t.Helper()
	g := struct {
		Path          string             `json:"path"`
		Stream        bool               `json:"stream"`
		SetHeaders    []transform.Header `json:"set_headers"`
		RemoveHeaders []string           `json:"remove_headers"`
		Body          json.RawMessage    `json:"body"`
	}{res.Path, res.Stream, res.SetHeaders, res.RemoveHeaders, res.Body}
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	return indentJSON(t, b)
}

// runStream feeds pieces to a fresh response translator, copying each
// piece's output (it is only valid until the next call), and returns the
// output and the last result.
func runStream(t testing.TB, tr transform.ResponseTranslator, pieces [][]byte) ([]byte, transform.StreamResult) {
	t.Helper()
	var out []byte
	var last transform.StreamResult
	for i, p := range pieces {
		res, err := tr.StreamChunk(p, i == len(pieces)-1)
		if err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
		out = append(out, res.Body...)
		last = res
	}
	return out, last
}

// splitEverywhere returns data cut in two at every position in turn.
func splitEverywhere(data []byte) [][][]byte {
	var out [][][]byte
	for i := 0; i <= len(data); i++ {
		out = append(out, [][]byte{data[:i:i], data[i:]})
	}
	return out
}

// sseDataLines returns the payloads of the data lines of an SSE stream.
func sseDataLines(stream []byte) []string {
	var out []string
	for _, line := range strings.Split(string(stream), "\n") {
		if d, ok := strings.CutPrefix(line, "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}
