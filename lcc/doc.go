// Package lcc implements the dialect of the Lightweight Coordination Calculus
// that parley runs, described in REFERENCE.md beside this file (its
// examples are run by a test): a scanner and parser with error recovery, a
// canonical printer, a static checker and an interpreter.
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
// # Choices where the calculus is silent
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
//   - A message carries the sender's entry role and the role it played
//     when it sent, both with their arguments. A receive a(R, I) matches
//     either and binds R's variables; a message addressed to a(R, I) is
//     taken only while R unifies with the receiver's entry role or the role
//     its receiving thread plays (each par branch has its own).
//   - A step that opens an or-alternative commits it when it completes; the
//     last alternative of an or runs committed when nothing encloses it in
//     a try, so a role change there is a tail call. Tail calls loop in
//     constant memory; roles nested outside tail position fail the agent
//     past 10,000 levels.
//   - A constraint declared by another agent's knowledge (NodeConfig.Declared)
//     but unknown here fails; within saturates at the longest duration.
//   - Outcomes: an agent whose failure was caused by a within deadline or
//     by its overall timeout ends TimedOut; other failures end Failed.
package lcc
