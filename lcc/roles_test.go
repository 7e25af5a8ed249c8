package lcc

import "testing"

// TestRoleRouting: a receive matches a sender by its entry role or by the
// role it plays when it sends, with that role's arguments as they are at
// the send; a message reaches a receive only when the role it is addressed
// to unifies with the receiver's entry role or the role it plays now; and
// each par branch sends from its own role.
func TestRoleRouting(t *testing.T) {
	for _, c := range []struct {
		name, src, agents string
		want              map[string]Status
	}{
		{"the sender's sub-role arguments bind", `r(boss, initial)
r(worker, necessary)
a(boss, B) :: go => a(worker, w) then m(X) <= a(worker(N, K), W) then null <- N == 7 and K == k and X == 1 and W == w.
a(worker, W) :: go <= a(boss, B) then a(worker(7, k), W).
a(worker(N, K), W) :: m(1) => a(boss, b).`, "boss=b worker=w", map[string]Status{"b": Closed, "w": Closed}},

		{"a sender in another sub-role does not match", `r(boss, initial)
r(worker, necessary)
a(boss, B) :: go => a(worker, w) then m(X) <= a(worker(8, _), W) within ms(300).
a(worker, W) :: go <= a(boss, B) then a(worker(7, k), W).
a(worker(N, K), W) :: m(1) => a(boss, b).`, "boss=b worker=w", map[string]Status{"b": TimedOut, "w": Closed}},

		{"the sender's entry role still matches", `r(boss, initial)
r(worker, necessary)
a(boss, B) :: go => a(worker, w) then m(X) <= a(worker, W).
a(worker, W) :: go <= a(boss, B) then a(worker(7, k), W).
a(worker(N, K), W) :: m(1) => a(boss, b).`, "boss=b worker=w", map[string]Status{"b": Closed, "w": Closed}},

		{"a message for another role is not taken", `r(boss, initial)
r(worker, necessary)
r(other, optional)
a(boss, B) :: m(1) => a(other, w) then ( nope <= a(worker, W) or ( got <= a(worker, W) then null <- fail ) ).
a(worker, W) :: ( m(X) <= a(boss, B) within ms(300) then got => a(boss, b) ) or nope => a(boss, b).
a(other, O) :: m(X) <= a(boss, B).`, "boss=b worker=w", map[string]Status{"b": Closed, "w": Closed}},

		{"a message for the receiver's current sub-role is taken, its arguments unify", `r(boss, initial)
r(worker, necessary)
a(boss, B) :: go => a(worker, w) then ready <= a(worker(1), W) then m(1) => a(worker(Any), w) then ok <= a(worker, W).
a(worker, W) :: go <= a(boss, B) then a(worker(1), W).
a(worker(N), W) :: ready => a(boss, b) then m(X) <= a(boss, B) within 2 then ok => a(boss, b).`, "boss=b worker=w", map[string]Status{"b": Closed, "w": Closed}},

		{"a message for a sub-role with other arguments is not taken", `r(boss, initial)
r(worker, necessary)
a(boss, B) :: go => a(worker, w) then ready <= a(worker(1), W) then m(1) => a(worker(2), w) then late <= a(worker, W).
a(worker, W) :: go <= a(boss, B) then a(worker(1), W).
a(worker(N), W) :: ready => a(boss, b) then ( ( m(X) <= a(boss, B) within ms(300) then null <- fail ) or late => a(boss, b) ).`, "boss=b worker=w", map[string]Status{"b": Closed, "w": Closed}},

		{"each par branch sends from its own role", `r(hub, initial)
r(left, necessary)
r(right, necessary)
a(hub, H) :: a(left_side, H) par a(right_side, H).
a(left_side, H) :: ( never <= a(left, l) within ms(200) or null ) then ping => a(left, l).
a(right_side, H) :: ( never <= a(right, r) within ms(100) or null ) then ping => a(right, r) then ( never <= a(right, r) within ms(400) or null ).
a(left, L) :: ping <= a(left_side, H) within 2.
a(right, R) :: ping <= a(right_side, H) within 2.`, "left=l right=r hub=h", map[string]Status{"h": Closed, "l": Closed, "r": Closed}},
	} {
		t.Run(c.name, func(t *testing.T) {
			outs, _ := runModel(t, c.src, c.agents, nil)
			for id, want := range c.want {
				if o := outs[id]; o.Status != want {
					t.Errorf("%s: %s (%s), want %s", id, o.Status, o.Reason, want)
				}
			}
		})
	}
}
