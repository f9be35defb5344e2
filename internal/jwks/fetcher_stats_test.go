package jwks

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStatsCount(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	pool := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs
	f := NewFetcher(FetcherConfig{RootCAs: pool})
	before := Stats()
	if _, err := f.Key(context.Background(), srv.URL+"/jwks", "k1"); err == nil {
		t.Fatal("a failing origin must fail the lookup")
	}
	after := Stats()
	if after.Fetches != before.Fetches+1 || after.Failures != before.Failures+1 {
		t.Fatalf("stats %+v → %+v", before, after)
	}
}
