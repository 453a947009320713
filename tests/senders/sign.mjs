// Deliveries signed by the providers' own Node.js libraries, one JSON object a line on
// stdout, for tests/official_libraries.rs to receive:
//   {"suite", "case", "event", "headers": {..}, "body_base64", ...}
// Usage: node sign.mjs <github|standard|stripe|shopify> [args]
// Nothing here is hookroute's: every signature comes from the library named in `signer`.
import { readFileSync } from "node:fs";
import { createHmac, randomUUID } from "node:crypto";
import { createRequire } from "node:module";
import { Webhooks } from "@octokit/webhooks";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import Stripe from "stripe";
import "@shopify/shopify-api/adapters/web-api";
import { shopifyApi, ApiVersion } from "@shopify/shopify-api";

const require = createRequire(import.meta.url);
const out = (line) => process.stdout.write(JSON.stringify(line) + "\n");
const b64 = (text) => Buffer.from(text).toString("base64");
const [suite, ...args] = process.argv.slice(2);

// Every payload of @octokit/webhooks-examples (api.github.com and every GHES), once each,
// signed by @octokit/webhooks, as `json` and as `form` (`payload=<urlencoded JSON>`).
async function github(secret) {
  const webhooks = new Webhooks({ secret });
  const seen = new Set();
  const dirs = ["api.github.com", "ghes-31", "ghes-32", "ghes-33", "ghes-34", "ghes-35"];
  for (const dir of dirs) {
    let events;
    try {
      events = require(`@octokit/webhooks-examples/${dir}/index.json`);
    } catch {
      continue;
    }
    for (const event of events) {
      for (const example of event.examples) {
        const json = JSON.stringify(example);
        if (seen.has(event.name + json)) continue;
        seen.add(event.name + json);
        const action = typeof example.action === "string" && example.action ? example.action : null;
        for (const contentType of ["application/json", "application/x-www-form-urlencoded"]) {
          const body = contentType === "application/json" ? json : new URLSearchParams({ payload: json }).toString();
          const signature = await webhooks.sign(body);
          if (!(await webhooks.verify(body, signature))) throw new Error("octokit refused its own signature");
          out({
            suite: "github",
            signer: "@octokit/webhooks",
            case: `${dir} ${event.name}${action ? "." + action : ""} ${contentType}`,
            event: event.name,
            type: action ? `${event.name}.${action}` : event.name,
            headers: {
              "content-type": contentType,
              "x-github-event": event.name,
              "x-github-delivery": randomUUID(),
              "x-hub-signature-256": signature,
              "user-agent": "GitHub-Hookshot/044aadd",
            },
            body_base64: b64(body),
          });
        }
      }
    }
  }
}

// Standard Webhooks through `standardwebhooks` and `svix`, `webhook-*` and `svix-*`
// headers, bodies with and without `data`, the secret with and without its padding.
function standard(paddedSecret) {
  const unpadded = paddedSecret.replace(/=+$/, "");
  const bodies = {
    with_data: { type: "invoice.paid", timestamp: new Date().toISOString(), data: { id: "in_1", amount: 2000 } },
    without_data: { type: "invoice.paid", timestamp: new Date().toISOString(), id: "in_1", amount: 2000 },
  };
  const signers = {
    standardwebhooks: (secret) => new StandardWebhook(secret),
    svix: (secret) => new SvixWebhook(secret),
  };
  for (const [signer, make] of Object.entries(signers)) {
    for (const [secretForm, secret] of [["padded", paddedSecret], ["unpadded", unpadded]]) {
      for (const [shape, payload] of Object.entries(bodies)) {
        for (const family of ["webhook", "svix"]) {
          const id = `msg_${randomUUID()}`;
          const now = new Date();
          const body = JSON.stringify(payload);
          const signature = make(secret).sign(id, now, body);
          const headers = {
            "content-type": "application/json",
            [`${family}-id`]: id,
            [`${family}-timestamp`]: String(Math.floor(now.getTime() / 1000)),
            [`${family}-signature`]: signature,
          };
          // The library's own verifier takes what it signed (standardwebhooks reads only
          // the `webhook-*` names).
          make(secret).verify(body, { "webhook-id": id, "webhook-timestamp": headers[`${family}-timestamp`], "webhook-signature": signature });
          out({ suite: "standard", signer, case: `${signer} ${secretForm} ${shape} ${family}-*`, type: "invoice.paid", id, headers, body_base64: b64(body) });
        }
      }
    }
  }
}

// A Stripe event of every type in hookroute's catalog, built on Stripe's published
// fixture object for its resource (stripe-fixtures.json, from Stripe's OpenAPI
// repository), and a thin event; signed by stripe-node's
// `webhooks.generateTestHeaderString` and checked by its `constructEvent` (or
// `parseEventNotification` for the thin one).
function stripe(secret, catalogPath) {
  const client = new Stripe("sk_test_hookroute");
  const fixtures = JSON.parse(readFileSync(new URL("./stripe-fixtures.json", import.meta.url), "utf8"));
  const types = readFileSync(catalogPath, "utf8").split("\n").filter((line) => line && !line.startsWith("#"));
  const created = Math.floor(Date.now() / 1000);
  const events = types.map((type) => {
    const resource = fixtures.events[type];
    if (!resource) throw new Error(`stripe-fixtures.json has no object for \`${type}\`: refresh it from Stripe's fixtures3.json`);
    return {
      id: `evt_${randomUUID().replaceAll("-", "")}`,
      object: "event",
      api_version: "2026-07-29.dahlia",
      created,
      data: { object: fixtures.resources[resource] },
      livemode: false,
      pending_webhooks: 1,
      request: { id: null, idempotency_key: null },
      type,
    };
  });
  events.push({
    id: `evt_test_${randomUUID().replaceAll("-", "")}`,
    object: "v2.core.event",
    type: "v1.billing.meter.error_report_triggered",
    livemode: false,
    created: new Date().toISOString(),
    context: null,
    related_object: { id: "mtr_test_61R9IeFvqUtaxp4nH41IeFvqUtaxpAKO", type: "billing.meter", url: "/v1/billing/meters/mtr_test_61R9IeFvqUtaxp4nH41IeFvqUtaxpAKO" },
  });
  for (const event of events) {
    const body = JSON.stringify(event, null, 2);
    const header = client.webhooks.generateTestHeaderString({ payload: body, secret });
    if (event.object === "v2.core.event") client.parseEventNotification(body, header, secret);
    else client.webhooks.constructEvent(body, header, secret);
    out({ suite: "stripe", signer: "stripe", case: event.type, type: event.type, id: event.id, thin: event.object === "v2.core.event", headers: { "content-type": "application/json; charset=utf-8", "stripe-signature": header }, body_base64: b64(body) });
  }
}

// Shopify's documented HMAC (base64 of HMAC-SHA256 of the raw body), under both header
// families, each accepted by @shopify/shopify-api's `webhooks.validate` first.
async function shopify(secret) {
  const api = shopifyApi({ apiKey: "hookroute", apiSecretKey: secret, scopes: [], hostName: "localhost", apiVersion: ApiVersion.July25, isEmbeddedApp: false, logger: { level: 0 } });
  // Two orders: one body twice would be a duplicate (Shopify signs only the body).
  const bodies = {
    "X-Shopify": JSON.stringify({ id: 820982911946154508, email: "jon@example.com", total_price: "403.00" }),
    "Shopify": JSON.stringify({ id: 820982911946154509, email: "jane@example.com", total_price: "12.00" }),
  };
  const hmacs = Object.fromEntries(Object.entries(bodies).map(([family, body]) => [family, createHmac("sha256", secret).update(body).digest("base64")]));
  const families = {
    "X-Shopify": { "x-shopify-hmac-sha256": hmacs["X-Shopify"], "x-shopify-topic": "orders/create", "x-shopify-shop-domain": "shop.myshopify.com", "x-shopify-api-version": "2025-07", "x-shopify-webhook-id": randomUUID(), "x-shopify-event-id": randomUUID(), "x-shopify-triggered-at": new Date().toISOString() },
    "Shopify": { "shopify-hmac-sha256": hmacs["Shopify"], "shopify-topic": "orders/create", "shopify-shop-domain": "shop.myshopify.com", "shopify-api-version": "2025-07", "shopify-webhook-id": randomUUID(), "shopify-event-id": randomUUID(), "shopify-triggered-at": new Date().toISOString() },
  };
  for (const [family, headers] of Object.entries(families)) {
    const body = bodies[family];
    const rawRequest = new Request("https://localhost/webhooks", { method: "POST", headers: { ...headers, "content-type": "application/json" }, body });
    const check = await api.webhooks.validate({ rawBody: body, rawRequest });
    if (!check.valid) throw new Error(`@shopify/shopify-api refused the ${family} delivery: ${JSON.stringify(check)}`);
    out({ suite: "shopify", signer: "@shopify/shopify-api (validated)", case: `${family}-* headers`, type: "orders/create", id: headers["x-shopify-event-id"] ?? headers["shopify-event-id"], headers: { ...headers, "content-type": "application/json" }, body_base64: b64(body) });
  }
}

const suites = { github, standard, stripe, shopify };
if (!suites[suite]) {
  console.error(`usage: node sign.mjs <${Object.keys(suites).join("|")}> <secret> [catalog]`);
  process.exit(2);
}
await suites[suite](...args);
