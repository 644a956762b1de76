//! Completes a document from the operation table: each documented operation gets its id, a
//! schema for every path parameter, the security its auth class needs, and a response for every
//! error status it can answer (from the error codes its class, effect and method can produce).
use std::collections::{BTreeMap, BTreeSet};

use keyward_api::ErrorCode;
use utoipa::openapi::path::{HttpMethod, Operation as DocOperation, ParameterBuilder, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{
    ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Required, ResponseBuilder};

use super::vault::openapi_path;
use crate::pipeline::{operations, AuthClass, Effect, Operation, VaultOp};

/// Which API a document describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Native,
    Vault,
}

/// The operation of a path item for a method.
pub(super) fn operation<'a>(item: &'a PathItem, method: &HttpMethod) -> Option<&'a DocOperation> {
    match method {
        HttpMethod::Get => item.get.as_ref(),
        HttpMethod::Put => item.put.as_ref(),
        HttpMethod::Post => item.post.as_ref(),
        HttpMethod::Delete => item.delete.as_ref(),
        HttpMethod::Patch => item.patch.as_ref(),
        HttpMethod::Head => item.head.as_ref(),
        HttpMethod::Options => item.options.as_ref(),
        HttpMethod::Trace => item.trace.as_ref(),
    }
}

fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (HttpMethod, &mut DocOperation)> {
    [
        (HttpMethod::Get, item.get.as_mut()),
        (HttpMethod::Put, item.put.as_mut()),
        (HttpMethod::Post, item.post.as_mut()),
        (HttpMethod::Delete, item.delete.as_mut()),
        (HttpMethod::Patch, item.patch.as_mut()),
    ]
    .into_iter()
    .filter_map(|(m, op)| op.map(|op| (m, op)))
}

fn method_name(m: &HttpMethod) -> &'static str {
    match m {
        HttpMethod::Get => "get",
        HttpMethod::Put => "put",
        HttpMethod::Post => "post",
        HttpMethod::Delete => "delete",
        HttpMethod::Patch => "patch",
        HttpMethod::Head => "head",
        HttpMethod::Options => "options",
        HttpMethod::Trace => "trace",
    }
}

/// The table's operations by (document path, method).
fn index(side: Side) -> BTreeMap<(String, &'static str), Vec<&'static Operation>> {
    let mut out: BTreeMap<(String, &'static str), Vec<&'static Operation>> = BTreeMap::new();
    for op in operations() {
        let entries: Vec<(String, Vec<HttpMethod>)> = match side {
            Side::Native => op
                .native
                .iter()
                .map(|r| {
                    let methods = match &r.method {
                        Some(m) => vec![http_method(m.as_str())],
                        None => PROXY_METHODS.to_vec(),
                    };
                    (r.path.replace("{*", "{"), methods)
                })
                .collect(),
            Side::Vault => op
                .vault
                .iter()
                .map(|r| {
                    let methods = r
                        .ops
                        .iter()
                        .flat_map(|o| match o {
                            VaultOp::Read | VaultOp::List => vec![HttpMethod::Get],
                            VaultOp::Write => vec![HttpMethod::Post, HttpMethod::Put],
                            VaultOp::Patch => vec![HttpMethod::Patch],
                            VaultOp::Delete => vec![HttpMethod::Delete],
                        })
                        .collect();
                    (openapi_path(r.path), methods)
                })
                .collect(),
        };
        for (path, methods) in entries {
            for m in methods {
                out.entry((path.clone(), method_name(&m))).or_default().push(op);
            }
        }
    }
    out
}

/// The methods the credential proxy's catch-all route is documented with.
const PROXY_METHODS: [HttpMethod; 5] =
    [HttpMethod::Get, HttpMethod::Post, HttpMethod::Put, HttpMethod::Patch, HttpMethod::Delete];

fn http_method(m: &str) -> HttpMethod {
    match m {
        "POST" => HttpMethod::Post,
        "PUT" => HttpMethod::Put,
        "PATCH" => HttpMethod::Patch,
        "DELETE" => HttpMethod::Delete,
        _ => HttpMethod::Get,
    }
}

/// The error codes an operation can answer with, by its class, effect and method.
fn codes(op: &Operation, method: &HttpMethod, side: Side) -> BTreeSet<ErrorCode> {
    use ErrorCode::*;
    // The front door: a malformed forwarding header, limits, overload, an unexpected failure.
    let mut out: BTreeSet<ErrorCode> =
        [InvalidInput, RateLimited, HeadersTooLarge, Internal, Overloaded, Timeout].into();
    if op.effect != Effect::Probe {
        out.extend([NotInitialized, Unavailable, StorageUnavailable, AuditUnavailable]);
        out.extend([IntegrityError, KeyMismatch, UntrustedStorage, TamperedRow, CorruptRecord]);
    }
    match op.auth {
        AuthClass::Token | AuthClass::Wrapping | AuthClass::Session => {
            out.extend([Unauthenticated, Forbidden, NotFound])
        }
        // A login: no such method (404), an address outside the bound CIDRs (403).
        AuthClass::Login => out.extend([Forbidden, NotFound]),
        AuthClass::None => {}
    }
    if op.effect == Effect::Change {
        out.insert(Conflict);
    }
    if matches!(method, HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch) {
        out.extend([BodyTooLarge, UnsupportedMediaType]);
    }
    if side == Side::Vault {
        // The Vault front door reads every request's body, whatever the method.
        out.insert(BodyTooLarge);
    }
    match op.effect {
        Effect::Proxy => out.extend([
            InvalidProxyRequest,
            CredentialIncomplete,
            UpstreamForbidden,
            UpstreamUnreachable,
            UpstreamEncoded,
            UpstreamInvalid,
            UpstreamTimeout,
        ]),
        Effect::Init => {
            out.insert(AlreadyInitialized);
        }
        _ => {}
    }
    if op.id == "audit.anchor" {
        out.insert(AnchorFailed);
    }
    if op.id == "audit.archive" {
        out.insert(ArchiveFailed);
    }
    out
}

/// Completes the native document.
pub(super) fn native(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("kw_…").build()),
    );
    describe_proxy_calls(doc);
    complete(doc, Side::Native);
}

/// Completes the Vault-side document.
pub(super) fn vault(doc: &mut OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .add_security_scheme("vault_token", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Vault-Token"))));
    complete(doc, Side::Vault);
}

/// The credential proxy's calls: any method, any body; the upstream's answer is relayed.
fn describe_proxy_calls(doc: &mut OpenApi) {
    use utoipa::openapi::path::OperationBuilder;
    for op in operations().iter().filter(|op| op.effect == Effect::Proxy) {
        let Some(route) = &op.native else { continue };
        let b = OperationBuilder::new()
            .tag("proxy")
            .summary(Some(op.summary))
            .description(Some(
                "The request goes to the route's upstream with the credential injected; the upstream's status, \
                 headers and body are relayed (with the credential scrubbed from them).",
            ))
            .response("default", ResponseBuilder::new().description("The upstream's answer, relayed").build());
        doc.paths.add_path_operation(route.path.replace("{*", "{"), PROXY_METHODS.to_vec(), b.build());
    }
}

fn complete(doc: &mut OpenApi, side: Side) {
    let index = index(side);
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, doc_op) in operations_mut(item) {
            let Some(ops) = index.get(&(path.clone(), method_name(&method))) else { continue };
            let Some(first) = ops.first() else { continue };
            let id = if ops.len() == 1 {
                first.id.to_owned()
            } else {
                ops.iter().map(|o| o.id).collect::<Vec<_>>().join("+")
            };
            let prefix = if side == Side::Vault { "vault." } else { "" };
            doc_op.operation_id = Some(format!("{prefix}{id}.{}", method_name(&method)));
            if doc_op.summary.is_none() {
                doc_op.summary = Some(first.summary.to_owned());
            }
            path_parameters(path, doc_op);
            let scheme = match side {
                Side::Native => "bearer",
                Side::Vault => "vault_token",
            };
            doc_op.security = Some(if first.auth.needs_token() {
                vec![SecurityRequirement::new::<_, _, &str>(scheme, [])]
            } else {
                vec![]
            });
            let mut by_status: BTreeMap<u16, Vec<ErrorCode>> = BTreeMap::new();
            for code in ops.iter().flat_map(|op| codes(op, &method, side)) {
                let status = match side {
                    Side::Native => code.status(),
                    Side::Vault => code.vault_status(),
                };
                let list = by_status.entry(status).or_default();
                if !list.contains(&code) {
                    list.push(code);
                }
            }
            let schema = match side {
                Side::Native => "ErrorBody",
                Side::Vault => "VaultErrors",
            };
            let responses = &mut doc_op.responses.responses;
            if responses.contains_key("default") {
                continue;
            }
            for (status, codes) in by_status {
                let described: Vec<String> =
                    codes.iter().map(|c| format!("`{}`: {}", c.as_str(), c.meaning())).collect();
                let response = ResponseBuilder::new()
                    .description(described.join("\n\n"))
                    .content(
                        "application/json",
                        ContentBuilder::new().schema(Some(Ref::from_schema_name(schema))).build(),
                    )
                    .build();
                responses.insert(status.to_string(), RefOr::T(response));
            }
        }
    }
}

/// Gives every `{param}` of the path a required string parameter.
fn path_parameters(path: &str, op: &mut DocOperation) {
    let params = op.parameters.get_or_insert_with(Vec::new);
    for name in path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))) {
        let description = match name {
            "path" | "rest" => "A path of one or more segments separated by `/`",
            "mount" => "A mount (project) name",
            _ => "One path segment",
        };
        let mut string = ObjectBuilder::new().schema_type(Type::String).min_length(Some(1));
        if name == "mount" {
            // The dev server's mounts, so a fuzzer reaches past "not found".
            let transit = ["/encrypt/", "/decrypt/", "/rewrap/", "/datakey/", "/keys"];
            let example = if path.starts_with("/v1/{mount}") && transit.iter().any(|t| path.contains(t)) {
                "transit"
            } else {
                "secret"
            };
            string = string.examples([serde_json::json!(example)]);
        }
        match params.iter_mut().find(|p| p.name == name && p.parameter_in == ParameterIn::Path) {
            Some(p) => {
                if p.schema.is_none() {
                    p.schema = Some(string.into());
                }
            }
            None => params.push(
                ParameterBuilder::new()
                    .name(name)
                    .parameter_in(ParameterIn::Path)
                    .required(Required::True)
                    .description(Some(description))
                    .schema(Some(string))
                    .build(),
            ),
        }
    }
}
