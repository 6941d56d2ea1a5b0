// push_go pushes a batch job's completion time to push-gateway with the
// official Go client, github.com/prometheus/client_golang/prometheus/push
// (Debian: golang-github-prometheus-client-golang-dev), through the socat
// TCP bridge README describes:
//
//	socat TCP-LISTEN:9092,bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:/tmp/push-gateway.sock &
//	GO111MODULE=off GOPATH=/usr/share/gocode go run examples/push_go/main.go 127.0.0.1:9092
//
// The address is the first argument, else 127.0.0.1:9092. It pushes
// backup_last_completion_timestamp_seconds under job="backup" (replacing
// the group, as Push does) in the client's default format, delimited
// protobuf. Any error is printed and the exit status is 1.
package main

import (
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/push"
)

func main() {
	addr := "127.0.0.1:9092"
	if len(os.Args) > 1 {
		addr = os.Args[1]
	}
	completionTime := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "backup_last_completion_timestamp_seconds",
		Help: "The last time the backup job completed, in Unix seconds.",
	})
	completionTime.SetToCurrentTime()
	err := push.New("http://"+addr, "backup").
		Client(&http.Client{Timeout: 10 * time.Second}).
		Collector(completionTime).
		Push()
	if err != nil {
		fmt.Fprintf(os.Stderr, "push_go: push to %s failed: %v\n", addr, err)
		os.Exit(1)
	}
}
