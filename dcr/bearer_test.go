package dcr

import (
	"net/http"
	"testing"
)

func TestBearerToken(t *testing.T) {
	cases := []struct {
		headers []string
		token   string
		bad     bool
	}{
		{nil, "", false},
		{[]string{"Bearer abc"}, "abc", false},
		{[]string{"bearer abc"}, "abc", false},
		{[]string{"BEARER abc.def-ghi"}, "abc.def-ghi", false},
		{[]string{"Bearer"}, "", true},
		{[]string{"Bearer "}, "", true},
		{[]string{"Bearer a b"}, "", true},
		{[]string{"Basic YWxhZGRpbjpvcGVuc2VzYW1l"}, "", true},
		{[]string{"Bearer a", "Bearer b"}, "", true},
	}
	for _, c := range cases {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		for _, h := range c.headers {
			r.Header.Add("Authorization", h)
		}
		tok, err := BearerToken(r)
		if (err != nil) != c.bad || tok != c.token {
			t.Errorf("%q: got %q, %v", c.headers, tok, err)
		}
		if err != nil && (err.Status != 401 || err.Header.Get("WWW-Authenticate") == "") {
			t.Errorf("%q: want a 401 with a challenge, got %+v", c.headers, err)
		}
	}
}
