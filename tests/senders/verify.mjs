// The other direction: deliveries hookroute signed (`hookroute sign --json`), checked by
// the providers' own Node.js verifiers. Reads one JSON object a line on stdin,
//   {"provider", "secret", "headers": {..}, "body"}
// and prints one a line: {"provider", "library", "valid", "error"}.
import { createInterface } from "node:readline";
import { Webhooks } from "@octokit/webhooks";
import { Webhook as StandardWebhook } from "standardwebhooks";
import { Webhook as SvixWebhook } from "svix";
import Stripe from "stripe";
import "@shopify/shopify-api/adapters/web-api";
import { shopifyApi, ApiVersion } from "@shopify/shopify-api";

const verifiers = {
  standard: [
    ["standardwebhooks", (d) => new StandardWebhook(d.secret).verify(d.body, d.headers)],
    ["svix", (d) => new SvixWebhook(d.secret).verify(d.body, d.headers)],
  ],
  stripe: [
    [
      "stripe",
      (d) => {
        const client = new Stripe("sk_test_hookroute");
        // A thin event goes through the method stripe-node has for them.
        if (JSON.parse(d.body).object === "v2.core.event") client.parseEventNotification(d.body, d.headers["stripe-signature"], d.secret);
        else client.webhooks.constructEvent(d.body, d.headers["stripe-signature"], d.secret);
      },
    ],
  ],
  github: [
    [
      "@octokit/webhooks",
      async (d) => {
        if (!(await new Webhooks({ secret: d.secret }).verify(d.body, d.headers["x-hub-signature-256"]))) throw new Error("signature does not match");
      },
    ],
  ],
  shopify: [
    [
      "@shopify/shopify-api",
      async (d) => {
        const api = shopifyApi({ apiKey: "hookroute", apiSecretKey: d.secret, scopes: [], hostName: "localhost", apiVersion: ApiVersion.July25, isEmbeddedApp: false, logger: { level: 0 } });
        const rawRequest = new Request("https://localhost/webhooks", { method: "POST", headers: d.headers, body: d.body });
        const check = await api.webhooks.validate({ rawBody: d.body, rawRequest });
        if (!check.valid) throw new Error(JSON.stringify(check));
      },
    ],
  ],
};

for await (const line of createInterface({ input: process.stdin })) {
  if (!line.trim()) continue;
  const delivery = JSON.parse(line);
  for (const [library, verify] of verifiers[delivery.provider] ?? []) {
    try {
      await verify(delivery);
      console.log(JSON.stringify({ provider: delivery.provider, library, valid: true }));
    } catch (error) {
      console.log(JSON.stringify({ provider: delivery.provider, library, valid: false, error: String(error.message ?? error) }));
    }
  }
}
