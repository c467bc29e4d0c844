package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
)

// FlagEvaluation is an OFREP evaluation answer.
type FlagEvaluation struct {
	Key          string         `json:"key"`
	Reason       string         `json:"reason,omitempty"`
	Variant      string         `json:"variant,omitempty"`
	Value        any            `json:"value,omitempty"`
	Metadata     map[string]any `json:"metadata,omitempty"`
	ErrorCode    string         `json:"errorCode,omitempty"`
	ErrorDetails string         `json:"errorDetails,omitempty"`
}

// EvaluateFlag evaluates one flag over OFREP. With an admin token, env
// names the environment; an evaluation key brings its own. An OFREP error
// (flag not found, a missing targeting key) is an answer, not an error.
func (c *Client) EvaluateFlag(ctx context.Context, env, key string, evalCtx map[string]any) (*FlagEvaluation, error) {
	body, err := json.Marshal(map[string]any{"context": evalCtx})
	if err != nil {
		return nil, err
	}
	target := c.base.String() + "/ofrep/v1/evaluate/flags/" + seg(key)
	if env != "" {
		target += "?" + url.Values{"environment": {env}}.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the airlock server at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	if err != nil {
		return nil, err
	}
	var out FlagEvaluation
	if resp.StatusCode == http.StatusOK || ((resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusBadRequest) && json.Unmarshal(raw, &out) == nil && out.ErrorCode != "") {
		if resp.StatusCode == http.StatusOK {
			if err := json.Unmarshal(raw, &out); err != nil {
				return nil, err
			}
		}
		return &out, nil
	}
	return nil, decodeProblem(&http.Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: io.NopCloser(bytes.NewReader(raw))})
}
