package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/sluicegw/sluice/pkg/validation"
)

// APIError is an error answered by the admin or analytics API.
type APIError struct {
	Status  int
	Code    string
	Message string
	Details validation.Errors
}

func (e *APIError) Error() string {
	return fmt.Sprintf("%s (HTTP %d): %s", e.Code, e.Status, e.Message)
}

// client talks JSON to one HTTP API.
type client struct {
	base  string
	token string
	hc    *http.Client
	// identify makes the first request check GET /v1/version first.
	identify, identified bool
	// server is what /v1/version answered.
	server *serverIdentity
}

func newClient(base, token string, hc *http.Client) (*client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageErrorf("address %q must be an http:// or https:// URL", base)
	}
	return &client{base: strings.TrimSuffix(base, "/"), token: token, hc: hc}, nil
}

// response is a decoded answer: its body and headers.
type response struct {
	Body   []byte
	Header http.Header
}

// do sends a request with an optional JSON body (any value, or []byte sent
// as is) and returns the response, or an *APIError for any status >= 400.
func (c *client) do(ctx context.Context, method, path string, hdr map[string]string, in any) (*response, error) {
	if c.identify && !c.identified {
		c.identified = true
		if _, err := c.identity(ctx); err != nil {
			return nil, err
		}
	}
	var body io.Reader
	if in != nil {
		b, ok := in.([]byte)
		if !ok {
			var err error
			if b, err = json.Marshal(in); err != nil {
				return nil, fmt.Errorf("encode request: %w", err)
			}
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return nil, fmt.Errorf("build request: %w", err)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range hdr {
		if v != "" {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, fmt.Errorf("%s %s%s: %w", method, c.base, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		return nil, decodeError(resp.StatusCode, data)
	}
	return &response{Body: data, Header: resp.Header}, nil
}

// decodeError reads the {"error": {...}} body of a failed request; a body
// in another shape is reported as it is.
func decodeError(status int, data []byte) *APIError {
	var eb struct {
		Error struct {
			Code    string            `json:"code"`
			Message string            `json:"message"`
			Details validation.Errors `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(data, &eb) == nil && eb.Error.Code != "" {
		return &APIError{Status: status, Code: eb.Error.Code, Message: eb.Error.Message, Details: eb.Error.Details}
	}
	msg := strings.TrimSpace(string(data))
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	if msg == "" {
		msg = http.StatusText(status)
	}
	return &APIError{Status: status, Code: "http_" + fmt.Sprint(status), Message: msg}
}

// getJSON decodes the answer of a GET into out and returns its headers.
func (c *client) getJSON(ctx context.Context, path string, out any) (http.Header, error) {
	resp, err := c.do(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(resp.Body, out); err != nil {
		return nil, fmt.Errorf("GET %s: decode response: %w", path, err)
	}
	return resp.Header, nil
}

// listAll walks every page of a list endpoint.
func (c *client) listAll(ctx context.Context, path string) ([]json.RawMessage, error) {
	var all []json.RawMessage
	cursor := ""
	for pages := 0; ; pages++ {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var page struct {
			Items      []json.RawMessage `json:"items"`
			NextCursor string            `json:"next_cursor"`
		}
		if _, err := c.getJSON(ctx, path+"?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		all = append(all, page.Items...)
		if page.NextCursor == "" || page.NextCursor == cursor {
			return all, nil
		}
		if pages > 100000 {
			return nil, fmt.Errorf("GET %s: more than %d pages", path, pages)
		}
		cursor = page.NextCursor
	}
}

func objectPath(collection, id string) string {
	return collection + "/" + url.PathEscape(id)
}
