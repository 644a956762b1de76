// End-to-end tests of keyward's web UI in a real browser: Debian's Chromium driven by
// playwright-core (no browser download). Run by scripts/ui-test against a live server:
//   KEYWARD_ADDR=http://127.0.0.1:PORT KEYWARD_TOKEN=<root token> CHROMIUM=/usr/bin/chromium node ui_e2e.js
// Each check prints one line; the first failure stops the run with a non-zero exit.
"use strict";
const assert = require("node:assert/strict");
const { ADDR, api, totp, launch } = require("./lib");

const CANARY = "sk_live_e2e_canary_4f1c9a7d2b6e8f0a1234";
let checks = 0;

function ok(what) {
  checks += 1;
  console.log(`ok ${checks} - ${what}`);
}

async function auditCount(operation, status) {
  const page = await api("GET", `/api/v1/audit?operation=${operation}&limit=1000`);
  return page.entries.filter((e) => status === undefined || e.status === status).length;
}

async function setup() {
  await api("POST", "/v1/sys/auth/userpass", { type: "userpass" });
  const team = '[[rules]]\npath = "secret/*"\ncapabilities = ["list", "read", "create", "update", "patch"]\n';
  await api("PUT", "/api/v1/policies/team", { document: team });
  await api("PUT", "/api/v1/policies/viewer", { document: '[[rules]]\npath = "secret/*"\ncapabilities = ["list"]\n' });
  await api("POST", "/v1/auth/userpass/users/alice", { password: "correct horse battery", token_policies: "team" });
  await api("POST", "/v1/auth/userpass/users/victor", {
    password: "victor's long password",
    token_policies: "viewer",
    totp_required: false,
  });
  await api("PATCH", "/api/v1/mounts/secret/secrets/production", {
    set: { STRIPE_KEY: CANARY, DATABASE_URL: "postgres://app:pw-e2e-prod@db/app", SHARED: "same" },
  });
  await api("PATCH", "/api/v1/mounts/secret/secrets/staging", {
    set: { STRIPE_KEY: "sk_test_e2e_staging_99887766", ONLY_STAGING: "x1", SHARED: "same" },
  });
}

async function newContext(browser) {
  const context = await browser.newContext({ baseURL: ADDR });
  const page = await context.newPage();
  const violations = [];
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) violations.push(m.text());
  });
  page.on("pageerror", (e) => violations.push(String(e)));
  page.on("dialog", (d) => d.accept());
  return { context, page, violations };
}

async function passwordLogin(page, user, password, code) {
  await page.goto("/ui/login");
  await page.fill('input[name="username"]', user);
  await page.fill('input[name="password"]', password);
  if (code) await page.fill('input[name="code"]', code);
  await page.click('form[action="/ui/session"] button[type="submit"]');
}

async function main() {
  await setup();
  const browser = await launch();
  try {
    const alice = await newContext(browser);
    const { page } = alice;
    await page.clock.install();

    // The login page, under its policy.
    const login = await page.goto("/ui/login");
    const csp = login.headers()["content-security-policy"];
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(login.headers()["cache-control"], "no-store");
    ok("the login page carries a strict CSP and no-store");

    // First login: the password leads to enrolment with a QR code.
    await passwordLogin(page, "alice", "correct horse battery");
    await page.waitForURL("**/ui/enrol");
    await page.click('button:has-text("Show my QR code")');
    await page.waitForSelector(".qr svg");
    const secret = (await page.textContent("#totp-secret")).trim();
    assert.match(secret, /^[A-Z2-7]+$/);
    const now = Math.floor(Date.now() / 1000);
    await page.fill('input[name="code"]', totp(secret, now));
    await page.click('button:has-text("Confirm")');
    await page.waitForURL("**/ui/login?enrolled=1");
    ok("TOTP enrolment: QR code shown, confirmed with a code from its key");

    // Then password and code (the next step's: a step is good once).
    await passwordLogin(page, "alice", "correct horse battery", totp(secret, now + 30));
    await page.waitForURL(/\/ui$/);
    const cookies = await alice.context.cookies();
    const session = cookies.find((c) => c.name === "kw_session");
    assert.ok(session && session.httpOnly && session.sameSite === "Strict", JSON.stringify(session));
    ok("login with password and TOTP: an HttpOnly, SameSite=Strict session cookie");

    // The environment: masks only, nothing in the DOM.
    await page.click('a:has-text("secret")');
    await page.click('a:has-text("production")');
    await page.waitForSelector("table#values");
    assert.ok(!(await page.content()).includes(CANARY), "plaintext in the DOM before a reveal");
    const masked = (await page.textContent('tr[data-name="STRIPE_KEY"] .secret')).trim();
    assert.ok(!masked.includes("e2e_canary"), masked);
    ok(`the environment shows masks (${masked}) and no plaintext in the DOM`);

    // Reveal: the value for 30 seconds, a copy button, one audit entry.
    const before = await auditCount("ui.secrets.reveal", 200);
    await page.click('tr[data-name="STRIPE_KEY"] button.reveal');
    await page.waitForSelector('tr[data-name="STRIPE_KEY"] .secret.value');
    assert.equal((await page.textContent('tr[data-name="STRIPE_KEY"] .secret')).trim(), CANARY);
    assert.ok(await page.isVisible('tr[data-name="STRIPE_KEY"] button.copy'));
    assert.equal(await auditCount("ui.secrets.reveal", 200), before + 1);
    ok("reveal shows the value with a copy button and makes exactly one audit entry");
    await page.clock.fastForward(31000);
    await page.waitForSelector('tr[data-name="STRIPE_KEY"] .secret.mask');
    assert.ok(!(await page.content()).includes(CANARY), "the value stayed in the DOM");
    ok("after 30 seconds the value is masked again and gone from the DOM");
    assert.deepEqual(alice.violations, []);
    ok("the pages work under the CSP (no violation, no script error)");

    // A .env import, previewed before it is committed.
    await page.goto("/ui/env/secret/staging");
    await page.fill('textarea[name="text"]', "STRIPE_KEY=sk_test_e2e_rotated_11223344\nNEW_ONE=fresh\nSHARED=same\n");
    await page.check('input[name="replace"]');
    await page.click('button:has-text("Preview")');
    await page.waitForSelector("#preview");
    const preview = await page.textContent("#preview");
    assert.match(preview, /Added \(1\)[\s\S]*NEW_ONE/);
    assert.match(preview, /Removed \(1\)[\s\S]*ONLY_STAGING/);
    assert.match(preview, /Changed \(1\)[\s\S]*STRIPE_KEY/);
    let staging = await api("GET", "/api/v1/mounts/secret/secrets/staging?reveal=true");
    assert.equal(staging.fields.length, 3, "the preview wrote something");
    await page.click('button:has-text("Commit the import")');
    await page.waitForSelector(".notice");
    staging = await api("GET", "/api/v1/mounts/secret/secrets/staging?reveal=true");
    const names = staging.fields.map((f) => f.name).sort();
    assert.deepEqual(names, ["NEW_ONE", "SHARED", "STRIPE_KEY"]);
    ok("a .env import shows added, removed and changed names, and writes only on commit");

    // History and rollback.
    await page.click('a:has-text("history")');
    await page.waitForSelector("table#history");
    await page.click('tr[data-version="1"] button:has-text("Roll back")');
    await page.waitForSelector(".notice");
    assert.match(await page.textContent(".notice"), /Rolled back to version 1/);
    staging = await api("GET", "/api/v1/mounts/secret/secrets/staging?reveal=true");
    assert.ok(staging.fields.some((f) => f.name === "ONLY_STAGING"));
    ok("rollback from the history writes a version equal to the old one");

    // The diff of two environments: names only.
    await page.goto("/ui/p/secret");
    await page.selectOption('select[name="a"]', "production");
    await page.selectOption('select[name="b"]', "staging");
    await page.click('button:has-text("Compare")');
    await page.waitForSelector("#diff");
    const diff = await page.textContent("#diff");
    assert.match(diff, /Only in production \(1\)[\s\S]*DATABASE_URL/);
    assert.match(diff, /Only in staging \(1\)[\s\S]*ONLY_STAGING/);
    assert.match(diff, /Values differ \(1\)[\s\S]*STRIPE_KEY/);
    assert.ok(!(await page.content()).includes(CANARY));
    ok("the diff lists missing and differing names, never a value");

    // CSRF: a same-origin POST without the token is refused; so is a cross-site one.
    await page.goto("/ui/env/secret/production");
    const noToken = await page.evaluate(async () => {
      const r = await fetch("/ui/set/secret/production", {
        method: "POST",
        headers: { "Content-Type": "application/x-www-form-urlencoded" },
        body: "name=INJECTED&value=x",
      });
      return r.status;
    });
    assert.equal(noToken, 403);
    const csrf = await page.getAttribute('meta[name="csrf-token"]', "content");
    const cross = await alice.context.request.post("/ui/set/secret/production", {
      form: { name: "INJECTED", value: "x", csrf },
      headers: { Origin: "https://evil.example", "Sec-Fetch-Site": "cross-site" },
      maxRedirects: 0,
    });
    assert.equal(cross.status(), 403);
    const prod = await api("GET", "/api/v1/mounts/secret/secrets/production");
    assert.ok(!prod.fields.some((f) => f.name === "INJECTED"), "a refused change was written");
    ok("a POST without the CSRF token, and a cross-site POST with it, are refused and change nothing");

    // Logout ends the session for good.
    const oldCookie = (await alice.context.cookies()).find((c) => c.name === "kw_session").value;
    await page.click('button:has-text("Log out")');
    await page.waitForURL("**/ui/login?out=1");
    await page.goto("/ui");
    assert.match(page.url(), /\/ui\/login\?expired=1$/);
    const replay = await fetch(`${ADDR}/ui`, { headers: { Cookie: `kw_session=${oldCookie}` }, redirect: "manual" });
    assert.equal(replay.status, 303);
    ok("logout revokes the session: the old cookie leads to the login page");
    await alice.context.close();

    // A user without `read`: no reveal button, and a forged reveal is refused.
    const victor = await newContext(browser);
    await passwordLogin(victor.page, "victor", "victor's long password");
    await victor.page.waitForURL(/\/ui$/);
    await victor.page.goto("/ui/env/secret/production");
    await victor.page.waitForSelector("table#values");
    assert.equal(await victor.page.locator("button.reveal").count(), 0);
    const forged = await victor.page.evaluate(async () => {
      const token = document.querySelector('meta[name="csrf-token"]').content;
      const r = await fetch("/ui/api/reveal/secret/production", {
        method: "POST",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": token },
        body: JSON.stringify({ field: "STRIPE_KEY" }),
      });
      return { status: r.status, body: await r.text() };
    });
    assert.equal(forged.status, 403);
    assert.ok(!forged.body.includes(CANARY));
    ok("a user without read sees no reveal button, and a forged reveal is refused");
    assert.deepEqual(victor.violations, []);
    await victor.context.close();
  } finally {
    await browser.close();
  }
  console.log(`ui e2e: ${checks} checks passed`);
}

main().catch((e) => {
  console.error(`not ok - ${e.stack || e}`);
  process.exit(1);
});
