package policies

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/parleyhq/parley/lcc"
)

//go:embed verify.domain
var verifyDomain []byte

//go:embed verify.props
var verifyProps []byte

// VerifyDomain is the fleet's default verification domain: an outcome set
// for every constraint of the vocabulary.
func VerifyDomain() (*lcc.Domain, error) { return lcc.ParseDomain("verify.domain", verifyDomain) }

// VerifyProperties are the fleet's default properties: no double award,
// no double migration, a reservation always settled, and some run that
// migrates.
func VerifyProperties() (*lcc.Properties, error) {
	return lcc.ParseProperties("verify.props", verifyProps)
}

// DefaultAgents is the population a policy is verified among when none is
// given: one agent for each initial role and n for every other role, ids
// h1, h2, ...
func DefaultAgents(m *lcc.Model, n int) []lcc.AgentSpec {
	var out []lcc.AgentSpec
	next := 1
	for _, r := range m.Roles {
		count := n
		if r.Kind == "initial" {
			count = 1
		}
		for i := 0; i < count; i++ {
			out = append(out, lcc.AgentSpec{Role: r.Role, ID: fmt.Sprintf("h%d", next)})
			next++
		}
	}
	return out
}

// PushResponders is how many responders a pushed policy is verified
// among: 1 initiator and 3 responders, as the shipped policies are.
const PushResponders = 3

// Verify checks a policy text with the fleet's default domain and
// properties among 1 initiator and n responders per role, with symmetry.
// The static check must have passed.
func Verify(ctx context.Context, file string, text []byte, n int) (*lcc.VerifyReport, error) {
	m, errs := lcc.Parse(file, text)
	if errs.HasErrors() {
		return nil, errs
	}
	dom, err := VerifyDomain()
	if err != nil {
		return nil, err
	}
	props, err := VerifyProperties()
	if err != nil {
		return nil, err
	}
	prog := lcc.NewProgram(m, lcc.PolicyRef{Name: file, Version: 1, Hash: lcc.HashSource(text)})
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return lcc.Verify(lcc.VerifyConfig{Program: prog, Agents: DefaultAgents(m, n), Domain: dom, Properties: props,
		Symmetry: true, Context: ctx})
}

// DefaultVerifyTexts returns the texts of the default domain and properties.
func DefaultVerifyTexts() (domain, properties string) {
	return string(verifyDomain), string(verifyProps)
}
