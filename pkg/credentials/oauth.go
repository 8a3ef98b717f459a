package credentials

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// tokenResponse is an OAuth token endpoint's answer, success or error.
type tokenResponse struct {
	AccessToken      string          `json:"access_token"`
	ExpiresIn        json.Number     `json:"expires_in"`
	Error            json.RawMessage `json:"error"`
	ErrorDescription string          `json:"error_description"`
}

// formRequest is a form-encoded POST to an OAuth token endpoint; label
// names the token in errors.
func formRequest(ctx context.Context, tokenURL, label string, form url.Values) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, tokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", label, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return req, nil
}

// postToken sends req to an OAuth token endpoint and reads the token and
// its lifetime; label names the token in errors.
func postToken(client *http.Client, req *http.Request, label string) (string, time.Duration, error) {
	resp, err := client.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("%s: %w", label, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", 0, fmt.Errorf("%s: read response: %w", label, err)
	}
	var tr tokenResponse
	jsonErr := json.Unmarshal(body, &tr)
	if resp.StatusCode/100 != 2 {
		// Only the OAuth error fields are reported: the body of a
		// failed token call can echo request details.
		detail := ""
		if jsonErr == nil {
			detail = strings.TrimSpace(strings.Trim(string(tr.Error), `"`) + " " + tr.ErrorDescription)
		}
		return "", 0, fmt.Errorf("%s: endpoint returned status %d %s", label, resp.StatusCode, detail)
	}
	if jsonErr != nil || tr.AccessToken == "" {
		return "", 0, fmt.Errorf("%s: endpoint returned no access_token", label)
	}
	// Google and Entra ID v2.0 send expires_in as a number, Entra ID v1
	// as a string; json.Number takes both.
	secs, err := strconv.ParseInt(string(tr.ExpiresIn), 10, 64)
	if err != nil || secs <= 0 {
		return "", 0, fmt.Errorf("%s: bad expires_in %q", label, tr.ExpiresIn)
	}
	return tr.AccessToken, time.Duration(secs) * time.Second, nil
}
