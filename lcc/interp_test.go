package lcc

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runModel runs agents "role=id ..." of src, with facts "id: f. g." as
// knowledge, and returns the outcomes by agent id.
func runModel(t *testing.T, src, agents string, reg *Registry, knowledge ...string) (map[string]Outcome, *recorder) {
	t.Helper()
	facts := map[string][]Term{}
	known := reg.Known()
	for _, k := range knowledge {
		id, text, _ := strings.Cut(k, ":")
		ts, err := ParseFacts("knowledge", []byte(text))
		if err != nil {
			t.Fatal(err)
		}
		facts[id] = append(facts[id], ts...)
		for _, f := range ts {
			n, a, _ := Functor(f)
			known[keyOf(n, a)] = ConstraintInfo{Name: n, Arity: a}
		}
	}
	prog := mustProgram(t, "m", src, known)
	var specs []AgentSpec
	for _, f := range strings.Fields(agents) {
		role, id, _ := strings.Cut(f, "=")
		rt, err := ParseTerm(role)
		if err != nil {
			t.Fatal(err)
		}
		specs = append(specs, AgentSpec{Role: rt, ID: id, Knowledge: facts[id]})
	}
	rec := &recorder{}
	outs, err := RunLocal(context.Background(), LocalConfig{Program: prog, Agents: specs, Registry: reg, Tracer: rec, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return outcomeMap(outs), rec
}

func wantStatus(t *testing.T, outs map[string]Outcome, id string, want Status) {
	t.Helper()
	o, ok := outs[id]
	if !ok {
		t.Fatalf("no outcome for %s", id)
	}
	if o.Status != want {
		t.Fatalf("%s: %s (%s), want %s", id, o.Status, o.Reason, want)
	}
}

func TestUnify(t *testing.T) {
	x, y := NewRef("X"), NewRef("Y")
	tests := []struct {
		a, b Term
		ok   bool
	}{
		{A("a"), A("a"), true},
		{A("a"), A("b"), false},
		{I(1), I(1), true},
		{I(1), F(1), false},
		{F(0.5), F(0.5), true},
		{S("s"), S("s"), true},
		{S("s"), A("s"), false},
		{L(), L(), true},
		{L(A("a")), L(), false},
		{C("f", A("a"), I(2)), C("f", A("a"), I(2)), true},
		{C("f", A("a")), C("g", A("a")), false},
		{C("f", A("a")), C("f", A("a"), A("b")), false},
		{ListWithTail([]Term{A("a")}, NewRef("T")), L(A("a"), A("b"), A("c")), true},
		{C("f", NewRef("Z"), NewRef("Z")), C("f", A("a"), A("b")), true}, // distinct refs named alike
		{x, C("f", x), false},                         // occurs check
		{L(x), L(C("g", L(x))), false},                // occurs check through a list
		{C("p", y, y), C("p", A("a"), A("b")), false}, // same variable twice
	}
	for i, tt := range tests {
		tr := &Trail{}
		if got := Unify(tt.a, tt.b, tr); got != tt.ok {
			t.Errorf("%d: unify(%s, %s) = %v, want %v", i, FormatTerm(tt.a), FormatTerm(tt.b), got, tt.ok)
		}
		tr.Undo(0)
	}
	// bindings are undone on failure
	z := NewRef("Z")
	if Unify(C("f", z, A("a")), C("f", A("b"), A("c")), nil) || Deref(z) != z {
		t.Errorf("failed unification left Z bound to %s", FormatTerm(z))
	}
}

func TestSequenceAndNull(t *testing.T) {
	src := `r(p, initial)
a(p, P) :: null <- X = 1 then null <- Y is X + 1 then null <- Y == 2.`
	outs, rec := runModel(t, src, "p=p", nil)
	wantStatus(t, outs, "p", Closed)
	if !rec.has(TraceConstraint, "p solves 2 is 1 + 1") {
		t.Errorf("trace lacks the solved constraint with its bindings: %v", rec.lines(TraceConstraint))
	}
}

func TestThenStopsAtFailure(t *testing.T) {
	src := `r(p, initial)
r(q, necessary)
a(p, P) :: null <- 1 > 2 then go => a(q, q).
a(q, Q) :: go <= a(p, P) within 1.`
	outs, rec := runModel(t, src, "p=p q=q", nil)
	wantStatus(t, outs, "p", Failed)
	if rec.has(TraceSend, "go") {
		t.Error("a step after a failed one ran")
	}
	if !strings.Contains(outs["p"].Reason, "condition failed: 1 > 2") {
		t.Errorf("reason %q does not name the condition", outs["p"].Reason)
	}
}

func TestOrCommitsWithoutBacktracking(t *testing.T) {
	// The first alternative's opening holds, so it is committed; its later
	// failure fails the definition instead of trying the second.
	src := `r(p, initial)
a(p, P) :: ( null <- X = 1 then null <- X > 5 ) or null.`
	outs, _ := runModel(t, src, "p=p", nil)
	wantStatus(t, outs, "p", Failed)

	// An alternative whose opening condition fails leaves no bindings.
	src = `r(p, initial)
a(p, P) :: ( null <- X = 1 and X > 5 ) or ( null <- X = 2 ) then null <- X == 2.`
	outs, _ = runModel(t, src, "p=p", nil)
	wantStatus(t, outs, "p", Closed)
}

func TestOrWithNoAlternativeFails(t *testing.T) {
	src := `r(p, initial)
a(p, P) :: null <- fail or null <- 1 > 2.`
	outs, _ := runModel(t, src, "p=p", nil)
	wantStatus(t, outs, "p", Failed)
}

func TestOrOpeningRole(t *testing.T) {
	// A role change opens an alternative: its own opening condition decides.
	src := `r(p, initial)
a(p, P) :: a(pick(1), P) or a(pick(2), P).
a(pick(N), P) :: null <- N == 2.`
	outs, rec := runModel(t, src, "p=p", nil)
	wantStatus(t, outs, "p", Closed)
	if !rec.has(TraceRole, "pick(2)") {
		t.Error("second alternative not taken")
	}
}

func TestReceiveAlternativeAfterFailedOpening(t *testing.T) {
	// A receive alternative after a non-receive one starts waiting once
	// that one has failed; the message already in the mailbox decides.
	src := `r(s, initial)
r(w, necessary)
a(s, S) :: m(2) => a(w, w) then ok(X) <= a(w, w) within 6 then null <- X == 2.
a(w, W) :: ( m(1) <= a(s, S) within 2 then ok(1) => a(s, S) )
        or ( null <- fail )
        or ( m(N) <= a(s, S) within 2 then ok(N) => a(s, S) ).`
	outs, _ := runModel(t, src, "s=s w=w", nil)
	wantStatus(t, outs, "s", Closed)
	wantStatus(t, outs, "w", Closed)
}

func TestWithinDeadline(t *testing.T) {
	src := `r(p, initial)
r(q, necessary)
a(p, P) :: reply <= a(q, q) within ms(100).
a(q, Q) :: null <- fail or reply => a(p, p) <- fail or null.`
	start := time.Now()
	outs, rec := runModel(t, src, "p=p q=q", nil)
	wantStatus(t, outs, "p", TimedOut)
	if time.Since(start) > 5*time.Second {
		t.Errorf("a 100ms deadline took %v", time.Since(start))
	}
	if !rec.has(TraceTimeout, "reply") {
		t.Error("no timeout in the trace")
	}
}

func TestParJoinsBothBranches(t *testing.T) {
	src := `r(h, initial)
r(l, necessary)
a(h, H) :: ( (ping(1) => a(l, l) then pong(X) <= a(l, l)) par (ping(2) => a(l, l) then pong(Y) <= a(l, l)) )
           then null <- sum([X, Y], 3).
a(l, L) :: ping(A) <= a(h, H) then ping(B) <= a(h, H) then pong(B) => a(h, H) then pong(A) => a(h, H).`
	outs, _ := runModel(t, src, "h=h l=l", nil)
	wantStatus(t, outs, "h", Closed)
	wantStatus(t, outs, "l", Closed)
}

func TestParFailureCancelsSibling(t *testing.T) {
	src := `r(h, initial)
r(l, necessary)
a(h, H) :: (never <= a(l, l)) par (null <- 1 > 2).
a(l, L) :: never => a(h, h) <- fail or null.`
	start := time.Now()
	outs, _ := runModel(t, src, "h=h l=l", nil)
	wantStatus(t, outs, "h", Failed)
	if time.Since(start) > 5*time.Second {
		t.Errorf("the waiting branch was not cancelled: %v", time.Since(start))
	}
}

func TestRoleChangePassesValuesInAndOut(t *testing.T) {
	src := `r(p, initial)
a(p, P) :: a(double(21, R), P) then null <- R == 42 then a(twice([a, b], L), P) then null <- L == [a, b, a, b].
a(double(X, Y), P) :: null <- Y is X * 2.
a(twice(L, LL), P) :: null <- append(L, L, LL).`
	outs, rec := runModel(t, src, "p=p", nil)
	wantStatus(t, outs, "p", Closed)
	if !rec.has(TraceRole, "double(21, ") {
		t.Errorf("role change not traced: %v", rec.lines(TraceRole))
	}
}

func TestBuiltins(t *testing.T) {
	cases := []struct {
		cond string
		ok   bool
	}{
		{"member(b, [a, b])", true},
		{"member(c, [a, b])", false},
		{"member(X, [1, 2, 3]) and X > 2", true}, // backtracks into member
		{"length([a, b], N) and N == 2", true},
		{"length(L, 2) and L = [x, y]", true},
		{"append([a], [b], L) and L == [a, b]", true},
		{"append(X, [c], [a, b, c]) and X == [a, b]", true},
		{"append(X, Y, [a]) and X == [a] and Y == []", true}, // backtracks over splits
		{"nth(2, [a, b, c], X) and X == b", true},
		{"nth(I, [a, b, c], c) and I == 3", true},
		{"nth(4, [a], X)", false},
		{"sum([1, 2, 3.5], S) and S == 6.5", true},
		{"sum([1, 2], S) and S == 3", true},
		{"X is 7 / 2 and X == 3.5", true},
		{"X is 8 / 2 and X == 4", true},
		{"X is min(3, 2.5) + max(1, 2) + abs(-1) and X == 5.5", true},
		{"X is -(3) * 2 and X == -6", true},
		{"1 < 2 and 2 =< 2 and 3 > 2 and 2 >= 2 and 1.5 < 2", true},
		{"2 < 1", false},
		{"a \\= b and not(a \\= a)", true},
		{"f(X) = f(1) and X == 1", true},
		{"f(X) \\== f(Y)", true},
		{"X = Y and X == Y", true},
		{"not(member(z, [a, b]))", true},
		{"not(member(a, [a, b]))", false},
		{"(fail or X = 2) and X == 2", true},
		{"(X = 1 or X = 2) and X > 1", true}, // backtracks into the disjunction
		{"X = f(X)", false},                  // occurs check
		{"true", true},
	}
	for _, c := range cases {
		t.Run(c.cond, func(t *testing.T) {
			src := "r(p, initial)\na(p, P) :: null <- " + c.cond + "."
			outs, _ := runModel(t, src, "p=p", nil)
			want := Failed
			if c.ok {
				want = Closed
			}
			wantStatus(t, outs, "p", want)
		})
	}
}

func TestArithmeticErrorsFailWithReason(t *testing.T) {
	for cond, reason := range map[string]string{
		"X is 1 / 0":      "division by zero",
		"X is Y + 1":      "unbound variable Y",
		"X is foo + 1":    "foo is not a number",
		"1 < a":           "a is not a number",
		"sum([a], S)":     "sum/2",
		"append(X, Y, Z)": "proper list",
	} {
		src := "r(p, initial)\na(p, P) :: null <- " + cond + "."
		outs, _ := runModel(t, src, "p=p", nil)
		wantStatus(t, outs, "p", Failed)
		if !strings.Contains(outs["p"].Reason, reason) {
			t.Errorf("%s: reason %q lacks %q", cond, outs["p"].Reason, reason)
		}
	}
}

func TestFactsThenKnowledge(t *testing.T) {
	src := `r(p, initial)
colour(red).
a(p, P) :: null <- colour(red) and colour(blue) and not(colour(green)).`
	outs, _ := runModel(t, src, "p=p", nil, "p: colour(blue).")
	wantStatus(t, outs, "p", Closed)
}

func TestGoConstraints(t *testing.T) {
	var calls atomic.Int64
	reg := NewRegistry()
	reg.MustRegister("load", 1, "binds the load", func(ctx context.Context, g *Goal) (bool, error) {
		calls.Add(1)
		return g.Unify(0, F(0.9)), nil
	})
	reg.MustRegister("deny", 0, "always fails", func(ctx context.Context, g *Goal) (bool, error) { return false, nil })
	reg.MustRegister("broken", 0, "always errors", func(ctx context.Context, g *Goal) (bool, error) {
		return false, errors.New("vcenter unreachable")
	})
	reg.MustRegister("slow", 0, "waits for cancellation", func(ctx context.Context, g *Goal) (bool, error) {
		<-ctx.Done()
		return false, ctx.Err()
	})
	if err := reg.Register("member", 2, "", nil); err == nil {
		t.Error("registering over a builtin succeeded")
	}
	if err := reg.Register("load", 1, "", nil); err == nil {
		t.Error("registering twice succeeded")
	}

	outs, rec := runModel(t, "r(p, initial)\na(p, P) :: null <- load(L) and L > 0.5.", "p=p", reg)
	wantStatus(t, outs, "p", Closed)
	if !rec.has(TraceConstraint, "load(0.9)") {
		t.Errorf("binding not traced: %v", rec.lines(TraceConstraint))
	}
	outs, _ = runModel(t, "r(p, initial)\na(p, P) :: null <- deny or null <- load(L).", "p=p", reg)
	wantStatus(t, outs, "p", Closed)
	outs, _ = runModel(t, "r(p, initial)\na(p, P) :: null <- broken or null.", "p=p", reg)
	wantStatus(t, outs, "p", Failed)
	if !strings.Contains(outs["p"].Reason, "vcenter unreachable") {
		t.Errorf("reason %q lacks the Go error", outs["p"].Reason)
	}

	// cancellation: a slow constraint ends when the interaction times out
	prog := mustProgram(t, "slow", "r(p, initial)\na(p, P) :: null <- slow.", reg.Known())
	start := time.Now()
	res, err := RunLocal(context.Background(), LocalConfig{Program: prog, Agents: []AgentSpec{{Role: A("p"), ID: "p"}}, Registry: reg, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Status != TimedOut {
		t.Errorf("slow constraint: %s (%s), want timed out", res[0].Status, res[0].Reason)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("cancellation took %v", time.Since(start))
	}
}

func TestUnreachablePeer(t *testing.T) {
	src := "r(p, initial)\nr(q, necessary)\na(p, P) :: m => a(q, ghost).\na(q, Q) :: m <= a(p, P)."
	outs, _ := runModel(t, src, "p=p", nil)
	wantStatus(t, outs, "p", Failed)
	if !strings.Contains(outs["p"].Reason, "unreachable") {
		t.Errorf("reason %q", outs["p"].Reason)
	}

	// with UnreachableIsSilence the send counts as lost
	prog := mustProgram(t, "m", src, nil)
	tr := NewMemTransport()
	n := NewNode(NodeConfig{ID: "p", Transport: tr, UnreachableIsSilence: true})
	defer n.Close()
	h, err := n.Start(context.Background(), prog, "i", A("p"))
	if err != nil {
		t.Fatal(err)
	}
	if o := h.Wait(); o.Status != Closed {
		t.Errorf("silenced unreachable peer: %s %s", o.Status, o.Reason)
	}
}

// TestResponderPinnedToMessageVersion: a message naming version 1 starts a
// responder on version 1 even when the node was given version 2, and a
// message naming another version than its interaction is refused.
func TestResponderPinnedToMessageVersion(t *testing.T) {
	v1src := "r(p, initial)\nr(q, necessary)\na(p, P) :: m => a(q, q) then r(X) <= a(q, q) then null <- X == 1.\na(q, Q) :: m <= a(p, P) then r(1) => a(p, P)."
	v2src := strings.Replace(v1src, "r(1) => a(p, P)", "r(2) => a(p, P)", 1)
	v1 := mustProgram(t, "pol", v1src, nil)
	v1.Ref.Version = 1
	v2 := mustProgram(t, "pol", v2src, nil)
	v2.Ref.Version = 2
	var resolved atomic.Int64
	tr := NewMemTransport()
	p := NewNode(NodeConfig{ID: "p", Transport: tr})
	q := NewNode(NodeConfig{ID: "q", Transport: tr, Resolve: func(_ context.Context, ref PolicyRef) (*Program, error) {
		resolved.Add(1)
		for _, prog := range []*Program{v1, v2} {
			if prog.Ref == ref {
				return prog, nil
			}
		}
		return nil, fmt.Errorf("no version %d", ref.Version)
	}})
	q.AddProgram(v2) // "active" locally
	tr.Add(p)
	tr.Add(q)
	defer p.Close()
	defer q.Close()
	h, err := p.Start(context.Background(), v1, "i1", A("p"))
	if err != nil {
		t.Fatal(err)
	}
	if o := h.Wait(); o.Status != Closed {
		t.Fatalf("initiator on v1: %s %s", o.Status, o.Reason)
	}
	if resolved.Load() != 1 {
		t.Errorf("resolved %d times, want 1", resolved.Load())
	}
	// Interaction i2 starts on q with v2 (its first message names v2); its
	// responder waits for m, since x is not what it expects. A message for
	// i2 that names v1 is then refused.
	err = q.Deliver(context.Background(), Message{Interaction: "i2", Policy: v2.Ref, FromID: "p", FromRole: A("p"), ToID: "q", ToRole: A("q"), Body: A("x")})
	if err != nil {
		t.Fatalf("first message of i2 on v2: %v", err)
	}
	err = q.Deliver(context.Background(), Message{Interaction: "i2", Policy: v1.Ref, FromID: "p", FromRole: A("p"), ToID: "q", ToRole: A("q"), Body: A("m")})
	if !errors.Is(err, ErrPolicyMismatch) {
		t.Errorf("mismatched version: err = %v, want ErrPolicyMismatch", err)
	}
	// an unknown version is refused
	err = q.Deliver(context.Background(), Message{Interaction: "i3", Policy: PolicyRef{Name: "pol", Version: 9, Hash: "x"}, ToID: "q", ToRole: A("q"), Body: A("m")})
	if err == nil {
		t.Error("unknown version accepted")
	}
}

func TestLateMessageDropped(t *testing.T) {
	src := "r(p, initial)\nr(q, necessary)\na(p, P) :: m => a(q, q).\na(q, Q) :: m <= a(p, P)."
	prog := mustProgram(t, "m", src, nil)
	tr := NewMemTransport()
	rec := &recorder{}
	var outcomes atomic.Int64
	q := NewNode(NodeConfig{ID: "q", Transport: tr, Tracer: rec, OnOutcome: func(Outcome) { outcomes.Add(1) }})
	q.AddProgram(prog)
	defer q.Close()
	msg := Message{Interaction: "i", Policy: prog.Ref, FromID: "p", FromRole: A("p"), ToID: "q", ToRole: A("q"), Body: A("m")}
	if err := q.Deliver(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for outcomes.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if err := q.Deliver(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if outcomes.Load() != 1 || q.Active() != 0 {
		t.Errorf("late message started a responder: outcomes %d, active %d", outcomes.Load(), q.Active())
	}
	if !rec.has(TraceDrop, "m") {
		t.Error("drop not traced")
	}
}

// TestManyInteractionsNoGoroutineLeak runs 300 auctions at once on the same
// nodes and checks that every goroutine they started has ended.
func TestManyInteractionsNoGoroutineLeak(t *testing.T) {
	src := readFile(t, "testdata/auction_counted.lcc")
	host := &auctionHost{refuse: map[string]bool{"p2": true}, scores: map[string]float64{"p1": 0.5, "p3": 0.7}, peers: []string{"p1", "p2", "p3"}}
	reg := host.registry()
	prog := mustProgram(t, "auction", src, reg.Known())
	before := runtime.NumGoroutine()
	c := newCluster(t, []string{"o", "p1", "p2", "p3"}, reg, prog, nil)
	const n = 300
	handles := make([]*Handle, n)
	for i := range handles {
		h, err := c.nodes["o"].Start(context.Background(), prog, fmt.Sprintf("i%d", i), A("overloaded"))
		if err != nil {
			t.Fatal(err)
		}
		handles[i] = h
	}
	for i, h := range handles {
		if o := h.Wait(); o.Status != Closed {
			t.Fatalf("interaction %d: %s %s", i, o.Status, o.Reason)
		}
	}
	c.waitOutcomes(t, 4*n, 20*time.Second)
	if got := host.migrated.Load(); got != n {
		t.Errorf("migrations %d, want %d", got, n)
	}
	for _, node := range c.nodes {
		if node.Active() != 0 {
			t.Errorf("node %s still has %d instances", node.ID(), node.Active())
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before+2 {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after:\n%s", before, g, buf[:runtime.Stack(buf, true)])
	}
}

// TestLoopsRunInConstantMemory runs a long loop in every tail shape and
// samples the live heap and the goroutine stacks after a warm-up and then
// every tenth of the run: the growth from the first sample to the largest
// later one must stay small. A trail entry, an environment or a stack frame
// kept per step would hold far more (hundreds of bytes a step).
func TestLoopsRunInConstantMemory(t *testing.T) {
	if testing.Short() {
		t.Skip("long")
	}
	const steps = 300000
	const every = steps / 10
	for _, c := range []struct{ name, loop string }{
		{"or, then a role in tail of the second alternative (conformance case 11)",
			"null <- N >= K or ( null <- sample(N) and N1 is N + 1 then a(loop(N1, K), L) )"},
		{"a role change as the last alternative",
			"null <- N >= K or a(loop(N1, K), L) <- sample(N) and N1 is N + 1"},
		{"a role change after an or",
			"null <- N >= K or ( ( null <- sample(N) or null <- fail ) then null <- N1 is N + 1 then a(loop(N1, K), L) )"},
		{"a role change in tail of a receive alternative",
			"( tick(N) <= a(loop(_, _), L) within ms(0) then null ) or ( null <- N >= K ) or ( null <- sample(N) and N1 is N + 1 then a(loop(N1, K), L) )"},
		{"accumulating a list",
			"null <- N >= K or ( null <- sample(N) and N1 is N + 1 and Acc = [N] then a(loop(N1, K), L) )"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var first, peak uint64
			samples := 0
			reg := NewRegistry()
			reg.MustRegister("sample", 1, "samples live heap and stacks every tenth of the run", func(_ context.Context, g *Goal) (bool, error) {
				n, _ := g.Number(0)
				if int64(n) > 0 && int64(n)%every == 0 {
					runtime.GC()
					var ms runtime.MemStats
					runtime.ReadMemStats(&ms)
					live := ms.HeapAlloc + ms.StackInuse
					if samples == 0 {
						first = live
					}
					peak = max(peak, live)
					samples++
				}
				return true, nil
			})
			src := "r(looper, initial)\na(looper, L) :: a(loop(0, " + strconv.Itoa(steps) + "), L).\na(loop(N, K), L) ::\n    " + c.loop + ".\n"
			prog := mustProgram(t, "loop", src, reg.Known())
			outs, err := RunLocal(context.Background(), LocalConfig{Program: prog, Agents: []AgentSpec{{Role: A("looper"), ID: "l"}}, Registry: reg, Timeout: 5 * time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			if outs[0].Status != Closed {
				t.Fatalf("%s: %s", outs[0].Status, outs[0].Reason)
			}
			if samples < 5 {
				t.Fatalf("only %d samples", samples)
			}
			const bound = 16 << 20
			if peak > first+bound {
				t.Fatalf("live heap and stacks grew from %d to %d bytes over %d steps (bound %d)", first, peak, steps, bound)
			}
			t.Logf("live heap and stacks: first sample %d, largest %d bytes", first, peak)
		})
	}
}

// TestDeepNonTailRecursionFailsTheAgent: a recursion that is not in tail
// position nests; past the nesting limit it fails the agent with a reason,
// and never the process.
func TestDeepNonTailRecursionFailsTheAgent(t *testing.T) {
	src := `r(deep, initial)
a(deep, D) :: a(down(0), D).
a(down(N), D) ::
    null <- N >= 10000000
    or ( null <- N1 is N + 1 then a(down(N1), D) then null ).`
	outs, _ := runModel(t, src, "deep=d", nil)
	o := outs["d"]
	if o.Status != Failed || !strings.Contains(o.Reason, "nested deeper than") {
		t.Fatalf("deep recursion: %s %q", o.Status, o.Reason)
	}
}

func TestDeclinedOutcome(t *testing.T) {
	// failing the opening condition: declined; failing later: not
	outs, _ := runModel(t, "r(p, initial)\na(p, P) :: null <- fail.", "p=p", nil)
	if o := outs["p"]; o.Status != Failed || !o.Declined {
		t.Errorf("opening failure: %+v, want failed and declined", o)
	}
	outs, _ = runModel(t, "r(p, initial)\na(p, P) :: null <- true then null <- fail.", "p=p", nil)
	if o := outs["p"]; o.Status != Failed || o.Declined {
		t.Errorf("later failure: %+v, want failed, not declined", o)
	}
}
