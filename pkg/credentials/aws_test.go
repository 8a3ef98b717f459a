package credentials_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime"
	"github.com/aws/aws-sdk-go-v2/service/bedrockruntime/types"

	"github.com/tollgate-gw/tollgate/pkg/credentials"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// The keys of AWS's published SigV4 examples.
const (
	exampleKeyID  = "AKIDEXAMPLE"
	exampleSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

var signingTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

// specSignature computes a SigV4 signature from the specification's steps,
// independently of the SDK: canonical request, string to sign, derived key.
// Path is the escaped request path; non-S3 services escape it once more.
func specSignature(secret, region, service, method, path, query string, headers map[string]string, payloadHash string, at time.Time) (signature, signedHeaders string) {
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, strings.ToLower(k))
	}
	sort.Strings(names)
	lower := map[string]string{}
	for k, v := range headers {
		lower[strings.ToLower(k)] = strings.Join(strings.Fields(v), " ")
	}
	var canonicalHeaders strings.Builder
	for _, n := range names {
		canonicalHeaders.WriteString(n + ":" + lower[n] + "\n")
	}
	signedHeaders = strings.Join(names, ";")
	var uri strings.Builder
	for i := 0; i < len(path); i++ {
		c := path[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.~/", c) >= 0 {
			uri.WriteByte(c)
		} else {
			uri.WriteString("%" + strings.ToUpper(hex.EncodeToString([]byte{c})))
		}
	}
	canonical := strings.Join([]string{method, uri.String(), query, canonicalHeaders.String(), signedHeaders, payloadHash}, "\n")
	sum := sha256.Sum256([]byte(canonical))
	date := at.Format("20060102")
	scope := date + "/" + region + "/" + service + "/aws4_request"
	toSign := "AWS4-HMAC-SHA256\n" + at.Format("20060102T150405Z") + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	mac := func(key []byte, data string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(data))
		return h.Sum(nil)
	}
	key := mac(mac(mac(mac([]byte("AWS4"+secret), date), region), service), "aws4_request")
	return hex.EncodeToString(mac(key, toSign)), signedHeaders
}

// TestSpecSignature_PublishedExample pins the test's own SigV4 code to the
// example in AWS's documentation, so it can judge the signer below.
func TestSpecSignature_PublishedExample(t *testing.T) {
	emptyHash := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	sig, signed := specSignature(exampleSecret, "us-east-1", "iam", "GET", "/", "Action=ListUsers&Version=2010-05-08",
		map[string]string{
			"Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
			"Host":         "iam.amazonaws.com",
			"X-Amz-Date":   "20150830T123600Z",
		}, emptyHash, signingTime)
	if sig != "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7" || signed != "content-type;host;x-amz-date" {
		t.Fatalf("signature %s over %s", sig, signed)
	}
}

func header(hs []transform.Header, key string) string {
	for _, h := range hs {
		if h.Key == key {
			return h.Value
		}
	}
	return ""
}

func TestAWS_Apply(t *testing.T) {
	body := []byte(`{"messages":[{"role":"user","content":[{"text":"hi"}]}]}`)
	req := &credentials.Request{
		Method: "POST",
		Host:   "bedrock-runtime.us-west-2.amazonaws.com",
		Path:   "/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse",
		Headers: []transform.Header{
			{Key: "content-type", Value: "application/json"},
		},
		Body: body,
	}
	tests := []struct {
		name      string
		opts      credentials.AWSOptions
		wantToken string
	}{
		{"permanent keys", credentials.AWSOptions{Region: "us-west-2", AccessKeyID: exampleKeyID, SecretAccessKey: exampleSecret}, ""},
		{"temporary keys", credentials.AWSOptions{Region: "us-west-2", AccessKeyID: "ASIAEXAMPLE", SecretAccessKey: exampleSecret, SessionToken: "FwoGZXIvYXdzEXAMPLE"}, "FwoGZXIvYXdzEXAMPLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Now = func() time.Time { return signingTime }
			src, err := credentials.NewAWS(t.Context(), tt.opts)
			if err != nil {
				t.Fatal(err)
			}
			hs, err := src.Apply(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(body)
			payloadHash := hex.EncodeToString(sum[:])
			if header(hs, "x-amz-date") != "20150830T123600Z" || header(hs, "x-amz-content-sha256") != payloadHash ||
				header(hs, "x-amz-security-token") != tt.wantToken {
				t.Errorf("headers = %+v", hs)
			}

			// Independent check: the specification's algorithm over the
			// headers the source says it signed.
			signedHeaders := map[string]string{
				"host":                 req.Host,
				"x-amz-date":           "20150830T123600Z",
				"x-amz-content-sha256": payloadHash,
			}
			if tt.wantToken != "" {
				signedHeaders["x-amz-security-token"] = tt.wantToken
			}
			sig, signed := specSignature(exampleSecret, "us-west-2", "bedrock", "POST", req.Path, "", signedHeaders, payloadHash, signingTime)
			want := "AWS4-HMAC-SHA256 Credential=" + tt.opts.AccessKeyID + "/20150830/us-west-2/bedrock/aws4_request, SignedHeaders=" + signed + ", Signature=" + sig
			if got := header(hs, "authorization"); got != want {
				t.Errorf("authorization:\n got %s\nwant %s", got, want)
			}

			// The SDK's signer over the same request agrees.
			hr, _ := http.NewRequest("POST", "https://"+req.Host+req.Path, nil)
			hr.Header.Set("X-Amz-Content-Sha256", payloadHash)
			creds := aws.Credentials{AccessKeyID: tt.opts.AccessKeyID, SecretAccessKey: exampleSecret, SessionToken: tt.wantToken}
			if err := v4.NewSigner().SignHTTP(t.Context(), creds, hr, payloadHash, "bedrock", "us-west-2", signingTime); err != nil {
				t.Fatal(err)
			}
			if hr.Header.Get("Authorization") != want {
				t.Errorf("SDK signs %s", hr.Header.Get("Authorization"))
			}
		})
	}
}

// TestAWS_MatchesBedrockClient signs what the official bedrockruntime
// client sends and checks our signature for it equals the client's, over
// the signed headers the client chose.
func TestAWS_MatchesBedrockClient(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(r.Context())
		body, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"output":{"message":{"role":"assistant","content":[{"text":"ok"}]}},"stopReason":"end_turn","usage":{"inputTokens":1,"outputTokens":1,"totalTokens":2},"metrics":{"latencyMs":1}}`)
	}))
	defer srv.Close()
	client := bedrockruntime.New(bedrockruntime.Options{
		Region:           "eu-central-1",
		BaseEndpoint:     aws.String(srv.URL),
		Credentials:      awscreds.NewStaticCredentialsProvider(exampleKeyID, exampleSecret, "tok"),
		RetryMaxAttempts: 1,
	})
	_, err := client.Converse(t.Context(), &bedrockruntime.ConverseInput{
		ModelId:  aws.String("eu.anthropic.claude-3-7-sonnet-20250219-v1:0"),
		Messages: []types.Message{{Role: types.ConversationRoleUser, Content: []types.ContentBlock{&types.ContentBlockMemberText{Value: "hi"}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	at, err := time.Parse("20060102T150405Z", got.Header.Get("X-Amz-Date"))
	if err != nil {
		t.Fatal(err)
	}
	auth := got.Header.Get("Authorization")
	_, signedList, _ := strings.Cut(auth, "SignedHeaders=")
	signedList, _, _ = strings.Cut(signedList, ",")
	headers := map[string]string{}
	for _, h := range strings.Split(signedList, ";") {
		switch h {
		case "host":
			headers[h] = got.Host
		case "content-length":
			headers[h] = got.Header.Get("Content-Length")
			if headers[h] == "" {
				headers[h] = "0"
			}
		default:
			headers[h] = got.Header.Get(h)
		}
	}
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	sig, _ := specSignature(exampleSecret, "eu-central-1", "bedrock", got.Method, got.URL.EscapedPath(), got.URL.RawQuery, headers, payloadHash, at)
	if !strings.HasSuffix(auth, "Signature="+sig) {
		t.Fatalf("the SDK client's signature differs from the specification's:\n%s\n%s", auth, sig)
	}

	// Our source, signing the same path and body at the same time, scopes
	// and hashes the request the way the client did.
	src, err := credentials.NewAWS(t.Context(), credentials.AWSOptions{Region: "eu-central-1", AccessKeyID: exampleKeyID, SecretAccessKey: exampleSecret, SessionToken: "tok", Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(srv.URL)
	hs, err := src.Apply(t.Context(), &credentials.Request{Method: "POST", Host: u.Host, Path: got.URL.EscapedPath(), Body: body})
	if err != nil {
		t.Fatal(err)
	}
	ours := header(hs, "authorization")
	scope := "Credential=" + exampleKeyID + "/" + at.Format("20060102") + "/eu-central-1/bedrock/aws4_request"
	if !strings.Contains(ours, scope) || !strings.Contains(auth, scope) || header(hs, "x-amz-security-token") != got.Header.Get("X-Amz-Security-Token") {
		t.Errorf("ours %s, client %s", ours, auth)
	}
	sig, signed := specSignature(exampleSecret, "eu-central-1", "bedrock", "POST", got.URL.EscapedPath(), "", map[string]string{
		"host": u.Host, "x-amz-date": got.Header.Get("X-Amz-Date"), "x-amz-content-sha256": payloadHash, "x-amz-security-token": "tok",
	}, payloadHash, at)
	if !strings.HasSuffix(ours, "SignedHeaders="+signed+", Signature="+sig) {
		t.Errorf("ours %s, want signature %s over %s", ours, sig, signed)
	}
}

func TestNewAWS(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", "ap-south-1")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	tests := []struct {
		name       string
		opts       credentials.AWSOptions
		wantRegion string
		wantKey    string
		wantErr    bool
	}{
		{"static keys win over the environment", credentials.AWSOptions{Region: "us-east-1", AccessKeyID: "AKIDSTATIC", SecretAccessKey: "s"}, "us-east-1", "AKIDSTATIC", false},
		{"default chain reads the environment", credentials.AWSOptions{}, "ap-south-1", "AKIDENV", false},
		{"region option beats AWS_REGION", credentials.AWSOptions{Region: "eu-west-3"}, "eu-west-3", "AKIDENV", false},
		{"half a key pair", credentials.AWSOptions{Region: "us-east-1", AccessKeyID: "AKID"}, "", "", true},
		{"static keys without a region", credentials.AWSOptions{AccessKeyID: "AKID", SecretAccessKey: "s"}, "", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.opts.Now = func() time.Time { return signingTime }
			src, err := credentials.NewAWS(t.Context(), tt.opts)
			if tt.wantErr {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			hs, err := src.Apply(t.Context(), &credentials.Request{Host: "h", Path: "/model/m/converse"})
			if err != nil {
				t.Fatal(err)
			}
			if src.Region() != tt.wantRegion || !strings.Contains(header(hs, "authorization"), "Credential="+tt.wantKey+"/20150830/"+tt.wantRegion+"/bedrock/") {
				t.Errorf("region %s, authorization %s", src.Region(), header(hs, "authorization"))
			}
		})
	}
}

func TestNewAWS_NoCredentials(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_CONFIG_FILE", "/nonexistent")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "")
	t.Setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", "")
	if _, err := credentials.NewAWS(t.Context(), credentials.AWSOptions{Region: "us-east-1", LoadTimeout: 2 * time.Second}); err == nil {
		t.Fatal("NewAWS succeeded without any credentials")
	}
}
