package xds

import (
	"log/slog"

	cachev3 "github.com/envoyproxy/go-control-plane/pkg/cache/v3"
	"google.golang.org/protobuf/proto"
)

// nackParker wraps the snapshot cache so a NACK parks the watch instead of
// re-sending the rejected resources.
//
// A NACK carries the last version the client accepted, not the one it
// rejected; the snapshot cache sees a version different from the snapshot's
// and answers at once with the same rejected resources, which Envoy NACKs
// again, forever (go-control-plane#962). The rejected version is the one
// the stream last sent for the type, which the SotW subscription records
// for every resource it returned. When that is still the snapshot's
// version, the watch is opened as if the client were up to date, so it is
// held until SetSnapshot installs a different version.
//
// Delta streams pass through: their cache compares per-resource versions
// already returned, so a NACK does not trigger a re-send there.
type nackParker struct {
	cachev3.SnapshotCache
	log     *slog.Logger
	metrics *metrics
}

// Compile-time check: sotw and delta servers accept it as their watcher.
var _ cachev3.ConfigWatcher = (*nackParker)(nil)

// CreateWatch parks NACKs of the current version and passes every other
// request to the cache unchanged.
func (p *nackParker) CreateWatch(req *cachev3.Request, sub cachev3.Subscription, out chan cachev3.Response) (func(), error) {
	if req.GetErrorDetail() == nil {
		return p.SnapshotCache.CreateWatch(req, sub, out)
	}
	rejected := sentVersion(sub)
	current := ""
	if snap, err := p.SnapshotCache.GetSnapshot(nodeGroup); err == nil {
		current = snap.GetVersion(req.GetTypeUrl())
	}
	parked := rejected != "" && rejected == current
	p.metrics.nacks.WithLabelValues(typeLabel(req.GetTypeUrl())).Inc()
	p.log.Warn("xds NACK: envoy rejected the resources",
		slog.String("node", req.GetNode().GetId()),
		slog.String("type_url", req.GetTypeUrl()),
		slog.String("rejected_version", rejected),
		slog.String("accepted_version", req.GetVersionInfo()),
		slog.String("error", req.GetErrorDetail().GetMessage()),
		slog.Bool("parked", parked))
	if !parked {
		// The snapshot moved on since the rejected push: send the new one.
		return p.SnapshotCache.CreateWatch(req, sub, out)
	}
	held := proto.Clone(req).(*cachev3.Request)
	held.VersionInfo = rejected
	return p.SnapshotCache.CreateWatch(held, sub, out)
}

// sentVersion is the version of the last response the stream sent for the
// subscription's type. SotW responses stamp every returned resource with
// the response version, and full-state types (CDS, LDS) return all of them,
// so the values agree. "" when nothing was returned or they disagree (a
// type whose responses carry only some resources), which leaves the NACK
// unparked rather than guessing.
func sentVersion(sub cachev3.Subscription) string {
	version := ""
	for _, v := range sub.ReturnedResources() {
		if version != "" && v != version {
			return ""
		}
		version = v
	}
	return version
}
