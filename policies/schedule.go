package policies

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/parleyhq/parley/lcc"
)

// A policy may be active only in time windows, stated as facts:
// active_between("22:00", "06:00"). Times are "HH:MM" on the worker's
// local clock; a window whose end is before its start wraps midnight; the
// start is inside the window and the end is not. A policy with no such
// fact is always active; with several, it is active in any of them.

// ActiveAt reports whether a policy is active at t.
func ActiveAt(m *lcc.Model, t time.Time) bool {
	if m == nil {
		return true
	}
	windows := 0
	minute := t.Hour()*60 + t.Minute()
	for _, f := range m.Facts {
		from, to, ok, err := window(f.Term)
		if !ok || err != nil {
			continue
		}
		windows++
		switch {
		case from == to:
			return true // a whole day
		case from < to && minute >= from && minute < to:
			return true
		case from > to && (minute >= from || minute < to):
			return true
		}
	}
	return windows == 0
}

// window reads active_between(From, To) as minutes of the day; ok is false
// for any other fact.
func window(t lcc.Term) (from, to int, ok bool, err error) {
	c, isC := lcc.Deref(t).(*lcc.Compound)
	if !isC || c.Functor != "active_between" || len(c.Args) != 2 {
		return 0, 0, false, nil
	}
	from, err = clock(c.Args[0])
	if err == nil {
		to, err = clock(c.Args[1])
	}
	return from, to, true, err
}

func clock(t lcc.Term) (int, error) {
	s, ok := lcc.Deref(t).(*lcc.Str)
	if !ok {
		return 0, fmt.Errorf("%s is not a time: write it as a string, \"HH:MM\"", lcc.FormatTerm(t))
	}
	h, m, found := strings.Cut(s.V, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !found || err1 != nil || err2 != nil || len(h) != 2 || len(m) != 2 || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("%q is not a time of day: write \"HH:MM\", 00:00 to 23:59", s.V)
	}
	return hh*60 + mm, nil
}

// checkSchedule reports active_between facts that do not say a window.
func checkSchedule(m *lcc.Model) lcc.ErrorList {
	var errs lcc.ErrorList
	for _, f := range m.Facts {
		if c, ok := lcc.Deref(f.Term).(*lcc.Compound); ok && c.Functor == "active_between" && len(c.Args) != 2 {
			errs.Add(m.File.Position(f.Pos), lcc.SevError, "active_between takes two times: active_between(\"22:00\", \"06:00\")")
			continue
		}
		if _, _, ok, err := window(f.Term); ok && err != nil {
			errs.Add(m.File.Position(f.Pos), lcc.SevError, "active_between: "+err.Error())
		}
	}
	return errs
}
