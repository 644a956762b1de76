//! The Vault-compatible API in the OpenAPI document. Its routes are served by one dispatcher
//! (Vault routes by mount and uses a `LIST` method), so they are described from this table.
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{OpenApi, Required};

use HttpMethod::{Delete, Get, Patch, Post, Put};

/// `(path, methods, tag, summary)`; `LIST` is documented as `GET …?list=true`.
const ROUTES: &[(&str, &[HttpMethod], &str, &str)] = &[
    ("/v1/sys/mounts", &[Get], "vault-sys", "Mounts by path (`secret/`), with `options.version` \"2\" for kv"),
    (
        "/v1/sys/mounts/{path}",
        &[Get, Post, Put, Delete],
        "vault-sys",
        "Read, enable (`type` kv or transit) or disable a mount; disabling crypto-shreds it",
    ),
    ("/v1/sys/internal/ui/mounts/{path}", &[Get], "vault-sys", "The mount holding a path, for KV version detection"),
    ("/v1/sys/policies/acl", &[Get], "vault-sys", "LIST policy names"),
    (
        "/v1/sys/policies/acl/{name}",
        &[Get, Post, Put, Delete],
        "vault-sys",
        "An HCL policy, translated into native rules at write time",
    ),
    ("/v1/sys/policy", &[Get], "vault-sys", "Policy names (legacy)"),
    ("/v1/sys/policy/{name}", &[Get, Post, Put, Delete], "vault-sys", "An HCL policy (legacy form: `rules`)"),
    (
        "/v1/auth/token/create",
        &[Post, Put],
        "vault-token",
        "Create a token (policies, ttl, no_parent, no_default_policy, display_name)",
    ),
    ("/v1/auth/token/create-orphan", &[Post, Put], "vault-token", "Create a token without a parent"),
    ("/v1/auth/token/lookup-self", &[Get, Post], "vault-token", "The caller's token"),
    ("/v1/auth/token/lookup", &[Post, Put], "vault-token", "A token given in the body"),
    ("/v1/auth/token/lookup-accessor", &[Post, Put], "vault-token", "A token by accessor"),
    ("/v1/auth/token/renew-self", &[Post, Put], "vault-token", "Renew the caller's token (`increment`)"),
    ("/v1/auth/token/renew", &[Post, Put], "vault-token", "Renew a token given in the body"),
    ("/v1/auth/token/revoke-self", &[Post, Put], "vault-token", "Revoke the caller's token and its children"),
    ("/v1/auth/token/revoke", &[Post, Put], "vault-token", "Revoke a token given in the body"),
    ("/v1/auth/token/revoke-accessor", &[Post, Put], "vault-token", "Revoke a token by accessor"),
    ("/v1/auth/token/accessors", &[Get], "vault-token", "LIST token accessors"),
    (
        "/v1/{mount}/config",
        &[Get, Post, Put],
        "vault-kv",
        "KV engine settings: max_versions, cas_required, delete_version_after",
    ),
    (
        "/v1/{mount}/data/{path}",
        &[Get, Post, Put, Patch, Delete],
        "vault-kv",
        "Read (`?version=`), write (`options.cas`), merge-patch or soft-delete a secret",
    ),
    (
        "/v1/{mount}/metadata/{path}",
        &[Get, Post, Put, Patch, Delete],
        "vault-kv",
        "Metadata (read, write, patch, delete every version); LIST children",
    ),
    ("/v1/{mount}/delete/{path}", &[Post, Put], "vault-kv", "Soft-delete `versions`"),
    ("/v1/{mount}/undelete/{path}", &[Post, Put], "vault-kv", "Undelete `versions`"),
    ("/v1/{mount}/destroy/{path}", &[Post, Put], "vault-kv", "Destroy `versions` for good"),
    ("/v1/{mount}/subkeys/{path}", &[Get], "vault-kv", "The keys of a version with every value replaced by null"),
    ("/v1/{mount}/keys", &[Get], "vault-transit", "LIST transit keys"),
    (
        "/v1/{mount}/keys/{name}",
        &[Get, Post, Put, Delete],
        "vault-transit",
        "Read, create (aes256-gcm96) or delete (when deletion_allowed) a key",
    ),
    ("/v1/{mount}/keys/{name}/rotate", &[Post, Put], "vault-transit", "Add a key version"),
    (
        "/v1/{mount}/keys/{name}/config",
        &[Post, Put],
        "vault-transit",
        "min_decryption_version, min_encryption_version, deletion_allowed",
    ),
    (
        "/v1/{mount}/encrypt/{name}",
        &[Post, Put],
        "vault-transit",
        "Encrypt base64 `plaintext` (or `batch_input`) to `vault:vN:…`",
    ),
    (
        "/v1/{mount}/decrypt/{name}",
        &[Post, Put],
        "vault-transit",
        "Decrypt a `vault:vN:…` ciphertext (or `batch_input`)",
    ),
    (
        "/v1/{mount}/rewrap/{name}",
        &[Post, Put],
        "vault-transit",
        "Re-encrypt under the latest version without revealing the plaintext",
    ),
    (
        "/v1/{mount}/datakey/{type}/{name}",
        &[Post, Put],
        "vault-transit",
        "A random data key, wrapped (and, for `plaintext`, also in clear)",
    ),
];

/// Adds the Vault API's paths and its `X-Vault-Token` scheme to the document.
pub(crate) fn describe(doc: &mut OpenApi) {
    use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .add_security_scheme("vault_token", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Vault-Token"))));
    for (path, methods, tag, summary) in ROUTES {
        let mut op = OperationBuilder::new()
            .tag(*tag)
            .summary(Some(*summary))
            .response(
                "200",
                ResponseBuilder::new().description(
                    "`{request_id, lease_id, renewable, lease_duration, data, wrap_info, warnings, auth}`",
                ),
            )
            .response("204", ResponseBuilder::new().description("Done, no body"))
            .response(
                "400",
                ResponseBuilder::new().description("`{\"errors\": [\"…\"]}`: invalid input, check-and-set mismatch"),
            )
            .response(
                "403",
                ResponseBuilder::new()
                    .description("`{\"errors\": [\"permission denied\"]}`, also for an unknown token"),
            )
            .response(
                "404",
                ResponseBuilder::new()
                    .description("Not found (an empty LIST; a deleted version, with `data.metadata`)"),
            );
        for seg in path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
            op = op
                .parameter(ParameterBuilder::new().name(seg).parameter_in(ParameterIn::Path).required(Required::True));
        }
        if methods.contains(&Get) && (summary.starts_with("LIST") || path.ends_with("metadata/{path}")) {
            op = op.parameter(
                ParameterBuilder::new().name("list").parameter_in(ParameterIn::Query).required(Required::False),
            );
        }
        doc.paths.add_path_operation(path, methods.to_vec(), op.build());
    }
}
