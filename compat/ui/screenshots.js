// Writes a screenshot of each page of keyward's web UI under docs/ui/ (run by
// scripts/ui-screenshots against a fresh `keyward server --dev` holding demo data only).
"use strict";
const path = require("node:path");
const { ADDR, ROOT, api, launch } = require("./lib");

const OUT = process.env.OUT || path.join(__dirname, "..", "..", "docs", "ui");

async function demoData() {
  await api("POST", "/v1/sys/auth/userpass", { type: "userpass" });
  await api("PUT", "/api/v1/policies/team", {
    document: '[[rules]]\npath = "secret/*"\ncapabilities = ["list", "read", "create", "update", "patch"]\n',
  });
  await api("POST", "/v1/auth/userpass/users/alice", { password: "demo password only", token_policies: "team" });
  await api("POST", "/api/v1/mounts", { path: "careflex", kind: "kv", rotate_after: "1s" });
  const prod = {
    STRIPE_SECRET_KEY: "sk_live_demo_only_51HxYzAbCdEf1234",
    DATABASE_URL: "postgres://app:demo-only@db.internal/careflex",
    SECRET_KEY_BASE: "demo-only-3c1f9e0b7a6d5c4b3a2f1e0d9c8b7a6f",
    SENDGRID_API_KEY: "SG.demo-only.abcdefghijklmnop9876",
  };
  await api("PATCH", "/api/v1/mounts/careflex/secrets/production", { set: prod });
  await api("PATCH", "/api/v1/mounts/careflex/secrets/production", { set: { SENDGRID_API_KEY: "SG.demo-only.rotated5555" } });
  await api("PATCH", "/api/v1/mounts/careflex/secrets/staging", {
    set: { STRIPE_SECRET_KEY: "sk_test_demo_only_4eC39HqLyjWDarjt", DATABASE_URL: "postgres://app:demo@staging/careflex", FEATURE_FLAGS: "beta" },
  });
  await api("POST", "/api/v1/tokens", { policies: ["team"], display_name: "ci-deploy", ttl: "24h" });
  await api("POST", "/api/v1/mounts/careflex/keys/rotate");
}

async function main() {
  await demoData();
  await new Promise((r) => setTimeout(r, 1500)); // the demo mount's 1 s rotation limit passes
  const browser = await launch();
  const context = await browser.newContext({ baseURL: ADDR, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  page.on("dialog", (d) => d.accept());
  const shot = async (name) => {
    await page.screenshot({ path: path.join(OUT, `${name}.png`), fullPage: true });
    console.log(`docs/ui/${name}.png`);
  };
  await page.goto("/ui/login");
  await shot("login");
  await page.fill('input[name="token"]', ROOT);
  await page.click('button:has-text("Log in with token")');
  await page.waitForURL(/\/ui$/);
  await shot("projects");
  await page.goto("/ui/p/careflex");
  await shot("project");
  await page.goto("/ui/env/careflex/production");
  await page.click('tr[data-name="DATABASE_URL"] button.reveal');
  await page.waitForSelector('tr[data-name="DATABASE_URL"] .secret.value');
  await shot("environment");
  await page.fill('textarea[name="text"]', "STRIPE_SECRET_KEY=sk_live_demo_only_rotated\nNEW_RELIC_KEY=demo-only\n");
  await page.click('button:has-text("Preview")');
  await page.waitForSelector("#preview");
  await shot("import-preview");
  const pages = [
    ["history", "/ui/history/careflex/production"],
    ["diff", "/ui/diff/careflex?a=production&b=staging"],
    ["stale", "/ui/stale"],
    ["tokens", "/ui/tokens"],
    ["policies", "/ui/policies"],
    ["policy", "/ui/policies/team"],
    ["access", "/ui/access"],
    ["audit", "/ui/audit?verify=1"],
    ["keys", "/ui/keys?doctor=1"],
  ];
  for (const [name, url] of pages) {
    await page.goto(url);
    await shot(name);
  }
  // The enrolment page of a first password login (a demo user's demo seed).
  const enrol = await browser.newContext({ baseURL: ADDR, viewport: { width: 1280, height: 800 } });
  const p2 = await enrol.newPage();
  await p2.goto("/ui/login");
  await p2.fill('input[name="username"]', "alice");
  await p2.fill('input[name="password"]', "demo password only");
  await p2.click('form[action="/ui/session"] button[type="submit"]');
  await p2.waitForURL("**/ui/enrol");
  await p2.click('button:has-text("Show my QR code")');
  await p2.waitForSelector(".qr svg");
  await p2.screenshot({ path: path.join(OUT, "enrol.png"), fullPage: true });
  console.log("docs/ui/enrol.png");
  await browser.close();
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
