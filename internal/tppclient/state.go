package tppclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// State is what a TPP keeps after registering: enough to manage the client later. It holds
// the registration access token (and client secret, if any), so it is written 0600.
type State struct {
	ClientID                string `json:"client_id"`
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri,omitempty"`
	ClientSecret            string `json:"client_secret,omitempty"`
	Endpoint                string `json:"endpoint,omitempty"`
	SoftwareID              string `json:"software_id,omitempty"`
}

// StateFromResponse takes the client credentials out of a registration (or update) response.
func StateFromResponse(r *Response) (State, error) {
	str := func(k string) string { s, _ := r.JSON[k].(string); return s }
	s := State{
		ClientID:                str("client_id"),
		RegistrationAccessToken: str("registration_access_token"),
		RegistrationClientURI:   str("registration_client_uri"),
		ClientSecret:            str("client_secret"),
		SoftwareID:              str("software_id"),
	}
	if s.ClientID == "" {
		return s, errors.New("tppclient: response has no client_id")
	}
	return s, nil
}

// SaveState writes s as JSON with mode 0600, replacing path atomically.
func SaveState(path string, s State) error {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".registration-*.json")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// LoadState reads a state file written by SaveState.
func LoadState(path string) (State, error) {
	var s State
	b, err := os.ReadFile(path)
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}
