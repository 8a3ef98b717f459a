package extproc

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/tollgate-gw/tollgate/pkg/policy"
)

// avoidFor is how long admission leaves out a deployment Envoy skipped.
// Envoy ejects a host for 30s at least; re-checking sooner costs one
// request to the siblings per interval, as LiteLLM's 5s cooldown does.
const avoidFor = 5 * time.Second

// avoided holds the deployments this replica saw Envoy skip: a request
// pinned to one was answered by another deployment on its first attempt,
// so the pinned pool's priority 0 had no healthy host (outlier ejection).
// Admission then picks among the others, whose limits it can enforce,
// instead of sending pinned requests to siblings uncounted.
type avoided struct {
	n     atomic.Int32 // entries in until, so the common case takes no lock
	mu    sync.Mutex
	until map[string]time.Time
}

// skip records that Envoy skipped deployment id at now; it reports
// whether the deployment was not avoided already.
func (a *avoided) skip(id string, now time.Time) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.until == nil {
		a.until = map[string]time.Time{}
	}
	t, was := a.until[id]
	a.until[id] = now.Add(avoidFor)
	a.n.Store(int32(len(a.until)))
	return !was || !now.Before(t)
}

// filter returns deps without the deployments avoided now, or deps
// itself when none is avoided or all are (then Envoy's own fallback is
// the best there is).
func (a *avoided) filter(deps []policy.DeploymentLimit, clock func() time.Time) []policy.DeploymentLimit {
	if len(deps) == 0 || a.n.Load() == 0 {
		return deps
	}
	now := clock()
	a.mu.Lock()
	defer a.mu.Unlock()
	for id, t := range a.until {
		if !now.Before(t) {
			delete(a.until, id)
		}
	}
	a.n.Store(int32(len(a.until)))
	var out []policy.DeploymentLimit
	for i, d := range deps {
		if _, skip := a.until[d.ID]; skip {
			if out == nil {
				out = append(make([]policy.DeploymentLimit, 0, len(deps)-1), deps[:i]...)
			}
			continue
		}
		if out != nil {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return deps
	}
	return out
}
