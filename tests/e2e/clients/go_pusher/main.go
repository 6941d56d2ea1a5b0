// go_pusher pushes a fixed set of metrics to a push-gateway (or any
// Pushgateway-compatible server) with the official Go client library,
// github.com/prometheus/client_golang/prometheus/push, in its default
// format: length-delimited protobuf.
//
// Usage: go_pusher HOST:PORT STEP
//
// The grouping key is job="go-batch", instance="edge-1" and
// site=`rack"7"\east` (a value the client percent-encodes). STEP is one of:
//
//	push     PUT a counter, a gauge, a histogram and a summary
//	add      POST the gauge only, with a new value
//	replace  PUT the counter only, with a new value
//	delete   DELETE the group (the client requires 202 Accepted)
//
// Any error is printed and the program exits with status 1.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

const (
	job  = "go-batch"
	site = `rack"7"\east`
	// A metric label value with both characters the text format escapes.
	path = `C:\dir\"x"`
)

func pusher(addr string) *push.Pusher {
	return push.New("http://"+addr, job).
		Client(&http.Client{Timeout: 10 * time.Second}).
		Grouping("instance", "edge-1").
		Grouping("site", site)
}

func counter(v float64) prometheus.Collector {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "go_e2e_requests_total",
		Help: "Requests handled, by path.",
	}, []string{"path"})
	c.WithLabelValues(path).Add(v)
	return c
}

func gauge(v float64) prometheus.Collector {
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "go_e2e_temperature_celsius",
		Help: "Board temperature.",
	})
	g.Set(v)
	return g
}

func histogram() prometheus.Collector {
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "go_e2e_latency_seconds",
		Help:    "Job latency.",
		Buckets: []float64{0.1, 1, 10},
	})
	for _, v := range []float64{0.05, 0.5, 0.5, 5, 50} {
		h.Observe(v)
	}
	return h
}

func summary() prometheus.Collector {
	s := prometheus.NewSummary(prometheus.SummaryOpts{
		Name:       "go_e2e_rpc_seconds",
		Help:       "RPC latency.",
		Objectives: map[float64]float64{0.5: 0.05, 0.9: 0.01, 0.99: 0.001},
	})
	for _, v := range []float64{0.25, 0.25, 0.25, 0.25} {
		s.Observe(v)
	}
	return s
}

func run(addr, step string) error {
	p := pusher(addr)
	switch step {
	case "push":
		return p.Collector(counter(7)).Collector(gauge(21.5)).
			Collector(histogram()).Collector(summary()).Push()
	case "add":
		return p.Collector(gauge(22.75)).Add()
	case "replace":
		return p.Collector(counter(9)).Push()
	case "delete":
		return p.Delete()
	}
	return fmt.Errorf("unknown step %q: use push, add, replace or delete", step)
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go_pusher HOST:PORT push|add|replace|delete")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2]); err != nil {
		fmt.Fprintf(os.Stderr, "go_pusher %s: %v\n", os.Args[2], err)
		os.Exit(1)
	}
}
