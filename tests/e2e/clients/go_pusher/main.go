// go_pusher pushes a fixed set of metrics to a push-gateway (or any
// Pushgateway-compatible server) with the official Go client library,
// github.com/prometheus/client_golang/prometheus/push, in its default
// format, length-delimited protobuf, or with -format text in the text
// format (Pusher.Format(expfmt.FmtText)).
//
// Usage: go_pusher [-format protobuf|text] STEP HOST:PORT [HOST:PORT...]
//
// One registry is built per run and pushed to every HOST:PORT in turn, so
// all of them receive the same metrics (the runtime and process metrics
// are collected anew for each push).
//
// The grouping key is job="go-batch", instance="edge-1" and
// site=`rack"7"\east` (a value the client percent-encodes). STEP is one of:
//
//	push     PUT a counter, a gauge, a histogram and a summary
//	add      POST the gauge only, with a new value
//	replace  PUT the counter only, with a new value
//	delete   DELETE the group (the client requires 202 Accepted)
//	every    PUT to job="go-every", instance="edge-2": every metric type
//	         (counter, gauge, untyped, a histogram with the default
//	         buckets and one with exponential buckets from 1e-05, a
//	         summary) plus the Go runtime and process collectors
//	everyadd POST to that group: the gauge's new value and a new counter
//	everydel DELETE that group
//
// Any error is printed and the program exits with status 1.
package main

import (
	"flag"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/push"
	"github.com/prometheus/common/expfmt"
)

const (
	job      = "go-batch"
	everyJob = "go-every"
	site     = `rack"7"\east`
	// A metric label value with both characters the text format escapes.
	path = `C:\dir\"x"`
)

func pusher(addr, job string, format expfmt.Format) *push.Pusher {
	p := push.New("http://"+addr, job).
		Client(&http.Client{Timeout: 10 * time.Second}).
		Format(format)
	if job == everyJob {
		return p.Grouping("instance", "edge-2")
	}
	return p.Grouping("instance", "edge-1").Grouping("site", site)
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

// every registers one metric of each type, as a migrating job has them.
func every(reg *prometheus.Registry) {
	reg.MustRegister(collectors.NewGoCollector())
	reg.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	c := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "every_requests_total",
		Help: "Requests, by code.\nSecond line with a \\ backslash.",
	}, []string{"code", "path"})
	c.WithLabelValues("200", "/").Add(41)
	c.WithLabelValues("500", path).Inc()
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "every_temperature_celsius",
		Help:        "Room temperature.",
		ConstLabels: prometheus.Labels{"room": "büro 1"},
	})
	g.Set(-3.25)
	u := prometheus.NewUntypedFunc(prometheus.UntypedOpts{
		Name: "every_ratio",
		Help: "A tiny ratio.",
	}, func() float64 { return 1e-05 })
	// The default buckets (.005 .. 10) and ones Go writes with exponents.
	hd := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name: "every_latency_seconds",
		Help: "Latency, default buckets.",
	})
	for _, v := range []float64{0.001, 0.02, 0.3, 0.75, 4, 11} {
		hd.Observe(v)
	}
	he := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "every_size_bytes",
		Help:    "Sizes, exponential buckets.",
		Buckets: prometheus.ExponentialBuckets(1e-05, 100, 6),
	}, []string{"kind"})
	for _, v := range []float64{0, 0.5, 64, 2e6} {
		he.WithLabelValues("blob").Observe(v)
	}
	s := prometheus.NewSummaryVec(prometheus.SummaryOpts{
		Name:       "every_rpc_seconds",
		Help:       "RPC latency.",
		Objectives: map[float64]float64{0.5: 0.05, 0.999: 0.0001},
	}, []string{"rpc"})
	for _, v := range []float64{0.125, 0.25, 0.5, 1} {
		s.WithLabelValues("get").Observe(v)
	}
	reg.MustRegister(c, g, u, hd, he, s)
}

func run(format expfmt.Format, step string, addrs []string) error {
	reg := prometheus.NewRegistry()
	group := job
	var act func(*push.Pusher) error
	switch step {
	case "push":
		reg.MustRegister(counter(7), gauge(21.5), histogram(), summary())
		act = (*push.Pusher).Push
	case "add":
		reg.MustRegister(gauge(22.75))
		act = (*push.Pusher).Add
	case "replace":
		reg.MustRegister(counter(9))
		act = (*push.Pusher).Push
	case "delete":
		act = (*push.Pusher).Delete
	case "every":
		group = everyJob
		every(reg)
		act = (*push.Pusher).Push
	case "everyadd":
		group = everyJob
		g := prometheus.NewGauge(prometheus.GaugeOpts{
			Name:        "every_temperature_celsius",
			Help:        "Room temperature.",
			ConstLabels: prometheus.Labels{"room": "büro 1"},
		})
		g.Set(7)
		c := prometheus.NewCounter(prometheus.CounterOpts{
			Name: "every_retries_total",
			Help: "Retries.",
		})
		c.Add(2)
		reg.MustRegister(g, c)
		act = (*push.Pusher).Add
	case "everydel":
		group = everyJob
		act = (*push.Pusher).Delete
	default:
		return fmt.Errorf("unknown step %q", step)
	}
	for _, addr := range addrs {
		if err := act(pusher(addr, group, format).Gatherer(reg)); err != nil {
			return fmt.Errorf("%s: %w", addr, err)
		}
	}
	return nil
}

func main() {
	formatName := flag.String("format", "protobuf", "push format: protobuf (the client's default) or text")
	flag.Parse()
	var format expfmt.Format
	switch *formatName {
	case "protobuf":
		format = expfmt.FmtProtoDelim
	case "text":
		format = expfmt.FmtText
	default:
		fmt.Fprintf(os.Stderr, "go_pusher: unknown -format %q: use protobuf or text\n", *formatName)
		os.Exit(2)
	}
	if flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: go_pusher [-format protobuf|text] STEP HOST:PORT...")
		os.Exit(2)
	}
	step := flag.Arg(0)
	if err := run(format, step, flag.Args()[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "go_pusher %s: %v\n", step, err)
		os.Exit(1)
	}
}
