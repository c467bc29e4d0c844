package notify

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Event is something that happened that people may want to hear about.
type Event struct {
	Type    string            // e.g. PromotionBlocked
	Subject string            // one line, e.g. the promotion's name
	Message string            // what happened and what to do about it
	Data    map[string]string // machine-readable details
}

// Enqueue queues one pending Notification for every Sink that wants the
// event, inside the caller's transaction: the message is stored (and
// audited) with the change that caused it, or not at all. Nothing is sent
// here; a Deliverer does that. It returns how many it queued.
func Enqueue(ctx context.Context, tx store.Tx, ev Event) (int, error) {
	sinks, err := tx.List(ctx, SinkKind, nil)
	if err != nil {
		return 0, fmt.Errorf("list sinks for %s: %w", ev.Type, err)
	}
	n := 0
	now := tx.Now()
	for _, s := range sinks {
		var spec SinkSpec
		if err := s.DecodeSpec(&spec); err != nil {
			return n, fmt.Errorf("sink %s: %w", s.Metadata.Name, err)
		}
		if !spec.Matches(ev.Type) {
			continue
		}
		obj := &resource.Object{APIVersion: resource.APIVersion, Kind: NotificationKind, Metadata: resource.Metadata{
			Name:   newName(now.UTC().Format("20060102t150405")),
			Labels: map[string]string{"sink": s.Metadata.Name, "event": ev.Type, "state": string(StatePending)},
		}}
		if err := obj.SetSpec(NotificationSpec{Event: ev.Type, Subject: ev.Subject, Message: ev.Message, Data: ev.Data, Sink: s.Metadata.Name}); err != nil {
			return n, err
		}
		if err := obj.SetStatus(NotificationStatus{State: StatePending, NextAttemptAt: now}); err != nil {
			return n, err
		}
		if _, err := tx.Create(ctx, obj); err != nil {
			return n, fmt.Errorf("queue %s for sink %s: %w", ev.Type, s.Metadata.Name, err)
		}
		n++
	}
	return n, nil
}

// newName is a unique notification name: ntf-<time>-<random>.
func newName(stamp string) string {
	var b [6]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "ntf-" + strings.ToLower(stamp) + "-" + hex.EncodeToString(b[:])
}
