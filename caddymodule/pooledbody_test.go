package caddymodule

import (
	"bytes"
	"strings"
	"testing"
)

// TestPooledBodyDetach: a body that passed the screen is the caller's own copy: reading the
// next bodies into the pooled buffers it came from does not change it.
func TestPooledBodyDetach(t *testing.T) {
	first := strings.Repeat("a", 5000)
	var raw pooledBody
	got, err := raw.readAll(strings.NewReader(first), int64(len(first)), DefaultMaxBodySize)
	if err != nil || string(got) != first {
		t.Fatalf("read %d bytes, %v", len(got), err)
	}
	kept := raw.detach(got)
	if raw.buf != nil {
		t.Fatal("the pooled buffer was not given back")
	}
	for range 10 {
		var next pooledBody
		b, err := next.readAll(strings.NewReader(strings.Repeat("b", 5000)), 5000, DefaultMaxBodySize)
		if err != nil || len(b) != 5000 {
			t.Fatalf("read %d bytes, %v", len(b), err)
		}
		next.release()
	}
	if string(kept) != first {
		t.Fatal("the detached body changed when its pooled buffer was reused")
	}
	// Without a Content-Length, and longer than the limit's pool bound, it reads the same.
	long := bytes.Repeat([]byte("c"), maxPooledBody+10)
	var big pooledBody
	if b, err := big.readAll(bytes.NewReader(long), -1, int64(len(long))+1); err != nil || !bytes.Equal(b, long) {
		t.Fatalf("read %d bytes, %v", len(b), err)
	}
	big.release()
}
