package main

// The image starts FROM scratch, with no system CA bundle: the Mozilla
// roots compiled in here are what Go trusts when the system has none
// (vCenters with publicly signed certificates). A system bundle, or one
// mounted at /etc/ssl/certs/ca-certificates.crt (or named by
// SSL_CERT_FILE), still takes precedence; a vCenter signed by its own
// VMCA is trusted with --vsphere-ca or pinned with --thumbprint.
import _ "golang.org/x/crypto/x509roots/fallback"
