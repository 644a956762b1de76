// Helpers shared by the UI's browser tests and its screenshot script: the API as root, TOTP.
"use strict";
const crypto = require("node:crypto");
const { chromium } = require("playwright-core");

const ADDR = process.env.KEYWARD_ADDR;
const ROOT = process.env.KEYWARD_TOKEN;

async function api(method, path, body, token = ROOT) {
  const resp = await fetch(`${ADDR}${path}`, {
    method,
    headers: { "X-Vault-Token": token, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await resp.text();
  if (resp.status >= 400) throw new Error(`${method} ${path}: ${resp.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

function base32(s) {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  let bits = "";
  for (const c of s.replace(/=+$/, "")) bits += alphabet.indexOf(c).toString(2).padStart(5, "0");
  const out = [];
  for (let i = 0; i + 8 <= bits.length; i += 8) out.push(parseInt(bits.slice(i, i + 8), 2));
  return Buffer.from(out);
}

// RFC 6238 TOTP (SHA-1, 6 digits, 30 s), from the enrolment key the page shows.
function totp(secret, unixSecs) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSecs / 30)));
  const mac = crypto.createHmac("sha1", base32(secret)).update(counter).digest();
  const off = mac[mac.length - 1] & 0xf;
  const n = (mac.readUInt32BE(off) & 0x7fffffff) % 1000000;
  return String(n).padStart(6, "0");
}

// Debian's Chromium (CHROMIUM); --no-sandbox only when running as root, where it will not start
// otherwise.
function launch() {
  const args = process.getuid && process.getuid() === 0 ? ["--no-sandbox"] : [];
  return chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args });
}

module.exports = { ADDR, ROOT, api, totp, launch };
