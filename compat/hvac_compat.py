#!/usr/bin/env python3
"""Drives keyward's Vault-compatible API through hvac's own methods.

Usage: VAULT_ADDR=http://127.0.0.1:8200 VAULT_TOKEN=<root token> python3 compat/hvac_compat.py

The same assertions hold against HashiCorp Vault itself (`vault server -dev`, then set
COMPAT_TARGET=vault): checks that only make sense for keyward are skipped there. Every run uses
fresh mount names, so it can run twice against one server. Exits non-zero on the first failure.
"""
import base64
import os
import sys
import time
import uuid
import warnings

import hvac
import jwt as pyjwt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hvac import exceptions as ex

warnings.simplefilter("ignore", DeprecationWarning)

ADDR = os.environ["VAULT_ADDR"]
TARGET = os.environ.get("COMPAT_TARGET", "keyward")
KEYWARD = TARGET == "keyward"
RUN = uuid.uuid4().hex[:8]
KV = f"kv{RUN}"
TR = f"tr{RUN}"
checks = 0


def check(cond, what):
    global checks
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    checks += 1


def raises(exc, what, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc:
        check(True, what)
        return
    except Exception as e:  # noqa: BLE001 - report the wrong exception type
        check(False, f"{what}: expected {exc.__name__}, got {type(e).__name__}: {e}")
    check(False, f"{what}: expected {exc.__name__}, nothing was raised")


def b64(s):
    return base64.b64encode(s.encode()).decode()


def unb64(s):
    return base64.b64decode(s).decode()


root = hvac.Client(url=ADDR, token=os.environ["VAULT_TOKEN"])
kv = root.secrets.kv.v2
tr = root.secrets.transit

# --- sys -------------------------------------------------------------------------------------
check(root.is_authenticated(), "root token authenticates (lookup-self)")
health = root.sys.read_health_status(method="GET")
check(health["initialized"] and not health["sealed"], "health: initialized, unsealed")
check(root.sys.read_health_status(method="HEAD").status_code == 200, "health HEAD: 200")
check(root.sys.read_health_status(method="GET", active_code=299).status_code == 299, "health honours activecode")
check(not root.sys.read_seal_status()["sealed"], "seal-status: not sealed")
check(root.sys.is_initialized(), "sys/init: initialized")
root.sys.enable_secrets_engine("kv", path=KV, options={"version": "2"})
root.sys.enable_secrets_engine("transit", path=TR)
mounts = root.sys.list_mounted_secrets_engines()["data"]
check(mounts[f"{KV}/"]["type"] == "kv" and mounts[f"{KV}/"]["options"]["version"] == "2", "kv mount listed as version 2")
check(mounts[f"{TR}/"]["type"] == "transit", "transit mount listed")
check(root.sys.retrieve_mount_option(KV, "version") == "2", "mount option version is the string \"2\"")
ui = root.adapter.get(f"/v1/sys/internal/ui/mounts/{KV}/some/deep/path")["data"]
check(ui["path"] == f"{KV}/" and ui["options"]["version"] == "2", "internal/ui/mounts resolves a sub-path to its kv mount")
raises(ex.InvalidRequest, "enabling a mount twice is refused", root.sys.enable_secrets_engine, "kv", path=KV, options={"version": "2"})

# --- KV v2: write, read, any JSON ------------------------------------------------------------
r = kv.create_or_update_secret("app/db", {"user": "app", "password": "p1"}, mount_point=KV)
check(r["data"]["version"] == 1 and r["data"]["deletion_time"] == "" and r["data"]["destroyed"] is False, "first write is version 1")
for field in ("request_id", "lease_id", "renewable", "lease_duration", "wrap_info", "warnings", "auth"):
    check(field in r, f"response envelope carries {field}")
r = kv.read_secret_version("app/db", mount_point=KV, raise_on_deleted_version=True)
check(r["data"]["data"] == {"user": "app", "password": "p1"}, "read returns the written map")
check(r["data"]["metadata"]["version"] == 1 and r["data"]["metadata"]["created_time"].endswith("Z"), "read carries metadata")
doc = {"n": 42, "f": 1.5, "list": [1, "two", {"three": 3}], "obj": {"nested": True}, "none": None, "s": "x"}
kv.create_or_update_secret("app/json", doc, mount_point=KV)
check(kv.read_secret_version("app/json", mount_point=KV, raise_on_deleted_version=True)["data"]["data"] == doc, "any JSON value round-trips")

# --- check-and-set ---------------------------------------------------------------------------
r = kv.create_or_update_secret("app/db", {"user": "app", "password": "p2"}, cas=1, mount_point=KV)
check(r["data"]["version"] == 2, "cas=current writes version 2")
raises(ex.InvalidRequest, "stale cas is 400", kv.create_or_update_secret, "app/db", {"x": "y"}, cas=1, mount_point=KV)
raises(ex.InvalidRequest, "cas=0 on an existing path is 400", kv.create_or_update_secret, "app/db", {"x": "y"}, cas=0, mount_point=KV)
check(kv.create_or_update_secret("app/new", {"a": "b"}, cas=0, mount_point=KV)["data"]["version"] == 1, "cas=0 creates")

# --- patch: hvac's read-merge-write, and PATCH with merge-patch+json -------------------------
r = kv.patch("app/db", {"password": "p3"}, mount_point=KV)
check(r["data"]["version"] == 3, "hvac patch writes version 3")
check(kv.read_secret_version("app/db", mount_point=KV, raise_on_deleted_version=True)["data"]["data"] == {"user": "app", "password": "p3"}, "patch kept the other field")
root.adapter.request("PATCH", f"/v1/{KV}/data/app/db", json={"data": {"extra": "e", "user": None}}, headers={"Content-Type": "application/merge-patch+json"})
r = kv.read_secret_version("app/db", mount_point=KV, raise_on_deleted_version=True)["data"]
check(r["data"] == {"password": "p3", "extra": "e"} and r["metadata"]["version"] == 4, "merge patch: null removes, new key added, version 4")
check(kv.read_secret_version("app/db", version=1, mount_point=KV, raise_on_deleted_version=True)["data"]["data"]["password"] == "p1", "old versions stay readable")
raises(ex.InvalidPath, "patching a missing path is 404", kv.patch, "app/missing", {"a": "b"}, mount_point=KV)

# --- soft delete, undelete, destroy ----------------------------------------------------------
kv.delete_latest_version_of_secret("app/db", mount_point=KV)
raises(ex.InvalidPath, "reading a soft-deleted version is 404", kv.read_secret_version, "app/db", mount_point=KV, raise_on_deleted_version=True)
r = kv.read_secret_version("app/db", mount_point=KV, raise_on_deleted_version=False)
check(r["data"]["data"] is None and r["data"]["metadata"]["deletion_time"] != "", "the 404 still carries deletion_time")
kv.undelete_secret_versions("app/db", [4], mount_point=KV)
check(kv.read_secret_version("app/db", mount_point=KV, raise_on_deleted_version=True)["data"]["data"]["extra"] == "e", "undelete restores")
kv.delete_secret_versions("app/db", [1, 2, 99], mount_point=KV)
raises(ex.InvalidPath, "deleted version 1 is 404", kv.read_secret_version, "app/db", version=1, mount_point=KV, raise_on_deleted_version=True)
kv.destroy_secret_versions("app/db", [1], mount_point=KV)
r = kv.read_secret_version("app/db", version=1, mount_point=KV, raise_on_deleted_version=False)
check(r["data"]["metadata"]["destroyed"] is True, "destroyed version reports destroyed")
kv.undelete_secret_versions("app/db", [1, 2], mount_point=KV)
check(kv.read_secret_version("app/db", version=2, mount_point=KV, raise_on_deleted_version=True)["data"]["data"]["password"] == "p2", "undelete of v2 works")
raises(ex.InvalidPath, "a destroyed version cannot be undeleted", kv.read_secret_version, "app/db", version=1, mount_point=KV, raise_on_deleted_version=True)

# --- metadata --------------------------------------------------------------------------------
kv.update_metadata("app/db", max_versions=3, custom_metadata={"owner": "team-a"}, mount_point=KV)
m = kv.read_secret_metadata("app/db", mount_point=KV)["data"]
check(m["max_versions"] == 3 and m["custom_metadata"] == {"owner": "team-a"} and m["current_version"] == 4, "metadata written and read")
check(m["versions"]["1"]["destroyed"] is True and m["delete_version_after"] == "0s", "metadata lists versions")
kv.create_or_update_secret("app/db", {"v": "5"}, mount_point=KV)
kv.create_or_update_secret("app/db", {"v": "6"}, mount_point=KV)
m = kv.read_secret_metadata("app/db", mount_point=KV)["data"]
check(sorted(m["versions"], key=int) == ["4", "5", "6"] and m["oldest_version"] == 4, "max_versions prunes the oldest")
check(m["custom_metadata"] == {"owner": "team-a"}, "custom metadata survives writes")
root.adapter.request("PATCH", f"/v1/{KV}/metadata/app/db", json={"custom_metadata": {"owner": None, "tier": "1"}}, headers={"Content-Type": "application/merge-patch+json"})
check(kv.read_secret_metadata("app/db", mount_point=KV)["data"]["custom_metadata"] == {"tier": "1"}, "metadata merge patch")
kv.update_metadata("app/cas", cas_required=True, mount_point=KV)
raises(ex.InvalidRequest, "cas_required refuses a write without cas", kv.create_or_update_secret, "app/cas", {"a": "b"}, mount_point=KV)
check(kv.create_or_update_secret("app/cas", {"a": "b"}, cas=0, mount_point=KV)["data"]["version"] == 1, "cas_required with cas=0 creates")

# --- list ------------------------------------------------------------------------------------
kv.create_or_update_secret("app/nested/deep", {"k": "v"}, mount_point=KV)
keys = kv.list_secrets("app", mount_point=KV)["data"]["keys"]
check(keys == ["cas", "db", "json", "nested/", "new"], f"list shows children and folders: {keys}")
check(kv.list_secrets("", mount_point=KV)["data"]["keys"] == ["app/"], "list at the root")
check(root.adapter.get(f"/v1/{KV}/metadata/app", params={"list": "true"})["data"]["keys"] == keys, "GET ?list=true equals LIST")
raises(ex.InvalidPath, "an empty list is 404", kv.list_secrets, "nothing-here", mount_point=KV)

# --- subkeys, engine config, delete all ------------------------------------------------------
sk = root.adapter.get(f"/v1/{KV}/subkeys/app/json")["data"]["subkeys"]
check(sk["obj"] == {"nested": None} and sk["n"] is None, "subkeys hide values")
kv.configure(max_versions=5, mount_point=KV)
c = kv.read_configuration(mount_point=KV)["data"]
check(c["max_versions"] == 5 and c["cas_required"] is False and c["delete_version_after"] == "0s", "engine config round-trips")
kv.delete_metadata_and_all_versions("app/new", mount_point=KV)
raises(ex.InvalidPath, "deleted metadata is gone", kv.read_secret_metadata, "app/new", mount_point=KV)

# --- transit ---------------------------------------------------------------------------------
tr.create_key("orders", mount_point=TR)
k = tr.read_key("orders", mount_point=TR)["data"]
check(k["type"] == "aes256-gcm96" and k["latest_version"] == 1 and k["min_decryption_version"] == 1, "transit key created")
check(tr.list_keys(mount_point=TR)["data"]["keys"] == ["orders"], "transit keys listed")
ct = tr.encrypt_data("orders", b64("card 4242"), mount_point=TR)["data"]["ciphertext"]
check(ct.startswith("vault:v1:"), "ciphertext is vault:v1:…")
check(unb64(tr.decrypt_data("orders", ct, mount_point=TR)["data"]["plaintext"]) == "card 4242", "decrypt round-trips")
ad = tr.encrypt_data("orders", b64("bound"), associated_data=b64("row-7"), mount_point=TR)["data"]["ciphertext"]
check(unb64(tr.decrypt_data("orders", ad, associated_data=b64("row-7"), mount_point=TR)["data"]["plaintext"]) == "bound", "associated data round-trips")
raises(ex.InvalidRequest, "wrong associated data fails", tr.decrypt_data, "orders", ad, associated_data=b64("row-8"), mount_point=TR)
batch = tr.encrypt_data("orders", batch_input=[{"plaintext": b64("a"), "reference": "r1"}, {"plaintext": b64("b"), "reference": "r2"}], mount_point=TR)["data"]["batch_results"]
check([b["reference"] for b in batch] == ["r1", "r2"], "batch encrypt keeps references")
dec = tr.decrypt_data("orders", batch_input=[{"ciphertext": b["ciphertext"]} for b in batch], mount_point=TR)["data"]["batch_results"]
check([unb64(d["plaintext"]) for d in dec] == ["a", "b"], "batch decrypt")
tr.rotate_key("orders", mount_point=TR)
check(tr.read_key("orders", mount_point=TR)["data"]["latest_version"] == 2, "rotation adds version 2")
check(tr.encrypt_data("orders", b64("x"), mount_point=TR)["data"]["ciphertext"].startswith("vault:v2:"), "new encryptions use v2")
rw = tr.rewrap_data("orders", ct, mount_point=TR)["data"]
check(rw["ciphertext"].startswith("vault:v2:") and rw["key_version"] == 2, "rewrap moves a v1 ciphertext to v2")
check(unb64(tr.decrypt_data("orders", rw["ciphertext"], mount_point=TR)["data"]["plaintext"]) == "card 4242", "rewrapped ciphertext decrypts")
tr.update_key_configuration("orders", min_decryption_version=2, mount_point=TR)
raises(ex.InvalidRequest, "decrypting below min_decryption_version fails", tr.decrypt_data, "orders", ct, mount_point=TR)
raises(ex.InvalidRequest, "min_decryption_version above latest fails", tr.update_key_configuration, "orders", min_decryption_version=9, mount_point=TR)
check(tr.read_key("orders", mount_point=TR)["data"]["min_decryption_version"] == 2, "config persisted")
tr.create_key("per-user", derived=True, mount_point=TR)
cu = tr.encrypt_data("per-user", b64("s"), context=b64("user-1"), mount_point=TR)["data"]["ciphertext"]
check(unb64(tr.decrypt_data("per-user", cu, context=b64("user-1"), mount_point=TR)["data"]["plaintext"]) == "s", "derived key with context")
raises(ex.InvalidRequest, "derived key with another context fails", tr.decrypt_data, "per-user", cu, context=b64("user-2"), mount_point=TR)
dk = tr.generate_data_key("orders", key_type="plaintext", mount_point=TR)["data"]
check(len(base64.b64decode(dk["plaintext"])) == 32, "datakey: 256-bit plaintext key")
check(tr.decrypt_data("orders", dk["ciphertext"], mount_point=TR)["data"]["plaintext"] == dk["plaintext"], "datakey ciphertext wraps the key")
check("plaintext" not in tr.generate_data_key("orders", key_type="wrapped", mount_point=TR)["data"], "wrapped datakey has no plaintext")
raises(ex.InvalidRequest, "delete is refused without deletion_allowed", tr.delete_key, "orders", mount_point=TR)
tr.update_key_configuration("orders", deletion_allowed=True, mount_point=TR)
tr.delete_key("orders", mount_point=TR)
raises(ex.InvalidPath, "deleted key is gone", tr.read_key, "orders", mount_point=TR)
tr.encrypt_data("upserted", b64("u"), mount_point=TR)
check(tr.read_key("upserted", mount_point=TR)["data"]["latest_version"] == 1, "encrypt upserts a missing key")

tr = root.secrets.transit
check(tr.hash_data(b64("abc"), algorithm="sha2-256", output_format="hex")["data"]["sum"] == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", "transit hash")
check(len(base64.b64decode(tr.generate_random_bytes(n_bytes=24)["data"]["random_bytes"])) == 24, "transit random bytes")
tr.create_key("hooks", mount_point=TR)
mac = tr.generate_hmac("hooks", b64("payload"), algorithm="sha2-256", mount_point=TR)["data"]["hmac"]
check(mac.startswith("vault:v1:"), "transit hmac")
check(tr.verify_signed_data("hooks", b64("payload"), hmac=mac, mount_point=TR)["data"]["valid"] is True, "hmac verifies")
check(tr.verify_signed_data("hooks", b64("tampered"), hmac=mac, mount_point=TR)["data"]["valid"] is False, "a changed input does not")
tr.create_key("releases", key_type="ed25519", mount_point=TR)
sig = tr.sign_data("releases", b64("artifact"), mount_point=TR)["data"]["signature"]
check(sig.startswith("vault:v1:"), "transit sign (ed25519)")
check(tr.verify_signed_data("releases", b64("artifact"), signature=sig, mount_point=TR)["data"]["valid"] is True, "the signature verifies")
batch = tr.sign_data("releases", batch_input=[{"input": b64("a")}, {"input": b64("b")}], mount_point=TR)["data"]["batch_results"]
check(len(batch) == 2 and all(r["signature"].startswith("vault:v1:") for r in batch), "batch signing")
check(tr.read_key("releases", mount_point=TR)["data"]["keys"]["1"]["public_key"], "the public key is shown")
tr.create_key("portable", exportable=True, mount_point=TR)
exported = tr.export_key("portable", key_type="encryption-key", mount_point=TR)["data"]["keys"]["1"]
check(len(base64.b64decode(exported)) == 32, "export an exportable key")
tr.rotate_key("portable", mount_point=TR)
tr.update_key_configuration("portable", min_decryption_version=2, mount_point=TR)
trimmed = tr.trim_key("portable", min_version=2, mount_point=TR)["data"]
check(trimmed["min_available_version"] == 2 and "1" not in trimmed["keys"], "trim deletes older versions")
raises(ex.InvalidRequest, "a key not created exportable does not leave", tr.export_key, "hooks", key_type="encryption-key", mount_point=TR)

# Asymmetric keys: keyward's signatures verify with Python's `cryptography`, and signatures
# `cryptography` makes with an exported private key verify in keyward.
MSG = b"release-1.2.3.tar.gz"
for curve, hname, chash in [("ecdsa-p256", "sha2-256", hashes.SHA256()), ("ecdsa-p384", "sha2-384", hashes.SHA384())]:
    tr.create_key(curve, key_type=curve, exportable=True, mount_point=TR)
    pem = tr.read_key(curve, mount_point=TR)["data"]["keys"]["1"]["public_key"]
    public = load_pem_public_key(pem.encode())
    sig = tr.sign_data(curve, b64("release-1.2.3.tar.gz"), hash_algorithm=hname, mount_point=TR)["data"]["signature"]
    public.verify(base64.b64decode(sig.split(":", 2)[2]), MSG, ec.ECDSA(chash))
    check(True, f"{curve} signature verifies with cryptography")
    jws = tr.sign_data(curve, b64("release-1.2.3.tar.gz"), hash_algorithm="sha2-512", marshaling_algorithm="jws", mount_point=TR)["data"]["signature"]
    raw = base64.urlsafe_b64decode(jws.split(":", 2)[2] + "==")
    half = len(raw) // 2
    public.verify(encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")), MSG, ec.ECDSA(hashes.SHA512()))
    check(True, f"{curve} JWS-marshaled sha2-512 signature verifies with cryptography")
    private = load_pem_private_key(tr.export_key(curve, key_type="signing-key", mount_point=TR)["data"]["keys"]["1"].encode(), None)
    theirs = private.sign(MSG, ec.ECDSA(chash))
    check(tr.verify_signed_data(curve, b64("release-1.2.3.tar.gz"), signature="vault:v1:" + base64.b64encode(theirs).decode(), hash_algorithm=hname, mount_point=TR)["data"]["valid"] is True, f"a cryptography {curve} signature verifies in keyward")
    check(tr.verify_signed_data(curve, b64("release-1.2.4.tar.gz"), signature="vault:v1:" + base64.b64encode(theirs).decode(), hash_algorithm=hname, mount_point=TR)["data"]["valid"] is False, f"... not for another input")

tr.create_key("rsa", key_type="rsa-2048", exportable=True, mount_point=TR)
public = load_pem_public_key(tr.read_key("rsa", mount_point=TR)["data"]["keys"]["1"]["public_key"].encode())
for scheme, hname, chash, pad in [
    ("pss", "sha2-256", hashes.SHA256(), lambda h: padding.PSS(mgf=padding.MGF1(h), salt_length=padding.PSS.AUTO)),
    ("pkcs1v15", "sha2-512", hashes.SHA512(), lambda h: padding.PKCS1v15()),
]:
    sig = tr.sign_data("rsa", b64("release-1.2.3.tar.gz"), hash_algorithm=hname, signature_algorithm=scheme, mount_point=TR)["data"]["signature"]
    public.verify(base64.b64decode(sig.split(":", 2)[2]), MSG, pad(chash), chash)
    check(True, f"RSA {scheme} {hname} signature verifies with cryptography")
private = load_pem_private_key(tr.export_key("rsa", key_type="signing-key", mount_point=TR)["data"]["keys"]["1"].encode(), None)
theirs = private.sign(MSG, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.MAX_LENGTH), hashes.SHA256())
check(tr.verify_signed_data("rsa", b64("release-1.2.3.tar.gz"), signature="vault:v1:" + base64.b64encode(theirs).decode(), mount_point=TR)["data"]["valid"] is True, "a cryptography PSS signature (longest salt, as Go signs) verifies in keyward")
if KEYWARD:
    raises(ex.InvalidRequest, "RSA signing of prehashed input is refused", tr.sign_data, "rsa", b64("x" * 32), prehashed=True, hash_algorithm="sha2-256", mount_point=TR)

tr.create_key("ed", key_type="ed25519", exportable=True, mount_point=TR)
seed = base64.b64decode(tr.export_key("ed", key_type="signing-key", mount_point=TR)["data"]["keys"]["1"])[:32]
theirs = Ed25519PrivateKey.from_private_bytes(seed).sign(MSG)
check(tr.verify_signed_data("ed", b64("release-1.2.3.tar.gz"), signature="vault:v1:" + base64.b64encode(theirs).decode(), mount_point=TR)["data"]["valid"] is True, "a cryptography Ed25519 signature verifies in keyward")

# Other encryption key types, and a plaintext backup that restores (and is refused when changed).
tr.create_key("chacha", key_type="chacha20-poly1305", mount_point=TR)
ct = tr.encrypt_data("chacha", b64("stream"), mount_point=TR)["data"]["ciphertext"]
check(unb64(tr.decrypt_data("chacha", ct, mount_point=TR)["data"]["plaintext"]) == "stream", "chacha20-poly1305 round trip")
root.write(f"{TR}/keys/small", type="aes128-gcm96")
ct = tr.encrypt_data("small", b64("short key"), mount_point=TR)["data"]["ciphertext"]
check(unb64(tr.decrypt_data("small", ct, mount_point=TR)["data"]["plaintext"]) == "short key", "aes128-gcm96 round trip")
tr.create_key("kept", key_type="ecdsa-p256", exportable=True, allow_plaintext_backup=True, mount_point=TR)
sig = tr.sign_data("kept", b64("release-1.2.3.tar.gz"), mount_point=TR)["data"]["signature"]
backup = tr.backup_key("kept", mount_point=TR)["data"]["backup"]
tr.restore_key(backup, name="kept-copy", mount_point=TR)
check(tr.verify_signed_data("kept-copy", b64("release-1.2.3.tar.gz"), signature=sig, mount_point=TR)["data"]["valid"] is True, "a restored key verifies the original's signatures")
raises(ex.InvalidRequest, "restoring over an existing key needs force", tr.restore_key, backup, mount_point=TR)
tr.restore_key(backup, force=True, mount_point=TR)
check(tr.read_key("kept", mount_point=TR)["data"]["latest_version"] == 1, "restore with force")
raises(ex.InvalidRequest, "a key without allow_plaintext_backup has no backup", tr.backup_key, "rsa", mount_point=TR)
if KEYWARD:
    body = base64.b64decode(backup).replace(b'"min_decryption_version":1', b'"min_decryption_version":0')
    raises(ex.InvalidRequest, "a changed backup is refused", tr.restore_key, base64.b64encode(body).decode(), name="evil", mount_point=TR)

# --- policies and tokens ---------------------------------------------------------------------
pname = f"reader-{RUN}"
policy = (
    f'path "{KV}/data/app/*" {{\n  capabilities = ["read"]\n}}\n'
    f'path "{KV}/metadata/app/*" {{\n  capabilities = ["list", "read"]\n}}\n'
    f'path "{TR}/encrypt/upserted" {{\n  capabilities = ["update"]\n}}\n'
)
root.sys.create_or_update_acl_policy(pname, policy)
check(root.sys.read_acl_policy(pname)["data"] == {"name": pname, "policy": policy}, "ACL policy reads back as written")
check(pname in root.sys.list_acl_policies()["data"]["keys"], "ACL policy listed")
legacy = f"legacy-{RUN}"
root.sys.create_or_update_policy(legacy, {"path": {f"{KV}/data/app/json": {"capabilities": ["read"]}}})
check(f"{KV}/data/app/json" in root.sys.read_policy(legacy)["data"]["rules"], "legacy sys/policy (JSON form) reads back")
check(legacy in root.sys.list_policies()["data"]["policies"], "legacy list")
root.sys.delete_policy(legacy)
if KEYWARD:
    raises(ex.InvalidRequest, "an untranslatable rule is refused", root.sys.create_or_update_acl_policy, f"bad-{RUN}", 'path "sys/mounts/*" { capabilities = ["update"] }')

auth = root.auth.token.create(policies=[pname], ttl="1h", display_name="ci")["auth"]
check(auth["policies"] == sorted(["default", pname]) and 3500 <= auth["lease_duration"] <= 3600, "token created with policies and ttl")
reader = hvac.Client(url=ADDR, token=auth["client_token"])
check(reader.is_authenticated(), "new token authenticates")
check(reader.auth.token.lookup_self()["data"]["id"] == auth["client_token"], "lookup-self shows the token it was given")
raises(ex.InvalidRequest, "the default policy cannot be deleted", root.sys.delete_acl_policy, "default")
inert = root.sys.create_or_update_acl_policy(f"later-{RUN}", 'path "sys/leases/lookup" { capabilities = ["update"] }')
inert_body = inert if isinstance(inert, dict) else {"warnings": []}
check(not KEYWARD or "inert in this version" in str(inert_body["warnings"]), "a rule on a path keyward does not serve is kept inert, with a warning")
root.sys.delete_acl_policy(f"later-{RUN}")
own = reader.sys.get_capabilities(paths=[f"{KV}/data/app/db", f"{KV}/data/other"])["data"]
check(own[f"{KV}/data/app/db"] == ["read"] and own[f"{KV}/data/other"] == ["deny"], "capabilities-self")
theirs = root.sys.get_capabilities(paths=[f"{KV}/data/app/db"], token=auth["client_token"])["data"]
check(theirs["capabilities"] == ["read"], "capabilities of another token")
by_acc = root.sys.get_capabilities(paths=[f"{KV}/data/app/db"], accessor=auth["accessor"])["data"]
check(by_acc["capabilities"] == ["read"], "capabilities by accessor")
me = reader.auth.token.lookup_self()["data"]
check(me["accessor"] == auth["accessor"] and pname in me["policies"] and 0 < me["ttl"] <= 3600, "lookup-self")
check(reader.secrets.kv.v2.read_secret_version("app/db", mount_point=KV, raise_on_deleted_version=True)["data"]["data"]["v"] == "6", "reader reads under app/")
check("db" in reader.secrets.kv.v2.list_secrets("app", mount_point=KV)["data"]["keys"], "reader lists under app/")
raises(ex.Forbidden, "reader cannot write", reader.secrets.kv.v2.create_or_update_secret, "app/db", {"x": "y"}, mount_point=KV)
raises(ex.Forbidden, "reader cannot delete", reader.secrets.kv.v2.delete_latest_version_of_secret, "app/db", mount_point=KV)
raises(ex.Forbidden, "reader cannot read outside app/", reader.secrets.kv.v2.read_secret_version, "other/x", mount_point=KV, raise_on_deleted_version=True)
raises(ex.Forbidden, "reader cannot list policies", reader.sys.list_acl_policies)
raises(ex.Forbidden, "reader cannot create tokens", reader.auth.token.create, policies=[pname])
raises(ex.Forbidden, "reader cannot decrypt", reader.secrets.transit.decrypt_data, "upserted", ct, mount_point=TR)
check(reader.secrets.transit.encrypt_data("upserted", b64("ok"), mount_point=TR)["data"]["ciphertext"].startswith("vault:v1:"), "reader may encrypt")
ren = reader.auth.token.renew_self(increment="30m")["auth"]
check(ren["accessor"] == auth["accessor"] and ren["renewable"] is True, "renew-self")
check(root.auth.token.lookup(auth["client_token"])["data"]["accessor"] == auth["accessor"], "lookup by token")
check(root.auth.token.renew(auth["client_token"], increment="20m")["auth"]["accessor"] == auth["accessor"], "renew by token")
orphan = root.auth.token.create_orphan(policies=[pname], ttl="5m")["auth"]
check(orphan["orphan"] is True and orphan["lease_duration"] <= 300, "create-orphan")
# Token terms: use-limited, periodic, non-renewable, metadata, exact lease arithmetic.
limited = root.auth.token.create(policies=[pname], num_uses=2, meta={"team": "payments"})["auth"]
lim = hvac.Client(url=ADDR, token=limited["client_token"])
looked = lim.auth.token.lookup_self()["data"]
check(looked["num_uses"] == 1 and looked["meta"] == {"team": "payments"}, "num_uses counts down and meta is kept")
lim.auth.token.lookup_self()
raises(ex.Forbidden, "a used-up token is refused", lim.auth.token.lookup_self)
periodic = root.auth.token.create(policies=[pname], period="1h", ttl="10m")["auth"]
check(periodic["lease_duration"] == 3600, "a periodic token lives one period")
renewed = hvac.Client(url=ADDR, token=periodic["client_token"]).auth.token.renew_self(increment="1m")["auth"]
check(renewed["lease_duration"] == 3600, "a periodic token renews for its period")
fixed = root.auth.token.create(policies=[pname], renewable=False)["auth"]
check(fixed["renewable"] is False, "renewable=false is kept")
raises(ex.InvalidRequest, "a non-renewable token is not renewed", root.auth.token.renew, fixed["client_token"])
capped = root.auth.token.create(policies=[pname], ttl="30m", explicit_max_ttl="5m")["auth"]
check(capped["lease_duration"] == 300, "ttl under explicit_max_ttl is exact (300)")
check(root.auth.token.lookup_accessor(auth["accessor"])["data"]["display_name"] == "token-ci", "lookup-accessor")
check(auth["accessor"] in root.auth.token.list_accessors()["data"]["keys"], "list accessors")
child = root.auth.token.create(policies=[pname], no_default_policy=True)["auth"]
check(child["policies"] == [pname], "no_default_policy")
root.auth.token.revoke_accessor(child["accessor"])
check(not hvac.Client(url=ADDR, token=child["client_token"]).is_authenticated(), "revoke-accessor")
other = root.auth.token.create(policies=[pname])["auth"]
root.auth.token.revoke(other["client_token"])
check(not hvac.Client(url=ADDR, token=other["client_token"]).is_authenticated(), "revoke")
reader.auth.token.revoke_self()
check(not reader.is_authenticated(), "revoke-self")
raises(ex.Forbidden, "a revoked token is refused with 403", reader.secrets.kv.v2.read_secret_version, "app/db", mount_point=KV, raise_on_deleted_version=True)
bogus = hvac.Client(url=ADDR, token="kw_" + "A" * 43 if KEYWARD else "hvs.bogus")
check(not bogus.is_authenticated(), "an unknown token is not authenticated")
# --- response wrapping: a token handed over as a one-time wrapping token ----------------------
handed = root.auth.token.create(policies=[pname], ttl="10m", wrap_ttl="5m")
check(handed["auth"] is None and handed["wrap_info"]["ttl"] == 300, "a wrapped token create answers wrap_info")
opened = root.sys.unwrap(handed["wrap_info"]["token"])
check(hvac.Client(url=ADDR, token=opened["auth"]["client_token"]).is_authenticated(), "the unwrapped token works")
raises(ex.InvalidRequest, "a wrapping token unwraps once", root.sys.unwrap, handed["wrap_info"]["token"])
payload = root.sys.wrap(payload={"handover": "for-alice"}, ttl=60)
check(root.sys.unwrap(payload["wrap_info"]["token"])["data"] == {"handover": "for-alice"}, "sys.wrap and unwrap")

# --- token roles: an orchestrator mints tokens within a role's allowed policies ---------------
root.auth.token.create_or_update_role(f"ci-{RUN}", allowed_policies=[pname], orphan=True, token_period="1h")
trole = root.auth.token.read_role(f"ci-{RUN}")["data"]
check(trole["allowed_policies"] == [pname] and trole["orphan"] is True, "token role reads back")
check(f"ci-{RUN}" in root.auth.token.list_roles()["data"]["keys"], "token roles listed")
minted = root.auth.token.create(role_name=f"ci-{RUN}")["auth"]
check(minted["policies"] == sorted(["default", pname]) and minted["orphan"] is True, "create with a token role")
check(minted["lease_duration"] == 3600, "the role's period")
looked = root.auth.token.lookup(minted["client_token"])["data"]
check(looked["id"] == minted["client_token"] and looked["path"] == f"auth/token/create/ci-{RUN}", "lookup shows id and path")
raises(ex.Forbidden, "a policy outside the role is refused", root.auth.token.create, role_name=f"ci-{RUN}", policies=["root"])
root.auth.token.delete_role(f"ci-{RUN}")

# --- KV version 1 and tuning to version 2 ------------------------------------------------------
K1 = f"kv1{RUN}"
root.sys.enable_secrets_engine("kv", path=K1)
check(root.sys.read_mount_configuration(K1)["data"]["options"]["version"] == "1" if KEYWARD else True, "kv without a version is v1")
root.secrets.kv.v1.create_or_update_secret("apps/db", {"password": "hunter2"}, mount_point=K1)
check(root.secrets.kv.v1.read_secret("apps/db", mount_point=K1)["data"] == {"password": "hunter2"}, "kv v1 read")
check(root.secrets.kv.v1.list_secrets("apps", mount_point=K1)["data"]["keys"] == ["db"], "kv v1 list")
root.sys.tune_mount_configuration(K1, description="legacy apps", default_lease_ttl="1h")
tuned = root.sys.read_mount_configuration(K1)["data"]
check(tuned["description"] == "legacy apps" and tuned["default_lease_ttl"] == 3600, "tune description and ttl")
root.sys.tune_mount_configuration(K1, options={"version": "2"})
check(root.secrets.kv.v2.read_secret_version("apps/db", mount_point=K1, raise_on_deleted_version=True)["data"]["data"]["password"] == "hunter2", "tuned to v2 in place")
root.secrets.kv.v2.delete_metadata_and_all_versions("apps/db", mount_point=K1)
root.sys.disable_secrets_engine(K1)

# --- AppRole: a machine logs in with a role ID and a secret ID ---------------------------------
AR = f"approle-{RUN}"
root.sys.enable_auth_method("approle", path=AR, description="compat")
check(root.sys.list_auth_methods()["data"][f"{AR}/"]["type"] == "approle", "approle enabled and listed")
ar = root.auth.approle
ar.create_or_update_approle("ci", token_policies=[pname], token_ttl="10m", secret_id_num_uses=2, mount_point=AR)
role = ar.read_role("ci", mount_point=AR)["data"]
check(role["token_policies"] == [pname] and role["token_ttl"] == 600 and role["secret_id_num_uses"] == 2, "role reads back")
check(ar.list_roles(mount_point=AR)["data"]["keys"] == ["ci"], "roles listed")
role_id = ar.read_role_id("ci", mount_point=AR)["data"]["role_id"]
sid = ar.generate_secret_id("ci", metadata={"job": "compat"}, mount_point=AR)["data"]
check(sid["secret_id_accessor"] in ar.list_secret_id_accessors("ci", mount_point=AR)["data"]["keys"], "secret-id accessors listed")
check(ar.read_secret_id("ci", sid["secret_id"], mount_point=AR)["data"]["metadata"] == {"job": "compat"}, "secret-id lookup")
check(ar.read_secret_id_accessor("ci", sid["secret_id_accessor"], mount_point=AR)["data"]["secret_id_num_uses"] == 2, "secret-id-accessor lookup")
machine = hvac.Client(url=ADDR)
login = machine.auth.approle.login(role_id=role_id, secret_id=sid["secret_id"], mount_point=AR)
check(machine.is_authenticated() and login["auth"]["metadata"]["job"] == "compat", "approle login sets the client's token")
check(sorted(login["auth"]["policies"]) == sorted(["default", pname]) and login["auth"]["lease_duration"] <= 600, "the login token has the role's policies and ttl")
check(machine.secrets.kv.v2.read_secret_version("app/json", mount_point=KV, raise_on_deleted_version=True)["data"]["data"] == doc, "the login token reads what its role grants")
raises(ex.Forbidden, "and nothing else", machine.secrets.kv.v2.read_secret_version, "other/x", mount_point=KV, raise_on_deleted_version=True)
hvac.Client(url=ADDR).auth.approle.login(role_id=role_id, secret_id=sid["secret_id"], mount_point=AR)
raises(ex.InvalidRequest, "a spent secret ID is refused", hvac.Client(url=ADDR).auth.approle.login, role_id=role_id, secret_id=sid["secret_id"], mount_point=AR)
delivered = ar.generate_secret_id("ci", mount_point=AR, wrap_ttl="2m")["wrap_info"]["token"]
sid2 = root.sys.unwrap(delivered)["data"]
check(sid2["secret_id"].startswith("kwsid_") if KEYWARD else True, "a secret ID delivered wrapped")
other_machine = hvac.Client(url=ADDR)
other_machine.auth.approle.login(role_id=role_id, secret_id=sid2["secret_id"], mount_point=AR)
ar.destroy_secret_id_accessor("ci", sid2["secret_id_accessor"], mount_point=AR)
check(not other_machine.is_authenticated(), "destroying a secret ID revokes the tokens it logged in")
root.sys.disable_auth_method(AR)
check(not machine.is_authenticated(), "disabling the auth method revokes its tokens")

# --- userpass: a person (here a service account without MFA) logs in with a password ---------
UP = f"userpass-{RUN}"
root.sys.enable_auth_method("userpass", path=UP)
up = root.auth.userpass
up.create_or_update_user("svc", password="service password 1", policies=pname, mount_point=UP, totp_required=False)
check(up.read_user("svc", mount_point=UP)["data"]["token_policies"] == [pname], "userpass user reads back")
check(up.list_user(mount_point=UP)["data"]["keys"] == ["svc"], "userpass users listed")
person = hvac.Client(url=ADDR)
plogin = person.auth.userpass.login("svc", "service password 1", mount_point=UP)
check(person.is_authenticated() and plogin["auth"]["metadata"]["username"] == "svc", "userpass login sets the client's token")
raises(ex.InvalidRequest, "a wrong password is refused", hvac.Client(url=ADDR).auth.userpass.login, "svc", "not the password", mount_point=UP)
up.update_password_on_user("svc", "service password 2", mount_point=UP)
check(not person.is_authenticated(), "a new password revokes the user's tokens")
check(hvac.Client(url=ADDR).auth.userpass.login("svc", "service password 2", mount_point=UP)["auth"]["client_token"], "the new password logs in")
root.sys.disable_auth_method(UP)

# --- jwt: a CI job logs in with the token its platform signed ----------------------------------
JW = f"jwt-{RUN}"
signing_key = Ed25519PrivateKey.generate()
public_pem = signing_key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
ISS = "https://token.actions.githubusercontent.com"
root.sys.enable_auth_method("jwt", path=JW)
root.auth.jwt.configure(jwt_validation_pubkeys=[public_pem], bound_issuer=ISS, path=JW)
check(root.auth.jwt.read_config(path=JW)["data"]["bound_issuer"] == ISS, "jwt config reads back")
root.auth.jwt.create_role(
    "deploy", user_claim="sub", allowed_redirect_uris=[], role_type="jwt", bound_audiences=["keyward"],
    bound_claims={"repository": "acme/app"}, claim_mappings={"repository": "repo"}, token_policies=[pname],
    token_ttl="15m", path=JW,
)
role = root.auth.jwt.read_role("deploy", path=JW)["data"]
check(role["bound_claims"] == {"repository": ["acme/app"]} and role["token_policies"] == [pname], "jwt role reads back")
check(root.auth.jwt.list_roles(path=JW)["data"]["keys"] == ["deploy"], "jwt roles listed")
now = int(time.time())
claims = {"iss": ISS, "aud": "keyward", "sub": "repo:acme/app:ref:refs/heads/main", "repository": "acme/app",
          "iat": now, "exp": now + 300}
job = hvac.Client(url=ADDR)
jlogin = job.auth.jwt.jwt_login("deploy", pyjwt.encode(claims, signing_key, algorithm="EdDSA"), path=JW)
check(job.is_authenticated() and jlogin["auth"]["policies"] == sorted(["default", pname]), "jwt_login sets the client's token")
check(jlogin["auth"]["metadata"]["repo"] == "acme/app" and jlogin["auth"]["lease_duration"] == 900, "claim mappings and token_ttl")
other_repo = dict(claims, repository="evil/app")
raises(ex.InvalidRequest, "a token from another repository is refused", hvac.Client(url=ADDR).auth.jwt.jwt_login,
       "deploy", pyjwt.encode(other_repo, signing_key, algorithm="EdDSA"), path=JW)
raises(ex.InvalidRequest, "a token signed by another key is refused", hvac.Client(url=ADDR).auth.jwt.jwt_login,
       "deploy", pyjwt.encode(claims, Ed25519PrivateKey.generate(), algorithm="EdDSA"), path=JW)
root.auth.jwt.delete_role("deploy", path=JW)
check(not job.is_authenticated(), "deleting a jwt role revokes its tokens")
root.sys.disable_auth_method(JW)

root.sys.delete_acl_policy(pname)
raises(ex.InvalidPath, "deleted policy is gone", root.sys.read_acl_policy, pname)

# --- disable = crypto-shred ------------------------------------------------------------------
root.sys.disable_secrets_engine(KV)
root.sys.disable_secrets_engine(TR)
check(f"{KV}/" not in root.sys.list_mounted_secrets_engines()["data"], "mount disabled")
root.sys.enable_secrets_engine("kv", path=KV, options={"version": "2"})
raises(ex.InvalidPath, "a re-enabled mount starts empty", kv.list_secrets, "", mount_point=KV)
root.sys.disable_secrets_engine(KV)

print(f"hvac: {checks} checks passed against {TARGET} at {ADDR}")
