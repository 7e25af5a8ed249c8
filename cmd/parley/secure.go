package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/parleyhq/parley/raftstore"
	"github.com/parleyhq/parley/raftstore/pki"
)

// tlsFlags are --tls-ca, --tls-cert and --tls-key, with their
// environment defaults, on every server and client command.
type tlsFlags struct {
	ca, cert, key *string
}

func addTLSFlags(fs *flag.FlagSet) tlsFlags {
	return tlsFlags{
		ca:   fs.String("tls-ca", os.Getenv("PARLEY_TLS_CA"), "CA certificate that signs the cluster's certificates (env PARLEY_TLS_CA)"),
		cert: fs.String("tls-cert", os.Getenv("PARLEY_TLS_CERT"), "this part's certificate (env PARLEY_TLS_CERT)"),
		key:  fs.String("tls-key", os.Getenv("PARLEY_TLS_KEY"), "this part's key (env PARLEY_TLS_KEY)"),
	}
}

func (f tlsFlags) files() pki.Files { return pki.Files{CA: *f.ca, Cert: *f.cert, Key: *f.key} }

// howToTLS says how to get certificates, for a server that has none.
const howToTLS = `make a CA and certificates with
    parley cert init DIR
    parley cert issue DIR NAME --host ADDR
  and give --tls-ca DIR/ca.pem --tls-cert DIR/NAME.pem --tls-key DIR/NAME-key.pem,
  or --insecure to run plaintext with no tokens (a lab only)`

// serverTLS loads a server's files: all three are required unless
// insecure, which must then be the only choice.
func (f tlsFlags) server(insecure bool) (*pki.TLS, error) {
	files := f.files()
	if insecure {
		if files.Enabled() {
			return nil, errors.New("--insecure and --tls-* flags are exclusive")
		}
		return nil, nil
	}
	if !files.Enabled() {
		return nil, errors.New("TLS is required: " + howToTLS)
	}
	if err := files.Check(true); err != nil {
		return nil, err
	}
	return pki.Load(files)
}

// client loads a client's files: none means plaintext (an insecure
// store); otherwise at least the CA.
func (f tlsFlags) client() (*pki.TLS, error) {
	files := f.files()
	if !files.Enabled() {
		return nil, nil
	}
	if err := files.Check(false); err != nil {
		return nil, err
	}
	return pki.Load(files)
}

// tokenFlag is --token-file; PARLEY_TOKEN holds the token itself.
func addTokenFlag(fs *flag.FlagSet) *string {
	return fs.String("token-file", os.Getenv("PARLEY_TOKEN_FILE"), "file holding the bearer token (else env PARLEY_TOKEN)")
}

// token reads the token: from the file when one is named, else from
// PARLEY_TOKEN; "" when neither is set.
func token(file string) (string, error) {
	if file == "" {
		return strings.TrimSpace(os.Getenv("PARLEY_TOKEN")), nil
	}
	return readSecret(file, "token file")
}

// readSecret reads a file holding a secret, refusing one that others may
// read: a secret that leaked to every local user is no secret.
func readSecret(path, what string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("%s %s is readable by others (mode %04o): chmod 600 %s", what, path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s %s is empty", what, path)
	}
	return s, nil
}

// adminToken reads the admin token file of a bootstrapping member; when
// the file does not exist it makes a new token and writes it there, mode
// 0600, so that the operator has it.
func adminToken(path string) (secret string, created bool, err error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		secret = raftstore.NewToken()
		if err := writeSecretFile(path, secret); err != nil {
			return "", false, fmt.Errorf("admin token file: %w", err)
		}
		return secret, true, nil
	}
	secret, err = readSecret(path, "admin token file")
	if err == nil && len(secret) < 16 {
		err = fmt.Errorf("admin token file %s: a token is at least 16 characters", path)
	}
	return secret, false, err
}

// writeSecretFile writes a new secret to path, mode 0600; it never
// replaces a file that exists.
func writeSecretFile(path, secret string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintln(f, secret); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
