package redis

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/dcrgate/dcrgate/dcr"
)

// A history is a list, oldest first, under the registry's hash tag. Each entry is the event's
// time (Unix ns, 20 digits, so entries compare by time as strings), "|" and the event's JSON.

func (s *Store) historyKey(kind dcr.HistoryKind, id string) string {
	return "{" + s.Prefix + "}:hist:" + string(kind) + ":" + hashID(id)
}

const historyTimeWidth = 20

func historyStamp(t time.Time) string {
	return fmt.Sprintf("%0*d", historyTimeWidth, max(t.UnixNano(), 0))
}

// appendHistoryScript: KEYS history; ARGV entry, max events, cutoff stamp, max age (ms).
// It appends, keeps the newest max events, drops entries older than the cutoff and lets the
// whole list expire max age after its last event.
var appendHistoryScript = goredis.NewScript(`
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
while true do
  local head = redis.call('LINDEX', KEYS[1], 0)
  if not head or string.sub(head, 1, 20) >= ARGV[3] then break end
  redis.call('LPOP', KEYS[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
`)

// AppendHistory adds ev to the history and trims it, atomically.
func (s *Store) AppendHistory(ctx context.Context, kind dcr.HistoryKind, id string, ev dcr.HistoryEvent, keep dcr.HistoryRetention) error {
	keep = keep.WithDefaults()
	data, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("redis store: encoding a history event: %w", err)
	}
	entry := historyStamp(ev.Time) + "|" + string(data)
	err = appendHistoryScript.Run(ctx, s.client, []string{s.historyKey(kind, id)}, entry, keep.MaxEvents,
		historyStamp(ev.Time.Add(-keep.MaxAge)), strconv.FormatInt(keep.MaxAge.Milliseconds(), 10)).Err()
	if err != nil {
		return storeErr("append history", err)
	}
	return nil
}

// History returns the events at or after since, oldest first.
func (s *Store) History(ctx context.Context, kind dcr.HistoryKind, id string, since time.Time) ([]dcr.HistoryEvent, error) {
	entries, err := s.client.LRange(ctx, s.historyKey(kind, id), 0, -1).Result()
	if err != nil {
		return nil, storeErr("history", err)
	}
	events := make([]dcr.HistoryEvent, 0, len(entries))
	for _, e := range entries {
		_, data, ok := strings.Cut(e, "|")
		var ev dcr.HistoryEvent
		if !ok || json.Unmarshal([]byte(data), &ev) != nil {
			return nil, fmt.Errorf("redis store: a history entry is not an event")
		}
		events = append(events, ev)
	}
	return dcr.Since(events, since), nil
}
