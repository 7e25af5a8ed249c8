package worker

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/lcc"
	"github.com/parleyhq/parley/policies"
	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/pki"
)

// TestMessagesOnlyFromTheirSender: a worker with TLS takes an LCC message
// only over TLS, from a peer whose certificate (from the cluster's CA)
// names a registered worker, and only when the message's from is that
// name. raftstore.Mem stands in for the store, fakeDC for vCenter; the
// HTTP and TLS are real.
func TestMessagesOnlyFromTheirSender(t *testing.T) {
	ctx := context.Background()
	dir, other := t.TempDir(), t.TempDir()
	for _, d := range []string{dir, other} {
		if err := pki.InitCA(d); err != nil {
			t.Fatal(err)
		}
	}
	certs := map[string]*pki.TLS{}
	for _, n := range []string{"w1", "w2", "w3"} {
		x, err := pki.IssueLocal(dir, n)
		if err != nil {
			t.Fatal(err)
		}
		certs[n] = x
	}
	if _, err := pki.IssueLocal(other, "w2"); err != nil {
		t.Fatal(err)
	}
	st := raftstore.NewMem(raftstore.Config{})
	text, _ := policies.Source("balance")
	v, err := st.Push(ctx, raftstore.PushRequest{Name: "balance", Text: string(text), Author: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Heartbeat(ctx, raftstore.HeartbeatRequest{ID: "w2", Host: "h2", Addr: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	w, err := New(Config{ID: "w1", Host: "h1", Logger: zerolog.Nop(), TLS: certs["w1"]}, newTestDC(), st)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Listen(); err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ref := lcc.PolicyRef{Name: "balance", Version: v.Version, Hash: v.SHA256}
	body := func(from string) []byte {
		m := lcc.Message{Interaction: "i-" + from, Policy: ref, FromID: from, FromRole: lcc.A("overloaded"), ToID: "w1", ToRole: lcc.A("underloaded"),
			Body: lcc.A("hello")}
		b, _ := json.Marshal(encodeMessage(m))
		return b
	}
	client := func(x *pki.TLS) *http.Client {
		tr := &http.Transport{}
		if x != nil {
			tr.DialTLSContext = x.Dial
		}
		return &http.Client{Timeout: 5 * time.Second, Transport: tr}
	}
	send := func(hc *http.Client, scheme, from string) (int, error) {
		resp, err := hc.Post(scheme+w.Addr()+"/v1/lcc/messages", "application/json", bytes.NewReader(body(from)))
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	// a client that trusts the CA but has no certificate
	anon, err := pki.Load(pki.Files{CA: dir + "/" + pki.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pki.Load(pki.Files{CA: dir + "/" + pki.CAFile, Cert: pki.CertFile(other, "w2"), Key: pki.KeyFile(other, "w2")}); err == nil {
		t.Fatal("a certificate of another CA loaded against this CA")
	}

	if code, err := send(client(nil), "http://", "w2"); err == nil && code == http.StatusAccepted {
		t.Error("a plaintext message was taken")
	}
	if code, err := send(client(anon), "https://", "w2"); err != nil || code != http.StatusUnauthorized {
		t.Errorf("a message without a certificate: %d %v, want 401", code, err)
	}
	if code, err := send(client(certs["w2"]), "https://", "w9"); err != nil || code != http.StatusForbidden {
		t.Errorf("w2's certificate with from w9: %d %v, want 403", code, err)
	}
	if code, err := send(client(certs["w3"]), "https://", "w3"); err != nil || code != http.StatusForbidden {
		t.Errorf("an unregistered worker's message: %d %v, want 403", code, err)
	}
	if code, err := send(client(certs["w2"]), "https://", "w2"); err != nil || code != http.StatusAccepted {
		t.Errorf("w2's own message: %d %v, want 202", code, err)
	}
	// a certificate from another CA does not get through the handshake
	otherCert, err := tls.LoadX509KeyPair(pki.CertFile(other, "w2"), pki.KeyFile(other, "w2"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := anon.ClientConfig(w.Addr())
	cfg.Certificates = []tls.Certificate{otherCert}
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	if code, err := send(hc, "https://", "w2"); err == nil {
		t.Errorf("a certificate of another CA: %d, want a failed handshake", code)
	}
	snap := w.refused.snapshot()
	for _, reason := range []string{"unauthenticated", "forged", "unregistered"} {
		if snap[reason] == 0 {
			t.Errorf("no %s refusal counted", reason)
		}
	}
}
