package raftstore

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRouteWithoutARuleFailsClosed: a handler put on the mux without a
// rule (what the router's handle makes impossible) is refused to an
// operator; a path no route matches still needs a token, then answers
// 404; a registered route follows its rule.
func TestRouteWithoutARuleFailsClosed(t *testing.T) {
	c := startCluster(t, 1)
	ctx := ctxT(t)
	op := NewToken()
	if _, err := c.client.CreateToken(ctx, "op", RoleOperator, op); err != nil {
		t.Fatal(err)
	}
	h := &server{s: c.members[0].Store}
	rt := newRouter()
	ok := func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }
	rt.mux.HandleFunc("GET /v1/forgotten", ok) // no rule
	rt.handleFunc("GET /v1/ruled", readers, ok)
	rt.handleFunc("GET /v1/admin-only", admins, ok)
	srv := h.authorize(rt)
	for _, tc := range []struct {
		path, token string
		want        int
	}{
		{"/v1/forgotten", op, http.StatusForbidden},
		{"/v1/forgotten", testAdminToken, http.StatusOK},
		{"/v1/ruled", op, http.StatusOK},
		{"/v1/ruled", "", http.StatusUnauthorized},
		{"/v1/admin-only", op, http.StatusForbidden},
		{"/v1/nowhere", "", http.StatusUnauthorized},
		{"/v1/nowhere", op, http.StatusNotFound},
	} {
		req := httptest.NewRequest("GET", tc.path, nil)
		if tc.token != "" {
			req.Header.Set("Authorization", "Bearer "+tc.token)
		}
		rec := httptest.NewRecorder()
		srv.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("GET %s (token %v): %d %s, want %d", tc.path, tc.token != "", rec.Code, rec.Body, tc.want)
		}
	}
}

// TestRouterRefusesARouteTwice: two rules for one pattern would leave one
// of them unenforced.
func TestRouterRefusesARouteTwice(t *testing.T) {
	rt := newRouter()
	rt.handleFunc("GET /x", readers, func(http.ResponseWriter, *http.Request) {})
	defer func() {
		if recover() == nil {
			t.Error("a second rule for GET /x was accepted")
		}
	}()
	rt.handleFunc("GET /x", admins, func(http.ResponseWriter, *http.Request) {})
}
