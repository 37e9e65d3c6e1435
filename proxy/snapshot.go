package proxy

import (
	"sort"
	"strconv"
	"time"
)

// Snapshot is the live state an operator reads: routes and upstream
// servers with their health and pool use.
type Snapshot struct {
	Routes    []RouteStatus
	Upstreams []UpstreamStatus
	Tunnels   TunnelStatus
}

// TunnelStatus describes the upgraded connections (WebSocket …).
type TunnelStatus struct {
	Open, Max       int64 // Max 0: no cap
	Opened          uint64
	BytesToUpstream uint64
	BytesToClient   uint64
	IdleTimeout     time.Duration
}

// RouteStatus describes one route.
type RouteStatus struct {
	Name, Host, PathPrefix, Target string
	StripPrefix                    bool
}

// UpstreamStatus describes one upstream group.
type UpstreamStatus struct {
	Name     string
	Balance  string
	MaxConns int
	Servers  []ServerStatus
	// ResolveInterval is "" when names are not re-resolved;
	// ResolveFailing while the last resolution failed.
	ResolveInterval string
	ResolveFailing  bool
}

// ServerStatus describes one upstream server.
type ServerStatus struct {
	Addr string
	Up   bool
	// Why is "", "passive" (max_fails reached) or "health check".
	Why       string
	InFlight  int64
	Conns     int
	Busy      int
	IdleConns int
	Requests  uint64
	Failures  uint64
}

// Snapshot reads the live state.
func (s *Server) Snapshot() Snapshot {
	st := s.state.Load()
	now := s.now()
	var snap Snapshot
	for _, r := range st.router.routes {
		rs := RouteStatus{Name: r.name, PathPrefix: string(r.prefix), StripPrefix: r.stripPrefix}
		switch r.kind {
		case matchExact:
			rs.PathPrefix = "= " + rs.PathPrefix
		case matchRegex:
			rs.PathPrefix = "~ " + r.re.String()
		default:
			if r.regexStops {
				rs.PathPrefix = "^~ " + rs.PathPrefix
			}
		}
		if r.internal {
			rs.PathPrefix += " (internal)"
		}
		rs.Host = string(r.host)
		if r.wildcard {
			rs.Host = "*" + rs.Host
		}
		switch t := r.target.(type) {
		case upstreamTarget:
			rs.Target = "upstream " + t.up.name
		case *answer:
			rs.Target = "return " + strconv.Itoa(t.status)
		case *fileTarget:
			rs.Target = "files " + t.dir
		default:
			rs.Target = "handler"
		}
		snap.Routes = append(snap.Routes, rs)
	}
	for _, u := range st.upstreams {
		us := UpstreamStatus{Name: u.name, Balance: u.opts.Balance.String(), MaxConns: u.opts.MaxConnsPerServer,
			ResolveFailing: u.resolveFailed.Load()}
		if u.opts.ResolveInterval > 0 {
			us.ResolveInterval = u.opts.ResolveInterval.String()
		}
		for _, sv := range u.set.Load().servers {
			ss := ServerStatus{
				Addr: sv.addr, Up: sv.available(now), InFlight: sv.inflight.Load(),
				Conns: sv.hc.ConnsCount(), IdleConns: sv.hc.IdleConnsCount(),
				Requests: sv.requests.Load(), Failures: sv.failures.Load(),
			}
			ss.Busy = max(ss.Conns-ss.IdleConns, 0)
			switch {
			case sv.checkFailed.Load():
				ss.Why = "health check"
			case now.UnixNano() < sv.downUntil.Load():
				ss.Why = "passive until " + time.Unix(0, sv.downUntil.Load()).Format(time.RFC3339)
			}
			us.Servers = append(us.Servers, ss)
		}
		snap.Upstreams = append(snap.Upstreams, us)
	}
	snap.Tunnels = s.tunnels.status()
	snap.Tunnels.Max, snap.Tunnels.IdleTimeout = int64(st.opts.MaxUpgradedConns), st.opts.UpgradeIdleTimeout
	sort.Slice(snap.Upstreams, func(i, j int) bool { return snap.Upstreams[i].Name < snap.Upstreams[j].Name })
	return snap
}
