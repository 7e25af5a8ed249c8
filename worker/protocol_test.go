package worker

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/parleyhq/parley/lcc"
)

// TestProtocolVersion: a message of this version carries no "v" (workers
// of earlier releases refuse unknown fields, so they take it), one without
// "v" is read as version 1, and one of a newer version is refused with an
// error that says so.
func TestProtocolVersion(t *testing.T) {
	m := lcc.Message{Interaction: "i1", Policy: lcc.PolicyRef{Name: "balance", Version: 1, Hash: "abc"}, FromID: "w1", ToID: "w2",
		FromRole: lcc.A("r"), ToRole: lcc.A("s"), Body: lcc.A("hello")}
	b, err := json.Marshal(encodeMessage(m))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), `"v"`) {
		t.Errorf("a version-1 message carries a version field, which earlier workers refuse: %s", b)
	}
	var w wireMessage
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatal(err)
	}
	if _, err := decodeMessage(w); err != nil {
		t.Errorf("a message without a version: %v", err)
	}
	w.V = protocolVersion + 1
	if _, err := decodeMessage(w); err == nil || !strings.Contains(err.Error(), "protocol version 2") {
		t.Errorf("a message of protocol version 2: %v, want it refused by version", err)
	}
}
