package raftstore

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/parleyhq/parley/raftstore/api"
	"github.com/parleyhq/parley/raftstore/pki"
)

// Roles a token may have. admin may do everything; operator changes
// policies and drains hosts and reads everything; worker acts for one
// host's agent, in its own name only; reader reads.
const (
	RoleAdmin    = "admin"
	RoleOperator = "operator"
	RoleWorker   = "worker"
	RoleReader   = "reader"
)

// Roles lists the roles, most powerful first.
var Roles = []string{RoleAdmin, RoleOperator, RoleWorker, RoleReader}

// maxTokens bounds the tokens the store keeps.
const maxTokens = 10000

// Token is a bearer token's record. The store keeps only the SHA-256 of
// the secret, replicated like everything else; the secret is shown once,
// when it is created.
type Token struct {
	Name      string `json:"name"`
	Role      string `json:"role"`
	Hash      string `json:"hash,omitempty"` // hex SHA-256 of the secret; never sent to clients
	Created   int64  `json:"created"`
	CreatedBy string `json:"created_by,omitempty"`
}

// TokenRequest creates (Name, Role, Hash) or revokes (Name) a token.
type TokenRequest struct {
	Name string `json:"name"`
	Role string `json:"role,omitempty"`
	Hash string `json:"hash,omitempty"`
	By   string `json:"by,omitempty"` // set by the member from the caller's identity
}

// TokenCreated answers a create: the secret, shown this once.
type TokenCreated struct {
	Name  string `json:"name"`
	Role  string `json:"role"`
	Token string `json:"token"`
}

// NewToken returns a fresh secret: 32 random bytes in hex, prefixed so
// that a leaked one is recognisable in logs and scanners.
func NewToken() string {
	var b [32]byte
	rand.Read(b[:])
	return "parley_" + hex.EncodeToString(b[:])
}

// HashToken is the hex SHA-256 of a secret, as the store keeps it.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(strings.TrimSpace(secret)))
	return hex.EncodeToString(sum[:])
}

func validRole(r string) bool {
	for _, x := range Roles {
		if r == x {
			return true
		}
	}
	return false
}

func (s *State) createToken(now int64, req *TokenRequest) *Result {
	if err := pki.ValidName(req.Name); err != nil {
		return refused(badRequest("name", "%v", err))
	}
	if !validRole(req.Role) {
		return refused(badRequest("role", "role %q is not one of %s", req.Role, strings.Join(Roles, ", ")))
	}
	if len(req.Hash) != 64 {
		return refused(badRequest("hash", "a token hash is 64 hex digits"))
	}
	if _, err := hex.DecodeString(req.Hash); err != nil {
		return refused(badRequest("hash", "a token hash is 64 hex digits"))
	}
	if _, ok := s.Tokens[req.Name]; ok {
		return refused(errf(CodeConflict, "name", "a token named %q exists; revoke it first", req.Name))
	}
	if len(s.Tokens) >= maxTokens {
		return refused(errf(CodeQuota, "name", "the store holds %d tokens, its limit", maxTokens))
	}
	for _, t := range s.Tokens {
		if t.Hash == req.Hash {
			return refused(errf(CodeConflict, "hash", "that secret is already token %q's", t.Name))
		}
	}
	if s.Tokens == nil {
		s.Tokens = map[string]*Token{}
	}
	t := &Token{Name: req.Name, Role: req.Role, Hash: req.Hash, Created: now, CreatedBy: req.By}
	s.Tokens[req.Name] = t
	s.indexTokens()
	return okResult(t.public())
}

func (s *State) revokeToken(req *TokenRequest) *Result {
	t, ok := s.Tokens[req.Name]
	if !ok {
		return refused(errf(CodeNotFound, "name", "no token named %q", req.Name))
	}
	if t.Role == RoleAdmin {
		admins := 0
		for _, x := range s.Tokens {
			if x.Role == RoleAdmin {
				admins++
			}
		}
		if admins == 1 {
			return refused(errf(CodeConflict, "name", "%q is the last admin token: create another admin token before revoking it", req.Name))
		}
	}
	delete(s.Tokens, req.Name)
	s.indexTokens()
	return okResult(t.public())
}

// hasAdmin says whether any token has the admin role.
func (s *State) hasAdmin() bool {
	for _, t := range s.Tokens {
		if t.Role == RoleAdmin {
			return true
		}
	}
	return false
}

// indexTokens rebuilds the lookup of tokens by hash; the state's write
// lock (or sole ownership) is held. Every request looks its token up: a
// scan of every token cost a store with a thousand workers a tenth of a
// core.
func (s *State) indexTokens() {
	s.tokensByHash = make(map[string]*Token, len(s.Tokens))
	for _, t := range s.Tokens {
		s.tokensByHash[t.Hash] = t
	}
}

// tokenBySecret finds the token whose hash is the secret's: by the hash,
// when the state has its index (a map keyed by SHA-256 digests tells a
// guesser nothing of a secret), by a scan otherwise.
func (s *State) tokenBySecret(secret string) (*Token, bool) {
	if s.tokensByHash != nil {
		t, ok := s.tokensByHash[HashToken(secret)]
		return t, ok
	}
	h := []byte(HashToken(secret))
	for _, t := range s.Tokens {
		if subtle.ConstantTimeCompare([]byte(t.Hash), h) == 1 {
			return t, true
		}
	}
	return nil, false
}

// tokenList lists tokens by name, without their hashes.
func (s *State) tokenList() []Token {
	out := make([]Token, 0, len(s.Tokens))
	for _, t := range s.Tokens {
		out = append(out, t.public())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func (t *Token) public() Token { c := *t; c.Hash = ""; return c }

// validateTokens checks a state's tokens (a restore keeps the cluster's
// own tokens, but a snapshot from raft carries them).
func validateTokens(ts map[string]*Token) error {
	for k, t := range ts {
		if t == nil || t.Name != k || pki.ValidName(k) != nil || !validRole(t.Role) || len(t.Hash) != 64 {
			return fmt.Errorf("tokens: entry %q is malformed", k)
		}
	}
	return nil
}

// audited are the commands an operator or admin issues: each one applied
// on behalf of an identity leaves an audit entry in the journal.
var audited = map[string]bool{
	cmdPush: true, cmdActivate: true, cmdHostDrain: true, cmdRelease: true, cmdRemoveMember: true,
	cmdRestore: true, cmdTokenCreate: true, cmdTokenRevoke: true, cmdMember: true, cmdAudit: true,
}

// AuditRequest records an action that changed the cluster outside the
// state machine (a join, a removal, a leadership transfer).
type AuditRequest struct {
	What string `json:"what"`
}

// audit appends the journal entry for an administrative command, in the
// same apply as the command, so that no change goes unrecorded.
func (s *State) audit(now int64, c *Command, what string) {
	s.Journal = append(s.Journal, JournalEntry{Index: s.JournalNext, Time: now, Kind: api.KindAudit, Worker: c.Who, Outcome: c.Type, Reason: what})
	s.JournalNext++
}

// auditLine summarises a command for its audit entry: the fields that
// say what it was about, never a policy's text, a token's hash or a whole
// restored state.
func auditLine(c *Command) string {
	if c.Type == cmdRestore {
		return fmt.Sprintf("restored a backup of %d bytes", len(c.Body))
	}
	if c.Type == cmdAudit {
		var a AuditRequest
		json.Unmarshal(c.Body, &a)
		return a.What
	}
	var m map[string]any
	if json.Unmarshal(c.Body, &m) != nil {
		return ""
	}
	var parts []string
	for _, k := range []string{"name", "version", "id", "keys", "holder", "token", "role", "drain", "rollback", "author", "who", "message", "http_addr", "raft_addr"} {
		if v, ok := m[k]; ok && v != "" && v != nil && v != false {
			parts = append(parts, fmt.Sprintf("%s=%v", k, v))
		}
	}
	line := strings.Join(parts, " ")
	if len(line) > 512 {
		line = line[:512]
	}
	return line
}

// auditable says whether a command applied for an identity is audited: an
// administrative one, or a lease released by someone other than its
// holder (an operator's forced release; a worker giving back the
// reservations of the VM it migrates is not one).
func auditable(c *Command) bool {
	if c.Who == "" || !audited[c.Type] {
		return false
	}
	if c.Type == cmdRelease {
		var r RenewRequest
		return c.Role != RoleWorker && json.Unmarshal(c.Body, &r) == nil && r.Holder != c.Who
	}
	return true
}
