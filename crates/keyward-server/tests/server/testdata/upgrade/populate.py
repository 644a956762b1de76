#!/usr/bin/env python3
"""Fills a running keyward (the binary of the commit named in fixture.json) with what the upgrade
test reads back: secrets with history, tokens (one naming a policy deleted before deletions left
tombstones, one made by another token), policies, a proxy route, a transit key and ciphertext, and
the audit log all that writes. Prints the fixture's facts as JSON (test tokens of a throwaway
database, no real secret).

    populate.py http://127.0.0.1:PORT
"""
import base64
import json
import sys
import urllib.request

BASE = sys.argv[1]


def call(method, path, body=None, token=None):
    req = urllib.request.Request(BASE + path, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    data = None
    if body is not None:
        req.add_header("Content-Type", "application/json")
        data = json.dumps(body).encode()
    with urllib.request.urlopen(req, data) as r:
        text = r.read().decode()
        return json.loads(text) if text else None


root = call("PUT", "/v1/sys/init", {"secret_shares": 1, "secret_threshold": 1})["root_token"]
call("POST", "/api/v1/mounts", {"path": "app"}, root)
call("POST", "/api/v1/mounts", {"path": "transit", "kind": "transit"}, root)
call("PATCH", "/api/v1/mounts/app/secrets/prod", {"set": {"STRIPE_KEY": "sk_test_fixture_v1", "DB": "postgres://a"}}, root)
call("PATCH", "/api/v1/mounts/app/secrets/prod", {"set": {"STRIPE_KEY": "sk_test_fixture_v2"}}, root)
call("PATCH", "/api/v1/mounts/app/secrets/prod", {"unset": ["DB"]}, root)
call("PATCH", "/api/v1/mounts/app/secrets/dev", {"set": {"STRIPE_KEY": "sk_test_fixture_dev"}}, root)
reader = '[[rules]]\npath = "app/*"\ncapabilities = ["read", "list", "use"]\n'
call("PUT", "/api/v1/policies/reader", {"document": reader}, root)
call("PUT", "/api/v1/policies/gone", {"document": '[[rules]]\npath = "app/dev"\ncapabilities = ["deny"]\n'}, root)
minter = '[[rules]]\npath = "app/*"\ncapabilities = ["read"]\n[[rules]]\npath = "sys/tokens"\ncapabilities = ["sudo"]\n'
call("PUT", "/api/v1/policies/minter", {"document": minter}, root)
reader_token = call("POST", "/api/v1/tokens", {"policies": ["reader"], "ttl": "876000h"}, root)["token"]
gone_holder = call("POST", "/api/v1/tokens", {"policies": ["reader", "gone"], "ttl": "876000h"}, root)["token"]
parent = call("POST", "/api/v1/tokens", {"policies": ["minter"], "ttl": "876000h"}, root)["token"]
child = call("POST", "/api/v1/tokens", {"policies": ["minter"], "ttl": "867000h"}, parent)["token"]
# Deleted before deletions left tombstones: the token naming it must keep working.
call("DELETE", "/api/v1/policies/gone", None, root)
call("PUT", "/api/v1/proxy-routes/stripe",
     {"upstream": "https://api.stripe.com", "secret": "app/prod", "inject": ["bearer:STRIPE_KEY"]}, root)
call("POST", "/v1/transit/keys/fixture", {}, root)
plain = base64.b64encode(b"transit fixture plaintext").decode()
ciphertext = call("POST", "/v1/transit/encrypt/fixture", {"plaintext": plain}, root)["data"]["ciphertext"]
print(json.dumps({
    "tokens": {"root": root, "reader": reader_token, "gone_holder": gone_holder, "parent": parent, "child": child},
    "secrets": {
        "app/prod": {"version": 3, "fields": {"STRIPE_KEY": "sk_test_fixture_v2"},
                     "history": {"1": {"STRIPE_KEY": "sk_test_fixture_v1", "DB": "postgres://a"}}},
        "app/dev": {"version": 1, "fields": {"STRIPE_KEY": "sk_test_fixture_dev"}},
    },
    "transit": {"key": "fixture", "plaintext": plain, "ciphertext": ciphertext},
}, indent=2))
