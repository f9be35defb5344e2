package bolt

import (
	"strconv"

	"github.com/dcrgate/dcrgate/dcr"
	"github.com/dcrgate/dcrgate/internal/jsonenc"
)

// The stored forms of a record and of a history event are json.Marshal's bytes (older
// versions and decodeRecord read them), written by hand: encoding/json's reflection over the
// record's three maps of interfaces was most of a Create's CPU outside bbolt. The members are
// those of the types' json tags, in field order, with omitempty where the tag has it;
// TestRecordFieldsAreEncoded fails when a field is added to either type, and the equality
// tests compare the bytes with json.Marshal's.

// appendRecord appends json.Marshal(rec).
func appendRecord(b []byte, rec *dcr.Registration) ([]byte, error) {
	var err error
	b = append(b, `{"client_id":`...)
	b = jsonenc.AppendString(b, rec.ClientID)
	b = append(b, `,"version":`...)
	b = strconv.AppendInt(b, rec.Version, 10)
	b = append(b, `,"software_id":`...)
	b = jsonenc.AppendString(b, rec.SoftwareID)
	b = append(b, `,"org_id":`...)
	b = jsonenc.AppendString(b, rec.OrgID)
	b = append(b, `,"metadata":`...)
	if b, err = jsonenc.Append(b, rec.Metadata); err != nil {
		return nil, err
	}
	if len(rec.MetadataNames) > 0 {
		b = append(b, `,"metadata_names":`...)
		if b, err = jsonenc.Append(b, rec.MetadataNames); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"software_statement":`...)
	b = jsonenc.AppendString(b, rec.SoftwareStatement)
	b = append(b, `,"ssa_claims":`...)
	if b, err = jsonenc.Append(b, rec.SSAClaims); err != nil {
		return nil, err
	}
	b = appendOptional(b, `,"directory":`, rec.Directory)
	b = append(b, `,"registration_token_hash":`...)
	b = jsonenc.AppendString(b, rec.RegistrationTokenHash)
	b = appendOptional(b, `,"client_secret_hash":`, rec.ClientSecretHash)
	b = appendOptional(b, `,"cert_subject":`, rec.CertSubject)
	b = appendOptional(b, `,"cert_thumbprint":`, rec.CertThumbprint)
	if k := rec.SigningKey; k != nil {
		b = append(b, `,"signing_key":{"kid":`...)
		b = jsonenc.AppendString(b, k.KeyID)
		b = appendOptional(b, `,"thumbprint":`, k.Thumbprint)
		if len(k.RevokedKeySets) > 0 {
			b = append(b, `,"revoked_key_sets":[`...)
			for i, s := range k.RevokedKeySets {
				if i > 0 {
					b = append(b, ',')
				}
				b = append(b, `{"claim":`...)
				b = jsonenc.AppendString(b, s.Claim)
				b = append(b, `,"url":`...)
				b = jsonenc.AppendString(b, s.URL)
				b = append(b, '}')
			}
			b = append(b, ']')
		}
		b = append(b, '}')
	}
	if len(rec.Backend) > 0 {
		b = append(b, `,"backend":`...)
		if b, err = jsonenc.Append(b, rec.Backend); err != nil {
			return nil, err
		}
	}
	b = append(b, `,"issued_at":`...)
	if b, err = jsonenc.AppendTime(b, rec.IssuedAt); err != nil {
		return nil, err
	}
	b = append(b, `,"updated_at":`...)
	if b, err = jsonenc.AppendTime(b, rec.UpdatedAt); err != nil {
		return nil, err
	}
	if rec.DeletedAt != nil {
		b = append(b, `,"deleted_at":`...)
		if b, err = jsonenc.AppendTime(b, *rec.DeletedAt); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// appendOptional appends member and s unless s is empty (an omitempty string field).
func appendOptional(b []byte, member, s string) []byte {
	if s == "" {
		return b
	}
	return jsonenc.AppendString(append(b, member...), s)
}

// appendEvent appends json.Marshal(ev).
func appendEvent(b []byte, ev *dcr.HistoryEvent) ([]byte, error) {
	b = append(b, `{"time":`...)
	b, err := jsonenc.AppendTime(b, ev.Time)
	if err != nil {
		return nil, err
	}
	b = append(b, `,"event":`...)
	b = jsonenc.AppendString(b, ev.Event)
	b = appendOptional(b, `,"operation":`, ev.Operation)
	b = appendOptional(b, `,"client_id":`, ev.ClientID)
	b = appendOptional(b, `,"software_id":`, ev.SoftwareID)
	b = appendOptional(b, `,"org_id":`, ev.OrgID)
	if ev.Status != 0 {
		b = append(b, `,"status":`...)
		b = strconv.AppendInt(b, int64(ev.Status), 10)
	}
	b = appendOptional(b, `,"error":`, ev.Error)
	b = appendOptional(b, `,"reason":`, ev.Reason)
	b = appendOptional(b, `,"actor":`, ev.Actor)
	return append(b, '}'), nil
}
