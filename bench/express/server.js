// The original design, as an Express.js server: the end-to-end benchmark's Node
// baseline (bench/e2e). Groq's scheme: hex HMAC-SHA256 of `${timestamp}.${body}`,
// crypto.timingSafeEqual, a 300 s age check, JSON.parse, a map of three async no-op
// handlers, and an in-process Map of processed ids, or with REDIS_URL set, ioredis
// EXISTS before the handler and SET EX after it.
//
//   GROQ_WEBHOOK_SECRET=... PORT=3000 [REDIS_URL=redis://127.0.0.1:6379/] node server.js

'use strict';

const crypto = require('node:crypto');
const express = require('express');

const SECRET = process.env.GROQ_WEBHOOK_SECRET;
const PORT = Number(process.env.PORT || 3000);
const TOLERANCE_SECONDS = 300;
const TTL_SECONDS = 7 * 24 * 3600;

if (!SECRET) {
  console.error('error: set GROQ_WEBHOOK_SECRET');
  process.exit(1);
}

const handlers = {
  'resource.created': async (data) => {},
  'resource.updated': async (data) => {},
  'resource.deleted': async (data) => {},
};

// Idempotency: an in-process Map, or Redis when REDIS_URL is set.
let seen;
if (process.env.REDIS_URL) {
  const Redis = require('ioredis');
  const redis = new Redis(process.env.REDIS_URL);
  seen = {
    has: async (id) => (await redis.exists(`groq:event:${id}`)) === 1,
    add: async (id) => redis.set(`groq:event:${id}`, '1', 'EX', TTL_SECONDS),
  };
} else {
  const processed = new Map();
  seen = {
    has: async (id) => processed.has(id),
    add: async (id) => processed.set(id, Date.now()),
  };
}

const app = express();

app.post('/webhooks/groq', express.raw({ type: 'application/json' }), async (req, res) => {
  const signature = req.get('x-groq-signature');
  const timestamp = req.get('x-groq-timestamp');
  if (!signature || !timestamp || !Buffer.isBuffer(req.body)) {
    return res.status(401).send('missing signature');
  }
  const sent = Number(timestamp);
  if (!Number.isInteger(sent) || Math.abs(Date.now() / 1000 - sent) > TOLERANCE_SECONDS) {
    return res.status(401).send('stale timestamp');
  }
  const expected = crypto.createHmac('sha256', SECRET).update(`${timestamp}.${req.body}`).digest('hex');
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !crypto.timingSafeEqual(given, Buffer.from(expected))) {
    return res.status(401).send('bad signature');
  }
  let event;
  try {
    event = JSON.parse(req.body);
  } catch {
    return res.status(400).send('invalid JSON');
  }
  try {
    if (await seen.has(event.id)) {
      return res.sendStatus(200);
    }
    const handler = handlers[event.type];
    if (handler) {
      await handler(event.data);
    }
    await seen.add(event.id);
    return res.sendStatus(200);
  } catch (error) {
    return res.status(500).send('handler failed');
  }
});

app.listen(PORT, '127.0.0.1', () => console.log(`listening on http://127.0.0.1:${PORT}/webhooks/groq`));
