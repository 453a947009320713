// The peer a Node user would choose for a webhook inbox (bench/inbox): Express verifies
// Groq's scheme (bench/express-verify.js, as bench/express/server.js does), then
// `queue.add` with the event id as the job id (BullMQ ignores a second job with the
// same id: a provider's retry is not queued twice) and answers 200 once Redis has it.
// A BullMQ Worker runs the handlers, each sleeping HANDLER_DELAY_MS, with 8 attempts
// and exponential backoff, completed jobs kept for 7 days as hookroute keeps done ids.
//
//   GROQ_WEBHOOK_SECRET=... REDIS_URL=redis://127.0.0.1:6379/ PORT=3000 \
//     [WORKERS=4] [HANDLER_DELAY_MS=0] [ROLE=worker] node server.js
//
// WORKERS=0: HTTP only. ROLE=worker: the Worker only, no HTTP; it prints
// `DRAINED <jobs> <ms>` once the queue has nothing waiting, active or delayed, counting
// from its start (bench/inbox's drain rate); with DRAIN_EXPECT=<jobs>, to its
// DRAIN_EXPECT-th handled job (`drainClock`, ../express-verify.js).

'use strict';

const express = require('express');
const { Queue, Worker } = require('bullmq');
const { serveGroq, drainClock } = require('../express-verify.js');

const SECRET = process.env.GROQ_WEBHOOK_SECRET;
const PORT = Number(process.env.PORT || 3000);
const WORKERS = Number(process.env.WORKERS ?? 4);
const DELAY_MS = Number(process.env.HANDLER_DELAY_MS || 0);
const DRAIN_EXPECT = Number(process.env.DRAIN_EXPECT || 0);
const ROLE = process.env.ROLE || 'both';
const TTL_SECONDS = 7 * 24 * 3600;

if (!SECRET || !process.env.REDIS_URL) {
  console.error('error: set GROQ_WEBHOOK_SECRET and REDIS_URL');
  process.exit(1);
}

const redisUrl = new URL(process.env.REDIS_URL);
const connection = { host: redisUrl.hostname, port: Number(redisUrl.port || 6379), maxRetriesPerRequest: null };
const QUEUE = 'webhooks';

// No timer at 0: Node clamps setTimeout to at least 1 ms, which a no-op handler would wait.
const sleep = (ms) => (ms > 0 ? new Promise((resolve) => setTimeout(resolve, ms)) : Promise.resolve());
const handlers = {
  'resource.created': async (data) => sleep(DELAY_MS),
  'resource.updated': async (data) => sleep(DELAY_MS),
  'resource.deleted': async (data) => sleep(DELAY_MS),
};

if (ROLE === 'worker' || WORKERS > 0) {
  const drain = drainClock(DRAIN_EXPECT);
  const worker = new Worker(
    QUEUE,
    async (job) => {
      const handler = handlers[job.data.type];
      if (handler) await handler(job.data.data);
      drain.handled();
    },
    { connection, concurrency: Math.max(WORKERS, 1) },
  );
  worker.on('error', (error) => console.error(`worker: ${error.message}`));
  if (ROLE === 'worker') {
    const queue = new Queue(QUEUE, { connection });
    drain.report(async () => {
      const counts = await queue.getJobCounts('wait', 'active', 'delayed', 'prioritized');
      return Object.values(counts).reduce((sum, n) => sum + n, 0);
    });
  }
}

if (ROLE !== 'worker') {
  const queue = new Queue(QUEUE, { connection });
  serveGroq({
    express,
    secret: SECRET,
    port: PORT,
    handlers,
    enqueue: (event) => queue.add(event.type, { id: event.id, type: event.type, data: event.data }, {
      jobId: event.id,
      attempts: 8,
      backoff: { type: 'exponential', delay: 5000 },
      removeOnComplete: { age: TTL_SECONDS },
    }),
  });
}
