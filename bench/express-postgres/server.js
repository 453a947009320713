// The PostgreSQL peers of bench/inbox: the Express verifier of the BullMQ peer
// (bench/express-verify.js) in front of graphile-worker or pg-boss, each configured
// as its documentation recommends for throughput, on the database hookroute uses.
//
//   GROQ_WEBHOOK_SECRET=... DATABASE_URL=postgres://... QUEUE=graphile-worker|pg-boss \
//     PORT=3000 [WORKERS=4] [HANDLER_DELAY_MS=0] [ROLE=worker] node server.js
//
// Each accepted delivery is queued with the event id as its key (graphile-worker's
// `jobKey`, pg-boss's `singletonKey`: a provider's retry replaces or joins the queued
// job) and 8 attempts, and answered 200 once its insert committed (fsync on).
//   - graphile-worker: `localQueue` (jobs fetched in batches of LOCAL_QUEUE, 100) and
//     batched completions (`completeJobBatchDelay: 0`), its documented batching.
//   - pg-boss: WORKERS `work` subscriptions, each fetching up to PG_BOSS_BATCH (100)
//     jobs a poll (`batchSize`) and running them at once; a subscription waits out
//     the rest of its 0.5 s polling interval (pg-boss's least) after each batch.
// WORKERS=0: HTTP only. ROLE=worker: the worker only, no HTTP; it prints
// `DRAINED <jobs> <ms>` once nothing is queued or running, counting from its start;
// with DRAIN_EXPECT=<jobs>, to its DRAIN_EXPECT-th handled job (`drainClock`,
// ../express-verify.js).

'use strict';

const express = require('express');
const { serveGroq, drainClock } = require('../express-verify.js');

const SECRET = process.env.GROQ_WEBHOOK_SECRET;
const DATABASE_URL = process.env.DATABASE_URL;
const KIND = process.env.QUEUE;
const PORT = Number(process.env.PORT || 3000);
const WORKERS = Number(process.env.WORKERS ?? 4);
const DELAY_MS = Number(process.env.HANDLER_DELAY_MS || 0);
const ROLE = process.env.ROLE || 'both';
const DRAIN_EXPECT = Number(process.env.DRAIN_EXPECT || 0);
const LOCAL_QUEUE = Number(process.env.LOCAL_QUEUE || 100);
const PG_BOSS_BATCH = Number(process.env.PG_BOSS_BATCH || 100);
const QUEUE = 'webhooks';

if (!SECRET || !DATABASE_URL || !['graphile-worker', 'pg-boss'].includes(KIND)) {
  console.error('error: set GROQ_WEBHOOK_SECRET, DATABASE_URL and QUEUE=graphile-worker|pg-boss');
  process.exit(1);
}

// No timer at 0: Node clamps setTimeout to at least 1 ms, which a no-op handler would wait.
const sleep = (ms) => (ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve());
const handlers = {
  'resource.created': async (data) => sleep(DELAY_MS),
  'resource.updated': async (data) => sleep(DELAY_MS),
  'resource.deleted': async (data) => sleep(DELAY_MS),
};
// Set, with the clock started, just before the workers run.
let drain = null;
const handle = async (job) => {
  const handler = handlers[job.type];
  if (handler) await handler(job.data);
  drain.handled();
};

// { add(event), work(), left() }: queue a job; run the workers; how many jobs are queued or running.
async function graphileWorker() {
  const { makeWorkerUtils, run } = require('graphile-worker');
  const utils = await makeWorkerUtils({ connectionString: DATABASE_URL });
  await utils.migrate();
  return {
    add: (event) => utils.addJob('webhook', { id: event.id, type: event.type, data: event.data }, {
      jobKey: event.id,
      maxAttempts: 8,
    }),
    work: () => run({
      connectionString: DATABASE_URL,
      concurrency: Math.max(WORKERS, 1),
      noHandleSignals: true,
      pollInterval: 500,
      taskList: { webhook: handle },
      preset: { worker: { localQueue: { size: LOCAL_QUEUE }, completeJobBatchDelay: 0, failJobBatchDelay: 0 } },
    }),
    left: () => utils.withPgClient(async (client) => {
      const { rows } = await client.query('SELECT count(*)::int AS n FROM graphile_worker.jobs');
      return rows[0].n;
    }),
  };
}

async function pgBoss() {
  const PgBoss = require('pg-boss');
  const boss = new PgBoss({ connectionString: DATABASE_URL });
  boss.on('error', (error) => console.error(`pg-boss: ${error.message}`));
  await boss.start();
  await boss.createQueue(QUEUE);
  return {
    add: (event) => boss.send(QUEUE, { id: event.id, type: event.type, data: event.data }, {
      singletonKey: event.id,
      retryLimit: 7,
      retryBackoff: true,
    }),
    // pg-boss polls: each subscription fetches a batch, runs it, and waits out the rest
    // of its polling interval (0.5 s, its least). WORKERS subscriptions of PG_BOSS_BATCH.
    work: () => Promise.all(Array.from({ length: Math.max(WORKERS, 1) }, () => boss.work(QUEUE,
      { batchSize: PG_BOSS_BATCH, pollingIntervalSeconds: 0.5 },
      (jobs) => Promise.all(jobs.map((job) => handle(job.data)))))),
    left: () => boss.getQueueSize(QUEUE, { before: 'completed' }),
  };
}

async function main() {
  const queue = KIND === 'graphile-worker' ? await graphileWorker() : await pgBoss();
  if (ROLE === 'worker' || WORKERS > 0) {
    drain = drainClock(DRAIN_EXPECT);
    await queue.work();
    if (ROLE === 'worker') {
      await drain.report(queue.left);
    }
  }
  if (ROLE !== 'worker') {
    serveGroq({ express, secret: SECRET, port: PORT, handlers, enqueue: queue.add });
  }
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
