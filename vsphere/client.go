// Package vsphere is everything parley does with vCenter, through govmomi:
// connect and keep the session, read hosts and VMs with their load, watch
// for changes, migrate with progress, and drive maintenance mode. Workers
// see and move VMs only through this package.
//
// It reads the properties real vCenter reports (summary.quickStats,
// summary.hardware, runtime.host), groups VMs by each VM's runtime.host
// rather than the host's vm list, and relocates with RelocateVM_Task
// giving the target host and its resource pool. Nothing here depends on
// the simulator's quirks; package sim builds a stricter simulator.
package vsphere

import (
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/vmware/govmomi"
	"github.com/vmware/govmomi/session"
	"github.com/vmware/govmomi/session/keepalive"
	"github.com/vmware/govmomi/vim25"
	"github.com/vmware/govmomi/vim25/soap"
	"github.com/vmware/govmomi/vim25/types"
)

// Sentinel errors: the kinds of failure a worker acts on. Errors returned
// by this package wrap one of them (errors.Is works).
var (
	ErrNotFound         = errors.New("vsphere: no such VM or host")
	ErrHostUnavailable  = errors.New("vsphere: host is disconnected or in maintenance")
	ErrTaskInProgress   = errors.New("vsphere: a task is already in progress on this VM")
	ErrNotAuthenticated = errors.New("vsphere: not authenticated")
	ErrTimeout          = errors.New("vsphere: timed out")
	ErrCancelled        = errors.New("vsphere: the relocation was cancelled")
)

// Config says how to reach vCenter.
type Config struct {
	URL        string // https://user:pass@host/sdk; credentials may come separately
	User       string
	Password   string
	Insecure   bool   // allow http:// and skip certificate verification (a lab only)
	Thumbprint string // a strict pin: only the certificate with this SHA-1 thumbprint (AA:BB:...) is accepted
	CAFile     string // trust the CA certificates in this PEM file instead of the system's
	KeepAlive  time.Duration
	Cluster    string // when set, the cluster the worker's host must be in (GOVC_CLUSTER)
	Datacenter string // read from GOVC_DATACENTER; hosts are found by name in every datacentre

	// PasswordInURL is set by Credentials when the password came from the
	// URL, where ps shows it: the caller should warn.
	PasswordInURL bool
}

// Check refuses what is unsafe unless Insecure: a plaintext URL.
func (c Config) Check() error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("vsphere: URL %s: %v", Redacted(c.URL), err)
	}
	if u.Scheme == "http" && !c.Insecure {
		return fmt.Errorf("vsphere: %s is plaintext: the session cookie and the password would cross the network in clear; use https, or --insecure for a lab", Redacted(c.URL))
	}
	if c.Thumbprint != "" && normalThumbprint(c.Thumbprint) == "" {
		return fmt.Errorf("vsphere: thumbprint %q is not 20 hex bytes (AA:BB:...)", c.Thumbprint)
	}
	return nil
}

// normalThumbprint is a SHA-1 thumbprint in vSphere's form (upper-case
// hex pairs joined by colons), or "" when s is not one.
func normalThumbprint(s string) string {
	h := strings.ToUpper(strings.NewReplacer(":", "", " ", "").Replace(s))
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha1.Size {
		return ""
	}
	return hexPairs(b)
}

// Thumbprint is the SHA-1 thumbprint of a certificate (its DER) as vSphere
// shows one: upper-case hex pairs joined by colons.
func Thumbprint(der []byte) string {
	sum := sha1.Sum(der)
	return hexPairs(sum[:])
}

func hexPairs(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}

// secureTLS applies the CA file and the strict pin to a SOAP client.
// govmomi checks a thumbprint only after normal verification has failed,
// so a certificate the system trusts would pass whatever its thumbprint:
// the pin is checked here, on every handshake, and nothing else counts.
func (c Config) secureTLS(sc *soap.Client) error {
	if c.CAFile != "" {
		if err := sc.SetRootCAs(c.CAFile); err != nil {
			return fmt.Errorf("vsphere: CA file %s: %w", c.CAFile, err)
		}
	}
	if c.Thumbprint == "" {
		return nil
	}
	want := normalThumbprint(c.Thumbprint)
	tc := sc.DefaultTransport().TLSClientConfig
	tc.InsecureSkipVerify = true // replaced by the pin below
	tc.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		if len(raw) == 0 {
			return errors.New("vCenter presented no certificate")
		}
		if got := Thumbprint(raw[0]); got != want {
			return fmt.Errorf("vCenter's certificate has thumbprint %s, not the pinned %s", got, want)
		}
		return nil
	}
	return nil
}

// Credentials fill in the user and password from, in order: the URL, the
// env variables PARLEY_VSPHERE_USER and PARLEY_VSPHERE_PASSWORD, and a file
// holding "user:password" (or the user and the password on two lines).
func (c *Config) Credentials(file string) error {
	u, err := url.Parse(c.URL)
	if err != nil {
		return fmt.Errorf("vsphere: URL: %w", err)
	}
	if u.User != nil {
		if c.User == "" {
			c.User = u.User.Username()
		}
		if p, ok := u.User.Password(); ok && c.Password == "" {
			c.Password, c.PasswordInURL = p, true
		}
	}
	if c.User == "" {
		c.User = os.Getenv("PARLEY_VSPHERE_USER")
	}
	if c.Password == "" {
		c.Password = os.Getenv("PARLEY_VSPHERE_PASSWORD")
	}
	if (c.User == "" || c.Password == "") && file != "" {
		fi, err := os.Stat(file)
		if err != nil {
			return fmt.Errorf("vsphere: credentials file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return fmt.Errorf("vsphere: credentials file %s is readable by others (mode %04o): chmod 600 %s", file, fi.Mode().Perm(), file)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return fmt.Errorf("vsphere: credentials file: %w", err)
		}
		text := strings.TrimSpace(string(b))
		user, pass, ok := strings.Cut(text, "\n")
		if !ok {
			user, pass, ok = strings.Cut(text, ":")
		}
		if !ok {
			return fmt.Errorf("vsphere: credentials file %s: want user:password or two lines", file)
		}
		c.User, c.Password = strings.TrimSpace(user), strings.TrimSpace(pass)
	}
	if c.User == "" {
		return errors.New("vsphere: no user: give it in the URL, PARLEY_VSPHERE_USER or a credentials file")
	}
	return nil
}

// Redacted returns the URL without its password, for logs.
func Redacted(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparseable URL>"
	}
	return u.Redacted()
}

// Client is a vCenter session that logs in again when the session has
// expired.
type Client struct {
	cfg Config
	log zerolog.Logger
	url *url.URL

	mu  sync.Mutex
	gc  *govmomi.Client
	vim *vim25.Client

	poolMu sync.Mutex
	pools  map[string]types.ManagedObjectReference // host -> resource pool

	noLogUserEvent atomic.Bool // vCenter lacks LogUserEvent: post events instead

	perfMu         sync.Mutex // the statistics counters' keys (perf.go)
	cpuKey, memKey int32
}

// Connect logs in to vCenter.
func Connect(ctx context.Context, cfg Config, log zerolog.Logger) (*Client, error) {
	u, err := soap.ParseURL(cfg.URL)
	if err != nil || u == nil {
		return nil, fmt.Errorf("vsphere: URL %s: %v", Redacted(cfg.URL), err)
	}
	u.User = nil
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 5 * time.Minute
	}
	c := &Client{cfg: cfg, log: log.With().Str("vcenter", u.Host).Logger(), url: u, pools: map[string]types.ManagedObjectReference{}}
	if err := c.login(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Client) login(ctx context.Context) error {
	sc := soap.NewClient(c.url, c.cfg.Insecure)
	if err := c.cfg.secureTLS(sc); err != nil {
		return err
	}
	vc, err := vim25.NewClient(ctx, sc)
	if err != nil {
		return fmt.Errorf("vsphere: connect to %s: %w", c.url.Host, classify(err))
	}
	gc := &govmomi.Client{Client: vc, SessionManager: session.NewManager(vc)}
	if err := gc.Login(ctx, url.UserPassword(c.cfg.User, c.cfg.Password)); err != nil {
		return fmt.Errorf("vsphere: login to %s as %s: %w", c.url.Host, c.cfg.User, classify(err))
	}
	vc.RoundTripper = keepalive.NewHandlerSOAP(vc.RoundTripper, c.cfg.KeepAlive, func() error {
		_, err := gc.SessionManager.UserSession(context.Background())
		return err
	})
	c.mu.Lock()
	old := c.gc
	c.gc, c.vim = gc, vc
	c.mu.Unlock()
	if old != nil {
		lctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		old.Logout(lctx)
		cancel()
	}
	c.log.Info().Str("user", c.cfg.User).Msg("logged in to vCenter")
	return nil
}

// client returns the current session's client.
func (c *Client) client() *vim25.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.vim
}

// SessionKey returns the current session's key (tests use it to end the
// session from outside).
func (c *Client) SessionKey(ctx context.Context) (string, error) {
	c.mu.Lock()
	gc := c.gc
	c.mu.Unlock()
	s, err := gc.SessionManager.UserSession(ctx)
	if err != nil || s == nil {
		return "", fmt.Errorf("vsphere: no session: %v", err)
	}
	return s.Key, nil
}

// do runs fn, and once more after a fresh login when vCenter says the
// session is not authenticated.
func (c *Client) do(ctx context.Context, fn func(vc *vim25.Client) error) error {
	err := fn(c.client())
	if !errors.Is(classify(err), ErrNotAuthenticated) {
		return err
	}
	c.log.Warn().Msg("vCenter session expired; logging in again")
	if lerr := c.login(ctx); lerr != nil {
		return lerr
	}
	return fn(c.client())
}

// Close logs out.
func (c *Client) Close() error {
	c.mu.Lock()
	gc := c.gc
	c.mu.Unlock()
	if gc == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return gc.Logout(ctx)
}

// faultOf returns the vSphere fault inside err, if any.
func faultOf(err error) types.BaseMethodFault {
	if err == nil {
		return nil
	}
	if soap.IsSoapFault(err) {
		v := soap.ToSoapFault(err).VimFault()
		if v == nil {
			return nil
		}
		// the decoder gives fault values, not pointers; the fault
		// interfaces are implemented on pointers
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Pointer {
			p := reflect.New(rv.Type())
			p.Elem().Set(rv)
			rv = p
		}
		if f, ok := rv.Interface().(types.BaseMethodFault); ok {
			return f
		}
	}
	if soap.IsVimFault(err) {
		return soap.ToVimFault(err)
	}
	var h types.HasLocalizedMethodFault
	if errors.As(err, &h) {
		if lf := h.GetLocalizedMethodFault(); lf != nil {
			return lf.Fault
		}
	}
	return nil
}

// classify wraps err with the sentinel for its kind, keeping the original.
func classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	switch faultOf(err).(type) {
	case *types.NotAuthenticated:
		return fmt.Errorf("%w: %v", ErrNotAuthenticated, err)
	case *types.ManagedObjectNotFound, *types.NotFound:
		return fmt.Errorf("%w: %v", ErrNotFound, err)
	case *types.TaskInProgress:
		return fmt.Errorf("%w: %v", ErrTaskInProgress, err)
	case *types.HostNotConnected, *types.InvalidHostState, *types.HostInDomain, *types.InvalidHostConnectionState, *types.InvalidState:
		return fmt.Errorf("%w: %v", ErrHostUnavailable, err)
	case *types.InvalidArgument:
		if strings.Contains(strings.ToLower(err.Error()), "host") {
			return fmt.Errorf("%w: %v", ErrNotFound, err)
		}
	}
	return err
}

// FaultName is the type name of the vCenter fault behind err
// ("InsufficientResourcesFault", "NotAuthenticated"), or "" when err
// carries none (a connection that failed, a deadline).
func FaultName(err error) string {
	f := faultOf(err)
	if f == nil {
		return ""
	}
	t := reflect.TypeOf(f)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t.Name()
}
