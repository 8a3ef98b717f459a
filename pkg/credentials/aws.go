package credentials

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// AWSOptions configure an AWS Signature Version 4 source. Field names
// follow LiteLLM's deployment parameters.
type AWSOptions struct {
	// Region scopes the signature (aws_region_name). Empty takes the
	// default chain's region (AWS_REGION, the profile's region); NewAWS
	// fails when there is none.
	Region string
	// AccessKeyID and SecretAccessKey are static keys (aws_access_key_id,
	// aws_secret_access_key). Both empty means the default credential
	// chain: environment, shared config and credentials files (Profile),
	// web identity (EKS IRSA), ECS task role and EC2 instance role.
	AccessKeyID     string
	SecretAccessKey string
	// SessionToken accompanies temporary static keys (aws_session_token).
	SessionToken string
	// Profile selects a shared config profile for the default chain
	// (aws_profile_name). Empty means AWS_PROFILE or "default".
	Profile string
	// Service is the signing name. Empty means "bedrock", which Bedrock
	// Runtime uses.
	Service string
	// Now is the signing clock. Nil means time.Now.
	Now func() time.Time
	// LoadTimeout bounds loading the default chain and fetching the first
	// credentials, which may call STS or the instance metadata service.
	// Zero means 10 seconds.
	LoadTimeout time.Duration
}

// defaultAWSLoadTimeout bounds NewAWS when AWSOptions.LoadTimeout is zero.
const defaultAWSLoadTimeout = 10 * time.Second

// credentialsExpiryWindow refreshes temporary credentials this long before
// they expire, so a request signed just before expiry still arrives valid.
const credentialsExpiryWindow = 5 * time.Minute

// AWS signs requests with AWS Signature Version 4. It is safe for
// concurrent use.
type AWS struct {
	creds   aws.CredentialsProvider
	signer  *v4.Signer
	region  string
	service string
	now     func() time.Time
}

var _ Source = (*AWS)(nil)

// NewAWS builds a SigV4 source and fetches its first credentials, so that a
// deployment without usable credentials fails at config load rather than
// on its first request. Credentials are cached and refreshed before they
// expire; concurrent refreshes share one fetch.
func NewAWS(ctx context.Context, o AWSOptions) (*AWS, error) {
	if (o.AccessKeyID == "") != (o.SecretAccessKey == "") {
		return nil, errors.New("aws credentials: aws_access_key_id and aws_secret_access_key must be given together")
	}
	timeout := o.LoadTimeout
	if timeout <= 0 {
		timeout = defaultAWSLoadTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	a := &AWS{signer: v4.NewSigner(), region: o.Region, service: o.Service, now: o.Now}
	if a.service == "" {
		a.service = "bedrock"
	}
	if a.now == nil {
		a.now = time.Now
	}
	if o.AccessKeyID != "" {
		a.creds = aws.NewCredentialsCache(awscreds.NewStaticCredentialsProvider(o.AccessKeyID, o.SecretAccessKey, o.SessionToken))
	} else {
		opts := []func(*config.LoadOptions) error{
			config.WithCredentialsCacheOptions(func(c *aws.CredentialsCacheOptions) {
				c.ExpiryWindow = credentialsExpiryWindow
			}),
		}
		if o.Region != "" {
			opts = append(opts, config.WithRegion(o.Region))
		}
		if o.Profile != "" {
			opts = append(opts, config.WithSharedConfigProfile(o.Profile))
		}
		cfg, err := config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("aws credentials: load default config: %w", err)
		}
		if cfg.Credentials == nil {
			return nil, errors.New("aws credentials: the default chain found no credentials")
		}
		a.creds = cfg.Credentials
		if a.region == "" {
			a.region = cfg.Region
		}
	}
	if a.region == "" {
		return nil, errors.New("aws credentials: no region: set aws_region_name or AWS_REGION")
	}
	if _, err := a.creds.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("aws credentials: retrieve: %w", err)
	}
	return a, nil
}

// Region is the region signatures are scoped to, which is also the region
// of the Bedrock endpoint to call.
func (a *AWS) Region() string { return a.region }

// Apply implements Source. It signs the method, host, path and exact body
// and returns authorization, x-amz-date, x-amz-content-sha256 and, for
// temporary credentials, x-amz-security-token. No other header is signed:
// Envoy may add or rewrite headers (content-length among them) after the
// signature is made.
func (a *AWS) Apply(ctx context.Context, r *Request) ([]transform.Header, error) {
	creds, err := a.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("aws credentials: retrieve: %w", err)
	}
	method := r.Method
	if method == "" {
		method = http.MethodPost
	}
	// The request only carries what is signed; it is never sent. Parsing
	// keeps the escaped path (RawPath), which SigV4 signs.
	req, err := http.NewRequestWithContext(ctx, method, "https://"+r.Host+r.Path, nil)
	if err != nil {
		return nil, fmt.Errorf("aws credentials: sign %s: %w", r.Path, err)
	}
	sum := sha256.Sum256(r.Body)
	payloadHash := hex.EncodeToString(sum[:])
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	if err := a.signer.SignHTTP(ctx, creds, req, payloadHash, a.service, a.region, a.now()); err != nil {
		return nil, fmt.Errorf("aws credentials: sign: %w", err)
	}
	headers := []transform.Header{
		{Key: "authorization", Value: req.Header.Get("Authorization")},
		{Key: "x-amz-date", Value: req.Header.Get("X-Amz-Date")},
		{Key: "x-amz-content-sha256", Value: payloadHash},
	}
	if tok := req.Header.Get("X-Amz-Security-Token"); tok != "" {
		headers = append(headers, transform.Header{Key: "x-amz-security-token", Value: tok})
	}
	return headers, nil
}
