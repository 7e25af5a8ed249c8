package policies

import (
	"context"
	"testing"

	"github.com/parleyhq/parley/lcc"
)

// TestShippedPoliciesVerify checks every shipped policy exhaustively among
// 1 initiator and 3 responders with the fleet's default domain and
// properties: complete (not bounded), no error, every property holding.
func TestShippedPoliciesVerify(t *testing.T) {
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			src, err := Source(name)
			if err != nil {
				t.Fatal(err)
			}
			r, err := Verify(context.Background(), name+".lcc", src, PushResponders)
			if err != nil {
				t.Fatal(err)
			}
			if !r.Complete || r.Errors() > 0 {
				t.Fatalf("complete %v, %d errors: %+v", r.Complete, r.Errors(), r.Findings)
			}
			for _, p := range r.Properties {
				if !p.Holds {
					t.Errorf("property %s does not hold", p.Name)
				}
			}
			if len(r.Symmetry) == 0 {
				t.Error("the responders were not treated as interchangeable")
			}
			t.Logf("%s: %d states, %d transitions, depth %d, %.0f states/s", name, r.States, r.Transitions, r.Depth, r.StatesPerSec)
		})
	}
}

// TestDefaultDomainCoversVocabulary: every constraint a worker provides
// has outcomes in the default domain, so that push can verify any policy
// the store accepts.
func TestDefaultDomainCoversVocabulary(t *testing.T) {
	d, err := VerifyDomain()
	if err != nil {
		t.Fatal(err)
	}
	known := d.Known()
	for _, c := range Vocabulary {
		if _, ok := known[c.Key()]; !ok {
			t.Errorf("the default domain has no outcomes for %s", c.Key())
		}
	}
	if _, err := VerifyProperties(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkVerify reports the exhaustive search of the shipped policies
// among 1 initiator and 3, then 4, responders (with symmetry):
// go test ./policies -run - -bench Verify -benchtime 1x
func BenchmarkVerify(b *testing.B) {
	for _, n := range []int{3, 4} {
		for _, name := range Names() {
			b.Run(name+"/responders="+string(rune('0'+n)), func(b *testing.B) {
				src, _ := Source(name)
				var r *lcc.VerifyReport
				for i := 0; i < b.N; i++ {
					var err error
					if r, err = Verify(context.Background(), name+".lcc", src, n); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(r.States), "states")
				b.ReportMetric(r.StatesPerSec, "states/s")
				b.ReportMetric(float64(r.Depth), "depth")
			})
		}
	}
}
