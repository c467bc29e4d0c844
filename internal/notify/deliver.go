package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/airlock-dev/airlock/internal/resource"
	"github.com/airlock-dev/airlock/internal/store"
)

// Delivery limits.
const (
	MaxAttempts = 10
	BaseBackoff = 10 * time.Second
	MaxBackoff  = time.Hour
)

// Headers of a signed webhook.
const (
	TimestampHeader = "X-Airlock-Timestamp"
	SignatureHeader = "X-Airlock-Signature"
)

// ActorName is who records delivery outcomes in the audit log.
const ActorName = "system:notify"

// Backoff is the wait after the n-th failed attempt (n from 1):
// 10s·2^(n-1), at most an hour.
func Backoff(n int) time.Duration {
	if n < 1 {
		n = 1
	}
	if n > 12 {
		return MaxBackoff
	}
	return min(BaseBackoff<<(n-1), MaxBackoff)
}

// Sign returns the X-Airlock-Signature value for a body sent at ts:
// "sha256=" and the hex HMAC-SHA256, keyed with key, of "<ts>.<body>".
func Sign(key []byte, ts int64, body []byte) string {
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%d.", ts)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify is what a receiver does with a signed webhook: it rejects a
// timestamp more than maxAge away from now (a replay), then compares the
// signature in constant time. It returns nil when the request is genuine.
func Verify(key []byte, timestamp, signature string, body []byte, now time.Time, maxAge time.Duration) error {
	ts, err := strconv.ParseInt(timestamp, 10, 64)
	if err != nil {
		return fmt.Errorf("timestamp %q is not unix seconds", timestamp)
	}
	if d := now.Sub(time.Unix(ts, 0)); d > maxAge || d < -maxAge {
		return fmt.Errorf("timestamp %s is %s away from now; more than %s is refused as a replay", timestamp, d.Round(time.Second), maxAge)
	}
	if !hmac.Equal([]byte(signature), []byte(Sign(key, ts, body))) {
		return errors.New("signature does not match the body")
	}
	return nil
}

// WebhookBody is the JSON a generic webhook sink receives.
type WebhookBody struct {
	ID      string            `json:"id"`
	Event   string            `json:"event"`
	Subject string            `json:"subject"`
	Message string            `json:"message,omitempty"`
	Data    map[string]string `json:"data,omitempty"`
	Time    time.Time         `json:"time"`
}

// Deliverer sends pending notifications. Store is required. A nil Client
// is one with a 10 s timeout, a nil Now is time.Now, and a nil Getenv finds
// no signing keys (signed sinks then fail). Delivery is at least once: a
// crash between a send and its record sends it again on restart. Run one
// Deliverer per store; two would send each message twice.
type Deliverer struct {
	Store  store.Store
	Client *http.Client
	Now    func() time.Time
	Getenv func(string) string
}

type job struct {
	name string
	spec NotificationSpec
}

// RunOnce sends every pending notification that is due, one POST each and
// outside any transaction, then records each outcome in its own write as
// ActorName. A 2xx answer delivers; anything else schedules a retry after
// Backoff, and the MaxAttempts-th failure is final. err is a store error
// only: failed sends are counted in failed and logged in the notification.
func (d *Deliverer) RunOnce(ctx context.Context) (delivered, failed int, err error) {
	now := d.now()
	objs, err := d.Store.List(ctx, NotificationKind, resource.Selector{{Key: "state", Op: resource.Equals, Values: []string{string(StatePending)}}})
	if err != nil {
		return 0, 0, fmt.Errorf("list pending notifications: %w", err)
	}
	sinks := map[string]*SinkSpec{}
	for _, o := range objs {
		var spec NotificationSpec
		var st NotificationStatus
		if err := o.DecodeSpec(&spec); err != nil {
			return delivered, failed, err
		}
		if err := o.DecodeStatus(&st); err != nil {
			return delivered, failed, err
		}
		if st.State != StatePending || st.NextAttemptAt.After(now) {
			continue
		}
		sink, ok := sinks[spec.Sink]
		if !ok {
			sink = d.sink(ctx, spec.Sink)
			sinks[spec.Sink] = sink
		}
		status, sendErr := d.send(ctx, o.Metadata.Name, o.Metadata.CreatedAt, spec, sink)
		if ctx.Err() != nil {
			return delivered, failed, ctx.Err() // shutting down: try again next start
		}
		ok, err := d.record(ctx, o.Metadata.Name, status, sendErr)
		if err != nil {
			return delivered, failed, err
		}
		if ok {
			delivered++
		} else {
			failed++
		}
	}
	return delivered, failed, nil
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

// sink loads a sink, or nil when it is gone or unreadable.
func (d *Deliverer) sink(ctx context.Context, name string) *SinkSpec {
	o, err := d.Store.Get(ctx, SinkKind, name)
	if err != nil {
		return nil
	}
	var s SinkSpec
	if o.DecodeSpec(&s) != nil {
		return nil
	}
	return &s
}

// send posts one notification, queued at queued, and returns the HTTP
// status.
func (d *Deliverer) send(ctx context.Context, id string, queued time.Time, n NotificationSpec, sink *SinkSpec) (int, error) {
	if sink == nil {
		return 0, fmt.Errorf("sink %q does not exist", n.Sink)
	}
	var body []byte
	var err error
	now := d.now()
	switch sink.Type {
	case Slack:
		text := "*" + n.Subject + "*"
		if n.Message != "" {
			text += "\n" + n.Message
		}
		body, err = json.Marshal(map[string]string{"text": text})
	case Grafana:
		body, err = json.Marshal(annotationFor(n, queued))
	default:
		body, err = json.Marshal(WebhookBody{ID: id, Event: n.Event, Subject: n.Subject, Message: n.Message, Data: n.Data, Time: now.UTC()})
	}
	if err != nil {
		return 0, err
	}
	target := sink.URL
	if sink.URLEnv != "" {
		if d.Getenv != nil {
			target = d.Getenv(sink.URLEnv)
		} else {
			target = ""
		}
		if err := checkURL(target); err != nil {
			return 0, fmt.Errorf("sink %s: the environment variable %s does not hold a usable URL: %v", n.Sink, sink.URLEnv, err)
		}
	}
	if sink.Type == Grafana {
		target = annotationsURL(target)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if sink.Type == Grafana {
		if err := d.grafanaRequest(req, n.Sink, sink); err != nil {
			return 0, err
		}
	}
	if sink.SecretEnv != "" {
		var key string
		if d.Getenv != nil {
			key = d.Getenv(sink.SecretEnv)
		}
		if key == "" {
			return 0, fmt.Errorf("sink %q signs with the key in $%s, which is not set on the server", n.Sink, sink.SecretEnv)
		}
		ts := now.Unix()
		req.Header.Set(TimestampHeader, strconv.FormatInt(ts, 10))
		req.Header.Set(SignatureHeader, Sign([]byte(key), ts, body))
	}
	client := d.Client
	if client == nil {
		// A redirect is not followed: it would turn the POST into a GET
		// and could send a signed body somewhere the sink did not name.
		client = &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, fmt.Errorf("sink %q answered %s", n.Sink, resp.Status)
	}
	return resp.StatusCode, nil
}

// record stores one attempt's outcome and reports whether it delivered.
func (d *Deliverer) record(ctx context.Context, name string, status int, sendErr error) (bool, error) {
	delivered := false
	err := d.Store.Write(ctx, store.Actor{Name: ActorName, Reason: "notification delivery attempt"}, func(tx store.Tx) error {
		o, err := tx.Get(ctx, NotificationKind, name)
		if err != nil {
			return err
		}
		var st NotificationStatus
		if err := o.DecodeStatus(&st); err != nil {
			return err
		}
		if st.State != StatePending {
			return nil // recorded by someone else meanwhile
		}
		at := d.now()
		a := Attempt{At: at, Status: status}
		st.Attempts++
		if sendErr == nil {
			st.State, st.LastError = StateDelivered, ""
			delivered = true
		} else {
			a.Error = sendErr.Error()
			st.LastError = a.Error
			if st.Attempts >= MaxAttempts {
				st.State = StateFailed
			} else {
				st.NextAttemptAt = at.Add(Backoff(st.Attempts))
			}
		}
		st.Log = append(st.Log, a)
		if len(st.Log) > MaxLog {
			st.Log = st.Log[len(st.Log)-MaxLog:]
		}
		if err := o.SetStatus(st); err != nil {
			return err
		}
		if o.Metadata.Labels == nil {
			o.Metadata.Labels = map[string]string{}
		}
		o.Metadata.Labels["state"] = string(st.State)
		o.Metadata.Revision = 0
		_, err = tx.Update(ctx, o)
		return err
	})
	if err != nil {
		return false, fmt.Errorf("record delivery of %s: %w", name, err)
	}
	return delivered, nil
}
