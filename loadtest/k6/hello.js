// k6 version of the hello-load scenarios, using k6's gRPC module.
//
//   k6 run -e SCENARIO=constant -e RATE=200 -e DURATION=30s loadtest/k6/hello.js
//
// Scenarios (SCENARIO): constant, ramp, burst, soak, closed. They map onto
// k6 executors the way hello-load's open model works: arrival-rate executors
// start iterations on a schedule whatever the server does, and iterations
// that find no free VU are counted in `dropped_iterations` (hello-load's
// "late" and "not sent"). k6 measures grpc_req_duration from the actual
// send, so unlike hello-load it does not add the wait for a free VU to the
// latency; watch dropped_iterations next to it.
//
// Every setting is an environment variable (-e NAME=value); see `env` below.
// Thresholds fail the run (exit code 99) like hello-load's --max-* options.
// Delivery verification (lost and duplicated greetings) is hello-load only.

import grpc from 'k6/net/grpc';
import { check } from 'k6';
import exec from 'k6/execution';

const env = {
  target: __ENV.TARGET || '127.0.0.1:50051',
  tls: __ENV.TLS === 'true',
  token: __ENV.TOKEN || '',
  protoDir: __ENV.PROTO_DIR || '../../proto',
  scenario: __ENV.SCENARIO || 'constant',
  rate: Number(__ENV.RATE || 50),
  duration: __ENV.DURATION || '30s',
  startRate: Number(__ENV.START_RATE || 10),
  endRate: Number(__ENV.END_RATE || 200),
  baseRate: Number(__ENV.BASE_RATE || 0),
  spikeRate: Number(__ENV.SPIKE_RATE || 500),
  idle: __ENV.IDLE || '5s',
  spike: __ENV.SPIKE || '1s',
  cycles: Number(__ENV.CYCLES || 3),
  concurrency: Number(__ENV.CONCURRENCY || 16),
  maxVus: Number(__ENV.MAX_VUS || 500),
  deadline: __ENV.DEADLINE || '1s',
  namePrefix: __ENV.NAME_PREFIX || 'k6',
  maxP99Ms: __ENV.MAX_P99_MS,
  maxErrorRate: __ENV.MAX_ERROR_RATE,
  maxDropped: __ENV.MAX_DROPPED,
};

function openModel(executor, extra) {
  return Object.assign(
    {
      executor,
      timeUnit: '1s',
      preAllocatedVUs: Math.min(env.maxVus, 50),
      maxVUs: env.maxVus,
    },
    extra,
  );
}

function burstStages() {
  // A rate change over a 0 s stage is a step, so each spike starts at once.
  const stages = [];
  for (let i = 0; i < env.cycles; i += 1) {
    stages.push({ target: env.baseRate, duration: env.idle });
    stages.push({ target: env.spikeRate, duration: '0s' });
    stages.push({ target: env.spikeRate, duration: env.spike });
    stages.push({ target: env.baseRate, duration: '0s' });
  }
  stages.push({ target: env.baseRate, duration: env.idle });
  return stages;
}

const scenarios = {
  constant: () => openModel('constant-arrival-rate', { rate: env.rate, duration: env.duration }),
  soak: () => openModel('constant-arrival-rate', {
    rate: env.rate,
    duration: __ENV.DURATION || '1h',
  }),
  ramp: () => openModel('ramping-arrival-rate', {
    startRate: env.startRate,
    stages: [{ target: env.endRate, duration: env.duration }],
  }),
  burst: () => openModel('ramping-arrival-rate', {
    startRate: env.baseRate,
    stages: burstStages(),
  }),
  closed: () => ({ executor: 'constant-vus', vus: env.concurrency, duration: env.duration }),
};

if (!(env.scenario in scenarios)) {
  throw new Error(`SCENARIO must be one of ${Object.keys(scenarios).join(', ')}`);
}

function thresholds() {
  const result = {};
  if (env.maxP99Ms !== undefined) {
    result.grpc_req_duration = [`p(99)<=${Number(env.maxP99Ms)}`];
  }
  if (env.maxErrorRate !== undefined) {
    result.checks = [`rate>=${1 - Number(env.maxErrorRate)}`];
  }
  if (env.maxDropped !== undefined) {
    result.dropped_iterations = [`count<=${Number(env.maxDropped)}`];
  }
  return result;
}

export const options = {
  scenarios: { [env.scenario]: scenarios[env.scenario]() },
  thresholds: thresholds(),
  summaryTrendStats: ['min', 'avg', 'med', 'p(90)', 'p(99)', 'p(99.9)', 'max'],
};

const client = new grpc.Client();
client.load([env.protoDir], 'hello.proto');

export default function () {
  // One connection per VU, opened by its first iteration (k6 cannot connect in init).
  if (exec.vu.iterationInScenario === 0) {
    client.connect(env.target, { plaintext: !env.tls, timeout: '5s' });
  }
  const params = { timeout: env.deadline };
  if (env.token) {
    params.metadata = { authorization: `Bearer ${env.token}` };
  }
  const name = `${env.namePrefix}-${exec.scenario.iterationInTest}`;
  const response = client.invoke('hello.HelloApi/SayHello', { name }, params);
  check(response, {
    'status is OK': (r) => r && r.status === grpc.StatusOK,
    'greeting echoes the name': (r) => r && r.message && r.message.message === `Hello, ${name}!`,
  });
}
