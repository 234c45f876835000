package traffic

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// The xDS resource types a routing change reaches proxies through, as
// istiod's /debug/syncz names them (<type>_sent, <type>_acked).
const (
	Clusters  = "cluster"
	Endpoints = "endpoint"
	Listeners = "listener"
	Routes    = "route"
)

// ProxySync is one proxy's row of istiod's /debug/syncz: per xDS type, the
// nonce istiod last sent and the nonce the proxy last acknowledged. The
// nonce starts with the push version it was sent for (the same string
// `istioctl proxy-status` compares to say SYNCED or STALE).
type ProxySync struct {
	Proxy string
	Sent  map[string]string
	Acked map[string]string
}

// ParseSyncz reads istiod's /debug/syncz answer.
func ParseSyncz(body []byte) ([]ProxySync, error) {
	var rows []map[string]any
	if err := json.Unmarshal(body, &rows); err != nil {
		return nil, fmt.Errorf("failed to parse istiod's /debug/syncz answer: %w", err)
	}
	out := make([]ProxySync, 0, len(rows))
	for _, r := range rows {
		p := ProxySync{Sent: map[string]string{}, Acked: map[string]string{}}
		p.Proxy, _ = r["proxy"].(string)
		for _, typ := range []string{Clusters, Endpoints, Listeners, Routes} {
			if s, _ := r[typ+"_sent"].(string); s != "" {
				p.Sent[typ] = s
			}
			if a, _ := r[typ+"_acked"].(string); a != "" {
				p.Acked[typ] = a
			}
		}
		out = append(out, p)
	}
	return out, nil
}

// uuidLen is the length of the random part istiod appends to a push version
// to make a nonce (pilot/pkg/xds: nonce = PushVersion + uuid).
const uuidLen = 36

// PushNumber is the push counter in a nonce: istiod's push versions are
// "<RFC3339 time>/<counter>", the counter growing with every push of that
// istiod. It returns false for a nonce of another shape.
func PushNumber(nonce string) (uint64, bool) {
	if len(nonce) <= uuidLen {
		return 0, false
	}
	version := nonce[:len(nonce)-uuidLen]
	i := strings.LastIndexByte(version, '/')
	if i < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(version[i+1:], 10, 64)
	return n, err == nil
}

// LastPush is the highest push counter istiod has sent any of its proxies.
func LastPush(rows []ProxySync) uint64 {
	var last uint64
	for _, r := range rows {
		for _, s := range r.Sent {
			if n, ok := PushNumber(s); ok && n > last {
				last = n
			}
		}
	}
	return last
}

// Lagging lists, for one istiod, the proxies that have not yet acknowledged
// a push newer than after for every type in types that they watch, each
// with the reason. A proxy that watches none of the types is not affected
// (a gRPC server that subscribes to its listeners only). A push newer than
// after was computed after the change was written (the caller reads after
// before writing), so a proxy that acked it has the change; a sent nonce
// not yet acked is a push in flight or refused by the proxy (a NACK).
func Lagging(rows []ProxySync, after uint64, types []string) []string {
	var out []string
	for _, r := range rows {
		var why []string
		for _, typ := range types {
			sent := r.Sent[typ]
			if sent == "" {
				continue
			}
			n, _ := PushNumber(sent)
			switch {
			case n <= after:
				why = append(why, fmt.Sprintf("%s: no push after #%d yet", typ, after))
			case r.Acked[typ] != sent:
				why = append(why, fmt.Sprintf("%s: push #%d sent, not acknowledged", typ, n))
			}
		}
		if len(why) > 0 {
			out = append(out, r.Proxy+" ("+strings.Join(why, "; ")+")")
		}
	}
	slices.Sort(out)
	return out
}
