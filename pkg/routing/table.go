// Package routing holds the deployment pool model: which deployments serve
// which public model names, and which Envoy pool (cluster) a model group's
// requests go to.
//
// A Table is built once from config, off the request path, and is immutable
// afterwards: lookups take no locks and do no I/O, so many ext_proc streams
// share one Table through an atomic pointer.
package routing

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"strings"

	"github.com/tollgate-gw/tollgate/pkg/credentials"
	"github.com/tollgate-gw/tollgate/pkg/transform"
)

// ErrUnknownModel is returned by Resolve for a model name that no group,
// alias or deployment answers to.
var ErrUnknownModel = errors.New("unknown model")

// ErrUnknownDeployment is returned by Deployment for an id the table does not
// hold, which means Envoy and the gateway disagree about the pool.
var ErrUnknownDeployment = errors.New("unknown deployment")

// Deployment is one provider endpoint with its model and credentials
// (a LiteLLM model_list entry).
type Deployment struct {
	// ID is stable and unique; Envoy endpoints carry it as metadata
	// tollgate.deployment.
	ID string
	// ModelGroup is the public model name clients ask for.
	ModelGroup string
	// Provider is the wire format the deployment speaks.
	Provider transform.Provider
	// Model is the provider's model name.
	Model string
	// BaseURL is the deployment's api_base.
	BaseURL string
	// BasePath is the path part of BaseURL, without a trailing slash.
	BasePath string
	// Host is BaseURL's host name: what Envoy's auto_host_rewrite sends
	// (the endpoint hostname, which is also the TLS SNI, so never with a
	// port) and what request signatures cover.
	Host string
	// APIKey is the resolved credential; never logged.
	APIKey string
	// Credentials authorize requests when a static key is not enough
	// (SigV4, OAuth tokens); nil when APIKey suffices.
	Credentials credentials.Source
	// APIVersion, Region and Project are the provider routing facts some
	// paths name (Azure api-version; Bedrock region; Vertex project and
	// location).
	APIVersion, Region, Project string
	// DropParams drops parameters the provider cannot take instead of
	// refusing the request.
	DropParams bool
	// MaxTokens is the max_tokens sent when the client gives none and the
	// provider requires one. Zero means the translator's default.
	MaxTokens int64
	// Weight, RPM and TPM are LiteLLM's simple-shuffle inputs, from which
	// the pool's endpoint weights are derived; zero means unset.
	Weight   float64
	RPM, TPM int64
	// Order is LiteLLM's priority within the group (1 first); zero means
	// unset.
	Order int
	// HardRPM, HardTPM and MaxParallel are limits admission enforces on
	// this deployment; zero means none. LiteLLM's rpm and tpm are hard
	// only under enable_pre_call_checks or usage-based routing, and
	// weights only otherwise.
	HardRPM, HardTPM, MaxParallel int64
	// PinnedPool is the Envoy cluster that tries this deployment first,
	// then the rest of its group and the fallbacks. NewTable sets it for
	// every deployment of a group with a hard-limited deployment: admission
	// picks the deployment and routes there. "" otherwise.
	PinnedPool string
}

// HardLimited reports whether admission enforces a limit on d.
func (d *Deployment) HardLimited() bool { return d.HardRPM > 0 || d.HardTPM > 0 || d.MaxParallel > 0 }

// LogValue keeps the credential out of logs.
func (d *Deployment) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", d.ID),
		slog.String("model_group", d.ModelGroup),
		slog.String("provider", string(d.Provider)),
		slog.String("model", d.Model),
	)
}

// Target is what the request translator needs to reach this deployment.
func (d *Deployment) Target() transform.Target {
	return transform.Target{
		Model:            d.Model,
		BasePath:         d.BasePath,
		APIKey:           d.APIKey,
		APIVersion:       d.APIVersion,
		Region:           d.Region,
		Project:          d.Project,
		DropParams:       d.DropParams,
		DefaultMaxTokens: d.MaxTokens,
		ForceStreamUsage: true,
	}
}

// Group is a model group: the deployments sharing a public model name, and
// the Envoy pool its requests are routed to.
type Group struct {
	Name string
	// Pool is the Envoy cluster name of the group.
	Pool string
	// Deployments in config order.
	Deployments []*Deployment
	// Fallbacks are the groups tried, in order, when all of this group's
	// deployments fail; Envoy holds them at priorities 1.. of Pool.
	Fallbacks []string
	// Pinned reports whether the group has a hard-limited deployment, so
	// requests go to a deployment's PinnedPool instead of Pool.
	Pinned bool
}

// Table is an immutable view of the deployment pool.
type Table struct {
	groups      map[string]*Group
	aliases     map[string]string
	deployments map[string]*Deployment
	names       []string
}

// TableConfig is what a Table is built from.
type TableConfig struct {
	Deployments []*Deployment
	// Aliases map extra public names to model groups.
	Aliases map[string]string
	// Fallbacks map a model group to the groups tried after it.
	Fallbacks map[string][]string
}

// NewTable validates the config and builds a Table.
func NewTable(c TableConfig) (*Table, error) {
	t := &Table{
		groups:      make(map[string]*Group),
		aliases:     make(map[string]string, len(c.Aliases)),
		deployments: make(map[string]*Deployment, len(c.Deployments)),
	}
	var errs []error
	for _, d := range c.Deployments {
		if _, dup := t.deployments[d.ID]; dup {
			errs = append(errs, fmt.Errorf("deployment id %q is used twice", d.ID))
			continue
		}
		t.deployments[d.ID] = d
		g := t.groups[d.ModelGroup]
		if g == nil {
			g = &Group{Name: d.ModelGroup, Pool: PoolName(d.ModelGroup)}
			t.groups[d.ModelGroup] = g
			t.names = append(t.names, d.ModelGroup)
		}
		g.Deployments = append(g.Deployments, d)
	}
	for alias, group := range c.Aliases {
		if _, ok := t.groups[group]; !ok {
			errs = append(errs, fmt.Errorf("alias %q names unknown model group %q", alias, group))
			continue
		}
		if _, clash := t.groups[alias]; clash {
			errs = append(errs, fmt.Errorf("alias %q hides the model group of the same name", alias))
			continue
		}
		t.aliases[alias] = group
	}
	for group, fallbacks := range c.Fallbacks {
		g, ok := t.groups[group]
		if !ok {
			errs = append(errs, fmt.Errorf("fallbacks for unknown model group %q", group))
			continue
		}
		for _, f := range fallbacks {
			if _, ok := t.groups[f]; !ok || f == group {
				errs = append(errs, fmt.Errorf("fallback %q of model group %q is not another model group", f, group))
				continue
			}
			g.Fallbacks = append(g.Fallbacks, f)
		}
	}
	sort.Strings(t.names)
	// Two groups, or a group and a pinned pool, must not share an Envoy
	// cluster.
	pools := make(map[string]string, len(t.names))
	claim := func(pool, owner string) {
		if other, clash := pools[pool]; clash {
			errs = append(errs, fmt.Errorf("%s and %s both map to Envoy cluster %q; rename one", other, owner, pool))
			return
		}
		pools[pool] = owner
	}
	for _, name := range t.names {
		claim(t.groups[name].Pool, fmt.Sprintf("model group %q", name))
	}
	for _, name := range t.names {
		g := t.groups[name]
		for _, d := range g.Deployments {
			g.Pinned = g.Pinned || d.HardLimited()
		}
		if !g.Pinned {
			continue
		}
		for _, d := range g.Deployments {
			d.PinnedPool = PinnedPoolName(name, d.ID)
			claim(d.PinnedPool, fmt.Sprintf("the pinned pool of deployment %q", d.ID))
		}
	}
	return t, errors.Join(errs...)
}

// Resolve finds the model group for a model name a client sent: a group
// name, then an alias.
func (t *Table) Resolve(model string) (*Group, error) {
	if g, ok := t.groups[model]; ok {
		return g, nil
	}
	if name, ok := t.aliases[model]; ok {
		return t.groups[name], nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownModel, model)
}

// Deployment finds a deployment by id.
func (t *Table) Deployment(id string) (*Deployment, error) {
	if d, ok := t.deployments[id]; ok {
		return d, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownDeployment, id)
}

// AliasNames lists the aliases, sorted.
func (t *Table) AliasNames() []string {
	out := make([]string, 0, len(t.aliases))
	for a := range t.aliases {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

// GroupNames lists the model groups, sorted.
func (t *Table) GroupNames() []string { return t.names }

// Groups lists the model groups in name order.
func (t *Table) Groups() []*Group {
	out := make([]*Group, len(t.names))
	for i, n := range t.names {
		out[i] = t.groups[n]
	}
	return out
}

// PoolName is the Envoy cluster name of a model group's pool. Characters
// Envoy cluster names should not carry are replaced with '_'.
func PoolName(group string) string {
	var b strings.Builder
	b.Grow(len("tollgate_pool_") + len(group))
	b.WriteString("tollgate_pool_")
	writeClusterSafe(&b, group)
	return b.String()
}

// PinnedPoolName is the Envoy cluster name of a deployment's pinned pool:
// its group's pool name, "_pin_" and the deployment id, with the same
// replacements.
func PinnedPoolName(group, deployment string) string {
	var b strings.Builder
	b.WriteString(PoolName(group))
	b.WriteString("_pin_")
	writeClusterSafe(&b, deployment)
	return b.String()
}

func writeClusterSafe(b *strings.Builder, s string) {
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '_', r == '.', r == '-':
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
}

// maxEndpointWeight is the weight of a group's heaviest deployment; the
// others get their share of it. 1000 keeps three significant digits of a
// LiteLLM float weight while the sum of a priority stays far below Envoy's
// uint32 limit.
const maxEndpointWeight = 1000

// Weights turns LiteLLM's simple-shuffle inputs into Envoy endpoint
// weights for one group (one priority), which admission also uses to pick
// among hard-limited deployments: weight when any deployment of the group
// sets it, else rpm, else tpm, else none (zero weights, Envoy's equal
// share). LiteLLM decides by the first healthy deployment only; deciding
// by the whole group gives the same answer for any consistent config
// without depending on health. A deployment missing the chosen input gets
// weight 1, the smallest Envoy allows (LiteLLM would give it 0).
func Weights(ds []*Deployment) []uint32 {
	pick := []func(*Deployment) float64{
		func(d *Deployment) float64 { return d.Weight },
		func(d *Deployment) float64 { return float64(d.RPM) },
		func(d *Deployment) float64 { return float64(d.TPM) },
	}
	for _, value := range pick {
		top := 0.0
		for _, d := range ds {
			top = math.Max(top, value(d))
		}
		if top <= 0 {
			continue
		}
		out := make([]uint32, len(ds))
		for i, d := range ds {
			w := math.Round(value(d) / top * maxEndpointWeight)
			out[i] = uint32(max(w, 1))
		}
		return out
	}
	return make([]uint32, len(ds))
}
