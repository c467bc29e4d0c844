package notify

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

// AnnotationsPath is where Grafana's HTTP API takes new annotations,
// below a grafana sink's base URL.
const AnnotationsPath = "/api/annotations"

// Annotation is the JSON a grafana sink posts: an organisation-wide
// annotation at Time (Unix milliseconds: when the event was queued, not
// when it was delivered, so a retried delivery marks the right moment),
// tagged so dashboards can select airlock's markers by application,
// environment and version.
type Annotation struct {
	Time int64    `json:"time"`
	Tags []string `json:"tags"`
	Text string   `json:"text"`
}

// annotationFor builds the annotation for notification n queued at at.
// Its tags are airlock, the event type, and the app, environment and
// version of the event's data when it names them.
func annotationFor(n NotificationSpec, at time.Time) Annotation {
	tags := []string{"airlock", n.Event}
	for _, k := range []string{"app", "environment", "version"} {
		if v := n.Data[k]; v != "" {
			tags = append(tags, v)
		}
	}
	text := n.Subject
	if n.Message != "" {
		text += "\n" + n.Message
	}
	return Annotation{Time: at.UnixMilli(), Tags: tags, Text: text}
}

// annotationsURL is the annotation endpoint below a Grafana base URL
// (which may carry a sub-path, e.g. https://example.com/grafana).
func annotationsURL(base string) string {
	return strings.TrimRight(base, "/") + AnnotationsPath
}

// grafanaRequest authenticates a request to a grafana sink with the
// service-account token in the server's environment variable TokenEnv.
// A sink naming a variable that is not set fails the attempt (it is
// retried) rather than posting without the token.
func (d *Deliverer) grafanaRequest(req *http.Request, name string, sink *SinkSpec) error {
	if sink.TokenEnv == "" {
		return nil
	}
	var token string
	if d.Getenv != nil {
		token = d.Getenv(sink.TokenEnv)
	}
	if token == "" {
		return fmt.Errorf("sink %q authenticates with the Grafana token in $%s, which is not set on the server", name, sink.TokenEnv)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return nil
}
