// The Express receiver every Node peer of bench/inbox puts in front of its queue, so the
// peers differ only in the queue: Groq's scheme exactly as bench/express/server.js checks
// it (hex HMAC-SHA256 of `${timestamp}.${body}`, crypto.timingSafeEqual, a 300 s age
// check, JSON.parse); and the drain's clock, the same for every peer. Needs nothing but
// Node itself.

'use strict';

const crypto = require('node:crypto');

const TOLERANCE_SECONDS = 300;

// The event of a signed Groq delivery (`req.body` a Buffer), or `{ status, reason }`
// to answer when it is not one.
function verifyGroq(req, secret) {
  const signature = req.get('x-groq-signature');
  const timestamp = req.get('x-groq-timestamp');
  if (!signature || !timestamp || !Buffer.isBuffer(req.body)) {
    return { status: 401, reason: 'missing signature' };
  }
  const sent = Number(timestamp);
  if (!Number.isInteger(sent) || Math.abs(Date.now() / 1000 - sent) > TOLERANCE_SECONDS) {
    return { status: 401, reason: 'stale timestamp' };
  }
  const expected = crypto.createHmac('sha256', secret).update(`${timestamp}.${req.body}`).digest('hex');
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, Buffer.from(expected))) {
    return { status: 401, reason: 'bad signature' };
  }
  try {
    return { event: JSON.parse(req.body) };
  } catch {
    return { status: 400, reason: 'invalid JSON' };
  }
}

// Serves POST /webhooks/groq on 127.0.0.1:`port` with the peer's own `express`: a
// verified delivery of a type in `handlers` is answered 200 once `enqueue(event)`
// resolves (503 if it fails); one of another type is answered 200 unqueued.
function serveGroq({ express, secret, port, handlers, enqueue }) {
  const app = express();
  app.post('/webhooks/groq', express.raw({ type: () => true, limit: '1mb' }), async (req, res) => {
    const { event, status, reason } = verifyGroq(req, secret);
    if (!event) {
      return res.status(status).send(reason);
    }
    if (!handlers[event.type]) {
      return res.sendStatus(200);
    }
    try {
      await enqueue(event);
      return res.sendStatus(200);
    } catch (error) {
      return res.status(503).send('queue unavailable');
    }
  });
  app.listen(port, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${port}/webhooks/groq`));
}

// The clock of a worker-only process's drain, started now: `handled()` after each job,
// `report(left)` once the workers run (`left()`: how many jobs are queued or running).
// It prints `DRAINED <jobs> <ms>` once `left()` answers 0. With `expect` (DRAIN_EXPECT)
// the clock stops at the expect-th handled job, and only then is the queue counted, to
// check that nothing is left: a count every 100 ms during the drain is work the timed
// queue does for the looking. Without it, the clock stops at that answer.
function drainClock(expect) {
  const started = Date.now();
  let processed = 0;
  let handledAll = () => {};
  const all = expect > 0 ? new Promise((resolve) => { handledAll = resolve; }) : Promise.resolve();
  return {
    handled() {
      processed += 1;
      if (processed === expect) handledAll();
    },
    async report(left) {
      await all;
      const clock = expect > 0 ? Date.now() - started : null;
      const poll = setInterval(async () => {
        if (processed > 0 && (await left()) === 0) {
          console.log(`DRAINED ${processed} ${clock ?? Date.now() - started}`);
          clearInterval(poll);
        }
      }, 100);
    },
  };
}

module.exports = { verifyGroq, serveGroq, drainClock };
