// Drives keyward's Vault-compatible API with node-vault (a thin client with no KV v2 awareness:
// callers build `secret/data/...` paths themselves). Needs VAULT_ADDR and VAULT_TOKEN (root), a
// kv v2 mount `secret` and a transit mount `transit` (node-vault's transit commands name it).
// Exits non-zero on the first failed check. Works against HashiCorp Vault too.
'use strict';
const assert = require('node:assert/strict');
const crypto = require('node:crypto');

const vault = require('node-vault')({
  apiVersion: 'v1',
  endpoint: process.env.VAULT_ADDR,
  token: process.env.VAULT_TOKEN,
});

let checks = 0;
function check(cond, what) {
  assert.ok(cond, what);
  checks += 1;
}

async function rejects(promise, status, what) {
  try {
    await promise;
  } catch (e) {
    check(e.response && e.response.statusCode === status, `${what}: expected ${status}, got ${e.response && e.response.statusCode}`);
    return;
  }
  check(false, `${what}: expected an error`);
}

async function main() {
  const run = crypto.randomBytes(4).toString('hex');
  const base = `secret/data/node-${run}`;

  const w = await vault.write(`${base}/db`, { data: { user: 'app', password: 's3cret', port: 5432 } });
  check(w.data.version === 1, 'write returns version 1');
  const r = await vault.read(`${base}/db`);
  check(r.data.data.password === 's3cret' && r.data.data.port === 5432, 'read returns the value');
  check(r.data.metadata.version === 1 && r.data.metadata.deletion_time === '', 'read carries metadata');

  const w2 = await vault.write(`${base}/db`, { data: { user: 'app', password: 'rotated' }, options: { cas: 1 } });
  check(w2.data.version === 2, 'cas write returns version 2');
  await rejects(vault.write(`${base}/db`, { data: { x: 'y' }, options: { cas: 1 } }), 400, 'stale cas is 400');
  const patched = await vault.update(`${base}/db`, { data: { port: 6432 } });
  check(patched.data.version === 3, 'PATCH (merge-patch) writes version 3');
  check((await vault.read(`${base}/db`)).data.data.port === 6432, 'patched field read back');

  await vault.write(`${base}/api`, { data: { key: 'k' } });
  const list = await vault.list(`secret/metadata/node-${run}`);
  check(JSON.stringify(list.data.keys) === JSON.stringify(['api', 'db']), `LIST returns the keys: ${list.data.keys}`);

  await vault.delete(`${base}/api`);
  await rejects(vault.read(`${base}/api`), 404, 'a soft-deleted secret reads as 404');
  await vault.delete(`secret/metadata/node-${run}/api`);
  await vault.delete(`secret/metadata/node-${run}/db`);
  await rejects(vault.list(`secret/metadata/node-${run}`), 404, 'an empty list is 404');

  const key = `node-${run}`;
  await vault.write(`transit/keys/${key}`, {});
  const plaintext = Buffer.from('card 4242 4242 4242 4242').toString('base64');
  const enc = await vault.encryptData({ name: key, plaintext });
  check(enc.data.ciphertext.startsWith('vault:v1:'), 'transit encrypt returns vault:v1:...');
  const dec = await vault.decryptData({ name: key, ciphertext: enc.data.ciphertext });
  check(dec.data.plaintext === plaintext, 'transit decrypt round-trips');
  await vault.write(`transit/keys/${key}/config`, { deletion_allowed: true });
  await vault.delete(`transit/keys/${key}`);

  // AppRole: a machine logs in with a role ID and a secret ID, and gets the role's policies.
  const ar = `approle-node-${run}`;
  await vault.enableAuth({ mount_point: ar, type: 'approle', description: 'node compat' });
  const auths = await vault.auths();
  check(auths.data[`${ar}/`].type === 'approle', 'approle enabled and listed');
  await vault.addApproleRole({ mount_point: ar, role_name: 'app', policies: 'default', secret_id_num_uses: 1 });
  const roleId = (await vault.getApproleRoleId({ mount_point: ar, role_name: 'app' })).data.role_id;
  const secretId = (await vault.getApproleRoleSecret({ mount_point: ar, role_name: 'app' })).data.secret_id;
  const machine = require('node-vault')({ apiVersion: 'v1', endpoint: process.env.VAULT_ADDR });
  const login = await machine.approleLogin({ mount_point: ar, role_id: roleId, secret_id: secretId });
  check(machine.token === login.auth.client_token && login.auth.policies.includes('default'), 'approleLogin sets the token');
  check((await machine.tokenLookupSelf()).data.meta.role_name === 'app', 'the login token knows its role');
  await rejects(machine.approleLogin({ mount_point: ar, role_id: roleId, secret_id: secretId }), 400, 'a spent secret ID is refused');
  await vault.disableAuth({ mount_point: ar });
  await rejects(machine.tokenLookupSelf(), 403, 'disabling the method revokes its tokens');

  // userpass: a service account (no MFA) logs in with a password.
  const up = `userpass-node-${run}`;
  await vault.enableAuth({ mount_point: up, type: 'userpass' });
  await vault.write(`auth/${up}/users/svc`, { password: 'service password 1', token_policies: 'default', totp_required: false });
  const person = require('node-vault')({ apiVersion: 'v1', endpoint: process.env.VAULT_ADDR });
  const plogin = await person.userpassLogin({ mount_point: up, username: 'svc', password: 'service password 1' });
  check(person.token === plogin.auth.client_token && plogin.auth.metadata.username === 'svc', 'userpassLogin sets the token');
  await rejects(person.userpassLogin({ mount_point: up, username: 'svc', password: 'wrong password' }), 400, 'a wrong password is refused');
  await vault.disableAuth({ mount_point: up });

  // Token terms through node-vault's tokenCreate (its schema passes num_uses, renewable and the TTLs; not period).
  const terms = await vault.tokenCreate({ policies: ['default'], num_uses: 2, renewable: false, ttl: '30m', explicit_max_ttl: '5m' });
  vault.token = process.env.VAULT_TOKEN; // node-vault's tokenCreate switches the client to the new token
  const a = terms.auth;
  check(a.num_uses === 2 && a.renewable === false && a.lease_duration === 300,
    `tokenCreate with num_uses, renewable and explicit_max_ttl (num_uses ${a.num_uses}, renewable ${a.renewable}, lease ${a.lease_duration})`);
  const twice = require('node-vault')({ apiVersion: 'v1', endpoint: process.env.VAULT_ADDR, token: terms.auth.client_token });
  check((await twice.tokenLookupSelf()).data.num_uses === 1, 'each request takes one use');
  await twice.tokenLookupSelf();
  await rejects(twice.tokenLookupSelf(), 403, 'a used-up token is refused');

  // lookup-self shows the token the caller holds; a stale or negative CAS is Vault's 400.
  check((await vault.tokenLookupSelf()).data.id === process.env.VAULT_TOKEN, 'lookup-self shows its id');
  await rejects(vault.write(`${base}/db`, { data: { x: 'y' }, options: { cas: -1 } }), 400, 'cas -1 is refused');

  // KV version 1 (type kv without a version), then tuned to version 2 in place.
  const kv1 = `kv1-node-${run}`;
  await vault.mount({ mount_point: kv1, type: 'kv' });
  await vault.write(`${kv1}/apps/db`, { password: 'hunter2' });
  check((await vault.read(`${kv1}/apps/db`)).data.password === 'hunter2', 'kv v1 read');
  await vault.write(`sys/mounts/${kv1}/tune`, { description: 'legacy', options: { version: '2' } });
  const tune = await vault.read(`sys/mounts/${kv1}/tune`);
  check(tune.data.description === 'legacy' && tune.data.options.version === '2', 'tune reads back');
  check((await vault.read(`${kv1}/data/apps/db`)).data.data.password === 'hunter2', 'tuned to kv v2 in place');
  await vault.unmount({ mount_point: kv1 });

  // A Vault policy on several kinds of paths, and what it grants, per sys/capabilities-self.
  const pol = `node-${run}`;
  const hcl = `path "secret/data/node-${run}/*" { capabilities = ["read"] }\npath "sys/health" { capabilities = ["read"] }\n`;
  await vault.addPolicy({ name: pol, rules: hcl });
  check((await vault.getPolicy({ name: pol })).rules === hcl, 'the policy reads back as written');
  const holder = require('node-vault')({ apiVersion: 'v1', endpoint: process.env.VAULT_ADDR });
  const issued = await vault.tokenCreate({ policies: [pol] });
  vault.token = process.env.VAULT_TOKEN;
  holder.token = issued.auth.client_token;
  const caps = await holder.write('sys/capabilities-self', { paths: [`${base}/x`, 'secret/data/elsewhere'] });
  check(caps.data[`${base}/x`].join() === 'read' && caps.data['secret/data/elsewhere'].join() === 'deny', 'capabilities-self');

  // A token role: tokens within its allowed policies.
  await vault.addTokenRole({ role_name: `node-${run}`, allowed_policies: pol, orphan: true });
  const minter = require('node-vault')({ apiVersion: 'v1', endpoint: process.env.VAULT_ADDR, token: process.env.VAULT_TOKEN });
  const fromRole = await minter.tokenCreateRole({ role_name: `node-${run}` });
  check(fromRole.auth.orphan === true && fromRole.auth.policies.includes(pol), 'tokenCreateRole');
  await vault.removeTokenRole({ role_name: `node-${run}` });

  // Response wrapping: a read handed over as a one-time token.
  await vault.write(`${base}/handover`, { data: { password: 'handed-over' } });
  const wrapped = await vault.read(`${base}/handover`, { headers: { 'X-Vault-Wrap-TTL': '60' } });
  check(wrapped.data === null && wrapped.wrap_info.creation_path === `${base}/handover`, 'a wrapped read answers wrap_info');
  const unwrapped = await vault.unwrap({ token: wrapped.wrap_info.token });
  check(unwrapped.data.data.password === 'handed-over', 'unwrap returns the read');
  await rejects(vault.unwrap({ token: wrapped.wrap_info.token }), 400, 'a wrapping token unwraps once');
  const again = await vault.read(`${base}/handover`, { headers: { 'X-Vault-Wrap-TTL': '120' } });
  const looked = await vault.write('sys/wrapping/lookup', { token: again.wrap_info.token });
  check(looked.data.creation_ttl === 120 && looked.data.creation_path === `${base}/handover`, 'wrapping lookup');
  const moved = await vault.write('sys/wrapping/rewrap', { token: again.wrap_info.token });
  await rejects(vault.unwrap({ token: again.wrap_info.token }), 400, 'rewrap retires the old token');
  check((await vault.unwrap({ token: moved.wrap_info.token })).data.data.password === 'handed-over', 'rewrap keeps the response');
  const theirs = await vault.write('sys/capabilities', { token: issued.auth.client_token, paths: [`${base}/x`] });
  check(theirs.data.capabilities.join() === 'read', 'capabilities of another token');
  // Deleting a policy that does not exist succeeds, as in Vault.
  const removed = await vault.removePolicy({ name: `never-${run}` }).then(() => true, () => false);
  check(removed, 'deleting a missing policy is not an error');

  // JWT login with a token signed here (Ed25519), keys given to the method as PEM.
  const jw = `jwt-node-${run}`;
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  await vault.enableAuth({ mount_point: jw, type: 'jwt' });
  await vault.write(`auth/${jw}/config`, {
    jwt_validation_pubkeys: [publicKey.export({ type: 'spki', format: 'pem' })], bound_issuer: 'https://ci.example',
  });
  await vault.write(`auth/${jw}/role/deploy`, {
    role_type: 'jwt', user_claim: 'sub', bound_audiences: ['keyward'], bound_subject: 'repo:acme/app', token_policies: [pol],
  });
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'EdDSA', typ: 'JWT' })}.${b64({ iss: 'https://ci.example', aud: 'keyward', sub: 'repo:acme/app', exp: now + 300 })}`;
  const jwt = `${input}.${crypto.sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
  const job = require('node-vault')({ apiVersion: 'v1', endpoint: process.env.VAULT_ADDR });
  const jl = await job.jwtLogin({ mount_point: jw, role: 'deploy', jwt });
  check(job.token === jl.auth.client_token && jl.auth.policies.includes(pol), 'jwtLogin sets the token');
  await vault.disableAuth({ mount_point: jw });
  await vault.removePolicy({ name: pol });

  // Transit signing keys: keyward's signatures verify with Node's crypto, and Node's with keyward.
  const tk = `signer-${Date.now()}`;
  const message = Buffer.from('webhook body');
  for (const [type, dsa] of [['ecdsa-p256', 'der'], ['ecdsa-p384', 'ieee-p1363'], ['rsa-3072', null]]) {
    const name = `${tk}-${type}`;
    await vault.write(`transit/keys/${name}`, { type, exportable: true });
    const pem = (await vault.read(`transit/keys/${name}`)).data.keys['1'].public_key;
    const opts = dsa === 'ieee-p1363' ? { marshaling_algorithm: 'jws' } : {};
    const signed = await vault.write(`transit/sign/${name}/sha2-384`, { input: message.toString('base64'), ...opts });
    const text = signed.data.signature.split(':')[2];
    const sig = Buffer.from(text, dsa === 'ieee-p1363' ? 'base64url' : 'base64');
    const key = dsa ? { key: pem, dsaEncoding: dsa } : { key: pem, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_AUTO };
    check(crypto.verify('sha384', message, key, sig), `a ${type} signature verifies with Node's crypto`);
    const exported = (await vault.read(`transit/export/signing-key/${name}/1`)).data.keys['1'];
    const privateKey = crypto.createPrivateKey(exported);
    const theirs = dsa
      ? crypto.sign('sha384', message, { key: privateKey, dsaEncoding: dsa })
      : crypto.sign('sha384', message, { key: privateKey, padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: crypto.constants.RSA_PSS_SALTLEN_DIGEST });
    const encoded = theirs.toString(dsa === 'ieee-p1363' ? 'base64url' : 'base64');
    const checked = await vault.write(`transit/verify/${name}/sha2-384`, { input: message.toString('base64'), signature: `vault:v1:${encoded}`, ...opts });
    check(checked.data.valid === true, `a Node ${type} signature verifies in keyward`);
  }

  const bogus = require('node-vault')({ apiVersion: 'v1', endpoint: process.env.VAULT_ADDR, token: 'kw_' + 'B'.repeat(43) });
  await rejects(bogus.read(`${base}/db`), 403, 'an unknown token is 403');

  console.log(`node-vault: ${checks} checks passed against ${process.env.VAULT_ADDR}`);
}

main().catch((e) => {
  console.error(`FAILED: ${e.message}`);
  process.exit(1);
});
