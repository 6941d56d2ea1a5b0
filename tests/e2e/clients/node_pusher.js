// Pushes a fixed set of metrics with Node's prom-client, through its
// Pushgateway class, to a push-gateway (or any Pushgateway-compatible
// server), in the text format.
//
// Usage: node --expose-gc node_pusher.js STEP GATEWAY [GATEWAY...]
//
// GATEWAY is HOST:PORT. prom-client is found through NODE_PATH (the tests
// point it at the node_modules tests/e2e/install.sh fills). One registry is
// built per run and pushed to every GATEWAY in turn, so all receive the
// same metrics (the default metrics are collected anew for each push).
//
// The group is job="node-batch", instance="worker 3" (a space), and
// zone="eu west". STEP is one of:
//
//   push     push(): PUT collectDefaultMetrics plus a counter, a gauge, a
//            histogram with the default buckets and a summary
//   pushadd  pushAdd(): POST the gauge with a new value and a new gauge
//   gzip     push() as `push`, with `Content-Encoding: gzip`
//   delete   delete(): DELETE the group
//
// Any error is printed and the program exits with status 1.
'use strict';

const client = require('prom-client');

const JOB = 'node-batch';
const GROUPINGS = { instance: 'worker 3', zone: 'eu west' };
const TIMEOUT_MS = 10000;

function gauge(registry, value) {
  const g = new client.Gauge({
    name: 'node_queue_depth',
    help: 'Items waiting, by queue.',
    labelNames: ['queue'],
    registers: [registry],
  });
  g.set({ queue: 'mail' }, value);
}

function everything(registry) {
  registry.setDefaultLabels({ app: 'e2e' });
  client.collectDefaultMetrics({ register: registry });
  const c = new client.Counter({
    name: 'node_requests_total',
    help: 'Requests, by method and code.\nA second line, a \\ backslash.',
    labelNames: ['method', 'code'],
    registers: [registry],
  });
  c.inc({ method: 'GET', code: '200' }, 12);
  c.inc({ method: 'POST', code: '503' });
  c.inc({ method: 'a "quoted" \\ path\nand ünïcode', code: '404' }, 0.5);
  gauge(registry, 17);
  // The default buckets: 0.005 .. 10, written as JavaScript writes
  // numbers (le="1", le="10").
  const h = new client.Histogram({
    name: 'node_job_seconds',
    help: 'Job duration.',
    registers: [registry],
  });
  for (const v of [0.001, 0.02, 0.3, 0.75, 4, 11]) h.observe(v);
  const s = new client.Summary({
    name: 'node_payload_bytes',
    help: 'Payload size.',
    percentiles: [0.5, 0.9, 0.99],
    registers: [registry],
  });
  for (const v of [100, 200, 300, 400]) s.observe(v);
}

// prom-client fills nodejs_gc_duration_seconds from a PerformanceObserver,
// after a collection has run: were the first one to happen between the
// two pushes, only the second gateway would get the family. So one is
// forced (node --expose-gc) and awaited before the first push.
async function gcObserved(registry) {
  if (typeof global.gc !== 'function') {
    throw new Error('run node with --expose-gc');
  }
  const metric = registry.getSingleMetric('nodejs_gc_duration_seconds');
  const deadline = Date.now() + TIMEOUT_MS;
  global.gc();
  for (;;) {
    if ((await metric.get()).values.length > 0) return;
    if (Date.now() > deadline) throw new Error('no garbage collection observed');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function run(step, gateways) {
  const registry = new client.Registry();
  const headers = {};
  let method;
  switch (step) {
    case 'push':
      everything(registry);
      await gcObserved(registry);
      method = 'push';
      break;
    case 'gzip':
      everything(registry);
      await gcObserved(registry);
      headers['Content-Encoding'] = 'gzip';
      method = 'push';
      break;
    case 'pushadd':
      gauge(registry, 5);
      new client.Gauge({
        name: 'node_last_success_unixtime',
        help: 'When the job last succeeded.',
        registers: [registry],
      }).set(1700000000);
      method = 'pushAdd';
      break;
    case 'delete':
      method = 'delete';
      break;
    default:
      throw new Error(`unknown step ${JSON.stringify(step)}: use push, pushadd, gzip or delete`);
  }
  for (const addr of gateways) {
    const gw = new client.Pushgateway(
      `http://${addr}`,
      { timeout: TIMEOUT_MS, headers },
      registry,
    );
    const { resp } = await gw[method]({ jobName: JOB, groupings: GROUPINGS });
    if (resp.statusCode < 200 || resp.statusCode > 299) {
      throw new Error(`${addr}: ${method}() answered ${resp.statusCode}`);
    }
  }
}

const [step, ...gateways] = process.argv.slice(2);
if (!step || gateways.length === 0) {
  process.stderr.write('usage: node node_pusher.js push|pushadd|gzip|delete HOST:PORT...\n');
  process.exit(2);
}
run(step, gateways).then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`node_pusher ${step}: ${err.stack || err}\n`);
    process.exit(1);
  },
);
