package gate

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// DefaultQueryTimeout bounds one gate query. Gates run between waves while
// the operator waits, so a hung Prometheus must surface as an error quickly.
const DefaultQueryTimeout = 30 * time.Second

// Prometheus evaluates Prometheus gates against one server. It holds no
// state between calls and is safe for concurrent use.
type Prometheus struct {
	url     string
	api     promv1.API
	timeout time.Duration
}

// PrometheusOption customises NewPrometheus.
type PrometheusOption func(*prometheusOptions)

type prometheusOptions struct {
	timeout      time.Duration
	roundTripper http.RoundTripper
}

// WithQueryTimeout overrides DefaultQueryTimeout, e.g. for tests that want
// an unreachable server to fail fast.
func WithQueryTimeout(d time.Duration) PrometheusOption {
	return func(o *prometheusOptions) { o.timeout = d }
}

// WithRoundTripper sets the HTTP transport, for servers behind
// authentication or TLS that the default transport cannot reach.
func WithRoundTripper(rt http.RoundTripper) PrometheusOption {
	return func(o *prometheusOptions) { o.roundTripper = rt }
}

// NewPrometheus returns a client for the server at url (e.g.
// http://prometheus.istio-system:9090). It does not contact the server; the
// first Evaluate or Validate does.
func NewPrometheus(url string, opts ...PrometheusOption) (*Prometheus, error) {
	if err := checkHTTPURL(url); err != nil {
		return nil, fmt.Errorf("failed to use Prometheus URL: %w", err)
	}
	o := prometheusOptions{timeout: DefaultQueryTimeout}
	for _, opt := range opts {
		opt(&o)
	}
	client, err := api.NewClient(api.Config{Address: url, RoundTripper: o.roundTripper})
	if err != nil {
		return nil, fmt.Errorf("failed to create Prometheus client for %q: %w", url, err)
	}
	return &Prometheus{url: url, api: promv1.NewAPI(client), timeout: o.timeout}, nil
}

// URL is the server this client queries, for messages and reports.
func (p *Prometheus) URL() string { return p.url }

// Evaluate runs g's query as an instant query at now and judges the result.
// A measurement that could not be taken (server unreachable, timeout) is an
// error, never a failing Verdict, so the engine can tell "unhealthy" from
// "unknown". A spec that can never work returns an *InvalidError.
func (p *Prometheus) Evaluate(ctx context.Context, name string, g v1alpha1.PrometheusGate, now time.Time) (Verdict, error) {
	c, problems := parseCriterion(g)
	if len(problems) > 0 {
		return Verdict{}, &InvalidError{Gate: name, Problems: problems}
	}
	samples, err := p.query(ctx, name, g.Query, now)
	if err != nil {
		return Verdict{}, err
	}
	return judge(name, g.Query, c, samples), nil
}

// Validate checks g statically (ValidateSpec) and, for a Prometheus gate,
// runs its query once so a PromQL mistake is reported before the upgrade
// starts rather than after the first wave. Probe gates need no server and
// are only checked statically.
func (p *Prometheus) Validate(ctx context.Context, g v1alpha1.Gate) error {
	if err := ValidateSpec(g); err != nil {
		return err
	}
	if g.Prometheus == nil {
		return nil
	}
	// A zero time lets the server use its own clock; Validate only cares
	// whether the query runs.
	_, err := p.query(ctx, g.Name, g.Prometheus.Query, time.Time{})
	return err
}

// query runs an instant query and flattens its result into samples.
func (p *Prometheus) query(ctx context.Context, name, query string, at time.Time) ([]sample, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	value, _, err := p.api.Query(ctx, query, at, promv1.WithTimeout(p.timeout))
	if err != nil {
		var apiErr *promv1.Error
		if errors.As(err, &apiErr) && apiErr.Type == promv1.ErrBadData {
			return nil, &InvalidError{Gate: name, Problems: []string{
				fmt.Sprintf("query %q does not parse: %s; fix the PromQL", oneLine(query), apiErr.Msg),
			}}
		}
		return nil, fmt.Errorf("failed to query Prometheus %s for gate %q: %w", p.url, name, err)
	}
	samples, err := flatten(value)
	if err != nil {
		return nil, &InvalidError{Gate: name, Problems: []string{
			fmt.Sprintf("query %q %s; a gate needs an instant vector or a scalar", oneLine(query), err),
		}}
	}
	return samples, nil
}

// flatten reduces an instant query result to samples. Range vectors and
// strings cannot be compared with a threshold, which is a spec mistake.
func flatten(v model.Value) ([]sample, error) {
	switch r := v.(type) {
	case model.Vector:
		out := make([]sample, 0, len(r))
		for _, s := range r {
			out = append(out, sample{key: s.Metric.String(), value: float64(s.Value)})
		}
		return out, nil
	case *model.Scalar:
		return []sample{{key: "scalar", value: float64(r.Value)}}, nil
	case nil:
		return nil, nil
	case model.Matrix:
		return nil, errors.New("returns a range vector")
	default:
		return nil, fmt.Errorf("returns a %s", v.Type())
	}
}
