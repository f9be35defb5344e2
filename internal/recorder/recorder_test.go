package recorder

import (
	"errors"
	"net/http"
	"testing"
)

func TestRecorder(t *testing.T) {
	tests := []struct {
		name         string
		write        func(w http.ResponseWriter)
		wantStatus   int
		wantBody     string
		wantOverflow bool
	}{
		{"nothing written is a 200", func(http.ResponseWriter) {}, http.StatusOK, "", false},
		{"a body without a status is a 200", func(w http.ResponseWriter) { _, _ = w.Write([]byte("ab")) }, http.StatusOK, "ab", false},
		{"the first final status counts", func(w http.ResponseWriter) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusCreated)
			w.WriteHeader(http.StatusTeapot)
		}, http.StatusCreated, "", false},
		{"up to the limit is kept", func(w http.ResponseWriter) {
			_, _ = w.Write([]byte("12345"))
			_, _ = w.Write([]byte("678"))
		}, http.StatusOK, "12345678", false},
		{"past the limit is refused and marked", func(w http.ResponseWriter) {
			_, _ = w.Write([]byte("12345"))
			_, _ = w.Write([]byte("6789"))
		}, http.StatusOK, "12345", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := New(8)
			tc.write(r)
			if r.Status() != tc.wantStatus || string(r.Body()) != tc.wantBody || r.Overflowed() != tc.wantOverflow {
				t.Fatalf("status %d body %q overflow %v; want %d %q %v", r.Status(), r.Body(), r.Overflowed(),
					tc.wantStatus, tc.wantBody, tc.wantOverflow)
			}
		})
	}
}

func TestRecorderWriteErrorAndHeader(t *testing.T) {
	r := New(1)
	r.Header().Set("Content-Type", "application/json")
	if n, err := r.Write([]byte("ab")); n != 0 || !errors.Is(err, ErrTooLarge) {
		t.Fatalf("write past the limit: %d %v", n, err)
	}
	if r.Header().Get("Content-Type") != "application/json" {
		t.Fatal("headers not kept")
	}
}
