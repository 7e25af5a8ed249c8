// Package lcc implements the dialect of the Lightweight Coordination Calculus
// that parley runs (see ../shared/LCC.md): a scanner and parser with error
// recovery, a canonical printer, a static checker and an interpreter.
//
// The package knows nothing of vSphere, Raft or HTTP. Constraints come in
// through a Registry of Go functions, and messages travel through a
// Transport.
//
// # Stages
//
// Parse turns source into a *Model (AST with byte-offset positions). Check
// runs named stages over a Model and adds to one ErrorList. Compile checks
// a Model and turns it into a *Program; a Node runs agents of Programs,
// starting interactions (Node.Start) and answering the messages that its
// Transport delivers, with constraints from its Registry.
//
// # Choices where LCC.md is silent
//
//   - A condition may stand on either side of an event. Both sides are
//     merged into one conjunction. For a send, a null event and a role change
//     the condition is solved before the event; for a receive it is solved
//     after the message is taken. The printer writes the canonical side:
//     "M => A <- C", "C <- M <= A", "null <- C", "a(R, I) <- C".
//   - Arithmetic operators may appear in any term position (m(X + 1)); they
//     build compound terms '+'(X, 1), and "is" and the comparisons evaluate
//     them. Integer arithmetic stays integral; "/" on integers gives an
//     integer when exact and a decimal otherwise.
//   - A conjunction is solved left to right with backtracking (member/2 and
//     facts may yield several answers); the first complete answer commits.
//     Go constraints are deterministic: one answer or none.
//   - An "or" alternative fails without committing when its opening
//     condition fails (or a role it opens with fails its head unification or
//     its own opening condition). Once a message has been sent or received,
//     or an opening condition has held, the alternative is committed.
//   - A "par" always commits: both branches start together, interleaved on
//     one lock per agent that is released only while a branch waits.
//   - A role has one clause; a second clause for the same role/arity is an
//     error.
//   - A message carries the sender's entry role whole, and its current role
//     by name and arity only (its arguments are sent as anonymous
//     variables). A receive a(R, I) matches either; a pattern on the
//     current role's arguments binds nothing.
//   - Outcomes: an agent whose failure was caused by a within deadline or
//     by its overall timeout ends TimedOut; other failures end Failed.
package lcc
