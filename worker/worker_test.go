package worker

import (
	"testing"

	"github.com/parleyhq/parley/policies"
)

// TestRegistryIsTheVocabulary: the worker implements every constraint of
// the vocabulary and registers nothing else.
func TestRegistryIsTheVocabulary(t *testing.T) {
	w, err := New(Config{ID: "w", Host: "h"}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	got := w.Registry().Known()
	want := policies.Known()
	for k := range want {
		if _, ok := got[k]; !ok {
			t.Errorf("vocabulary entry %s is not registered", k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s is registered but not in the vocabulary", k)
		}
	}
}
