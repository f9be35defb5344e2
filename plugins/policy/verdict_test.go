package policy

import (
	"context"
	"errors"
	"net/http"
	"reflect"
	"testing"

	"github.com/dcrgate/dcrgate/dcr"
)

func TestJudge(t *testing.T) {
	md := map[string]any{"scope": "accounts openid payments"}
	allow := &Decision{Allow: true}
	narrow := &Decision{Allow: true, Metadata: map[string]any{"scope": "openid accounts"}}
	widen := &Decision{Allow: true, Metadata: map[string]any{"scope": "fundsconfirmations"}}
	deny, _ := ParseDecision(map[string]any{"allow": false, "error": "unapproved_software_statement", "error_description": "no"})
	evalErr := errors.New("rego: eval_conflict_error")
	tests := []struct {
		name        string
		op          dcr.Operation
		d           *Decision
		err         error
		timedOut    bool
		wantOutcome string
		wantStatus  int // 0: allowed
		wantMD      map[string]any
	}{
		{"allowed register registers the metadata", dcr.OpRegister, allow, nil, false, outcomeAllow, 0, md},
		{"allowed update with overrides", dcr.OpUpdate, narrow, nil, false, outcomeAllow, 0, map[string]any{"scope": "openid accounts"}},
		{"allowed read registers nothing", dcr.OpRead, narrow, nil, false, outcomeAllow, 0, nil},
		{"allowed delete registers nothing", dcr.OpDelete, allow, nil, false, outcomeAllow, 0, nil},
		{"an override that widens fails closed", dcr.OpRegister, widen, nil, false, outcomeError, http.StatusServiceUnavailable, nil},
		{"denied register is 400", dcr.OpRegister, deny, nil, false, outcomeDeny, http.StatusBadRequest, nil},
		{"denied update is 400", dcr.OpUpdate, deny, nil, false, outcomeDeny, http.StatusBadRequest, nil},
		{"denied read is 403", dcr.OpRead, deny, nil, false, outcomeDeny, http.StatusForbidden, nil},
		{"denied delete is 403", dcr.OpDelete, deny, nil, false, outcomeDeny, http.StatusForbidden, nil},
		{"undefined fails closed", dcr.OpRegister, nil, ErrUndefined, false, outcomeUndefined, http.StatusServiceUnavailable, nil},
		{"out of time fails closed", dcr.OpRegister, nil, context.DeadlineExceeded, true, outcomeTimeout, http.StatusServiceUnavailable, nil},
		{"an evaluation error fails closed", dcr.OpRegister, nil, evalErr, false, outcomeError, http.StatusServiceUnavailable, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := Judge(tc.op, md, tc.d, tc.err, tc.timedOut)
			if v.Outcome != tc.wantOutcome {
				t.Errorf("outcome %q, want %q", v.Outcome, tc.wantOutcome)
			}
			switch {
			case tc.wantStatus == 0 && v.Err != nil:
				t.Fatalf("refused: %v", v.Err)
			case tc.wantStatus != 0 && (v.Err == nil || v.Err.Status != tc.wantStatus):
				t.Fatalf("want a %d refusal, got %+v", tc.wantStatus, v.Err)
			}
			if !reflect.DeepEqual(v.Metadata, tc.wantMD) {
				t.Errorf("metadata %v, want %v", v.Metadata, tc.wantMD)
			}
			if wantOverrides := tc.wantMD != nil && tc.d == narrow; wantOverrides != (v.Overrides != nil) ||
				wantOverrides && !reflect.DeepEqual(v.Overrides, map[string]any{"scope": "openid accounts"}) {
				t.Errorf("overrides %v", v.Overrides)
			}
			if tc.err != nil && (v.Decision != nil || !errors.Is(v.Err.Cause, tc.err) || v.Err.Code != dcr.CodeTemporarilyUnavailable) {
				t.Errorf("a failed evaluation: decision %v, error %+v", v.Decision, v.Err)
			}
			if tc.d == deny && (v.Err.Code != "unapproved_software_statement" || v.Err.Description != "no") {
				t.Errorf("the denial's own error: %+v", v.Err)
			}
		})
	}
	if md["scope"] != "accounts openid payments" {
		t.Fatal("Judge modified the metadata passed in")
	}
}
