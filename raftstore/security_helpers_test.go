package raftstore

import (
	"net/http"
	"os"
	"sync"
	"testing"

	"github.com/parleyhq/parley/raftstore/pki"
)

// Every test runs the store as production does: TLS with certificates of
// one test CA, and tokens. The CA is made once per test binary.

const testAdminToken = "parley_test-admin-secret-of-some-length"

var testPKI struct {
	once sync.Once
	mu   sync.Mutex
	dir  string
	err  error
	tls  map[string]*pki.TLS
}

func TestMain(m *testing.M) {
	code := m.Run()
	if testPKI.dir != "" {
		os.RemoveAll(testPKI.dir)
	}
	os.Exit(code)
}

// testTLS returns the TLS files of name, issued by the test CA for
// 127.0.0.1 and localhost.
func testTLS(t testing.TB, name string) *pki.TLS {
	t.Helper()
	testPKI.once.Do(func() {
		testPKI.dir, testPKI.err = os.MkdirTemp("", "parley-test-pki-")
		if testPKI.err == nil {
			testPKI.err = pki.InitCA(testPKI.dir)
		}
		testPKI.tls = map[string]*pki.TLS{}
	})
	if testPKI.err != nil {
		t.Fatal(testPKI.err)
	}
	testPKI.mu.Lock()
	defer testPKI.mu.Unlock()
	if x, ok := testPKI.tls[name]; ok {
		return x
	}
	if err := pki.Issue(testPKI.dir, name, []string{"127.0.0.1", "localhost"}, false); err != nil {
		t.Fatal(err)
	}
	x, err := pki.Load(pki.Files{CA: testPKI.dir + "/" + pki.CAFile, Cert: pki.CertFile(testPKI.dir, name), Key: pki.KeyFile(testPKI.dir, name)})
	if err != nil {
		t.Fatal(err)
	}
	testPKI.tls[name] = x
	return x
}

// testClient is an admin's client of the members at addrs.
func testClient(t testing.TB, addrs []string) (*Client, error) {
	return NewClient(addrs, WithTLS(testTLS(t, "admin")), WithToken(testAdminToken))
}

// testHTTP is an admin's raw HTTP client: TLS, and the admin token on
// every request.
func testHTTP(t testing.TB) *http.Client {
	return &http.Client{Transport: withToken{testAdminToken, httpClient(testTLS(t, "admin"), 0).Transport}}
}

type withToken struct {
	secret string
	next   http.RoundTripper
}

func (w withToken) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	if w.secret != "" {
		r.Header.Set("Authorization", "Bearer "+w.secret)
	}
	return w.next.RoundTrip(r)
}
