//! The Vault-compatible API's document, built from the operation table (its routes are matched
//! by the pipeline, not by axum). `LIST` is documented as `GET …?list=true`; a mount is the
//! `{mount}` parameter (Vault's `generic_mount_paths`).
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::request_body::RequestBodyBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, SchemaType, Type};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, Required, ResponseBuilder};
use utoipa::OpenApi as _;

use crate::pipeline::{operations, VaultOp};
use crate::vault::probes;
use crate::wire;

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "keyward (Vault-compatible API)",
        description = "The subset of HashiCorp Vault's HTTP API that keyward \
        serves under /v1: KV v2, Transit, tokens, policies, mounts and the probes. Errors are {\"errors\": [\"…\"]}."
    ),
    paths(probes::health, probes::seal_status, probes::init_status, probes::init, super::serve_vault),
    components(schemas(wire::Health, wire::InitResponse))
)]
struct ProbeDoc;

/// The OpenAPI path of a Vault route template: `/v1/{mount}/data/{path}`.
pub(super) fn openapi_path(template: &str) -> String {
    let p = template.replace("{kv}", "{mount}").replace("{transit}", "{mount}").replace("{*", "{");
    format!("/v1/{p}")
}

fn tag(template: &str) -> &'static str {
    match template.split('/').next() {
        Some("sys") => "vault-sys",
        Some("auth") => "vault-token",
        Some("{transit}") => "vault-transit",
        _ => "vault-kv",
    }
}

/// The document: the probes as their handlers declare them, every other Vault route from the
/// table with Vault's response envelope.
pub(super) fn document() -> OpenApi {
    let mut doc = ProbeDoc::openapi();
    let components = doc.components.get_or_insert_with(Default::default);
    components.schemas.insert("VaultResponse".into(), envelope().into());
    components.schemas.insert("VaultErrors".into(), errors().into());
    let envelope_ok = || {
        ResponseBuilder::new()
            .description("Vault's response envelope")
            .content(
                "application/json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name("VaultResponse"))).build(),
            )
            .build()
    };
    for op in operations() {
        let Some(route) = &op.vault else { continue };
        let path = openapi_path(route.path);
        let mut methods = Vec::new();
        let mut list = false;
        for vop in route.ops {
            match vop {
                VaultOp::Read => methods.push(HttpMethod::Get),
                VaultOp::List => {
                    list = true;
                    methods.push(HttpMethod::Get);
                }
                VaultOp::Write => methods.extend([HttpMethod::Post, HttpMethod::Put]),
                VaultOp::Patch => methods.push(HttpMethod::Patch),
                VaultOp::Delete => methods.push(HttpMethod::Delete),
            }
        }
        methods.dedup();
        for method in methods {
            let declared =
                doc.paths.paths.get(&path).is_some_and(|item| super::complete::operation(item, &method).is_some());
            if declared {
                continue;
            }
            let mut b = OperationBuilder::new()
                .tag(tag(route.path))
                .summary(Some(op.summary))
                .response("200", envelope_ok())
                .response("204", ResponseBuilder::new().description("Done, no body").build());
            if list && method == HttpMethod::Get {
                // A path that also answers a plain read (`{kv}/metadata/…`) takes `list` optionally.
                let read_too = operations()
                    .iter()
                    .any(|o| o.vault.as_ref().is_some_and(|r| r.path == route.path && r.ops.contains(&VaultOp::Read)));
                if !read_too {
                    b = b.response(
                        "405",
                        ResponseBuilder::new()
                            .description("Without `list=true`: this path answers only LIST")
                            .content(
                                "application/json",
                                ContentBuilder::new().schema(Some(Ref::from_schema_name("VaultErrors"))).build(),
                            )
                            .build(),
                    );
                }
                b = b.parameter(
                    ParameterBuilder::new()
                        .name("list")
                        .parameter_in(ParameterIn::Query)
                        .required(if read_too { Required::False } else { Required::True })
                        .description(Some("`true`: list the keys under the path (Vault's LIST)"))
                        .schema(Some(ObjectBuilder::new().schema_type(Type::Boolean))),
                );
            }
            if matches!(method, HttpMethod::Post | HttpMethod::Put | HttpMethod::Patch) {
                let content_type =
                    if method == HttpMethod::Patch { "application/merge-patch+json" } else { "application/json" };
                let body = request_fields(op.id);
                b = b.request_body(Some(
                    RequestBodyBuilder::new()
                        .content(content_type, ContentBuilder::new().schema(Some(body)).build())
                        .build(),
                ));
            }
            doc.paths.add_path_operation(path.clone(), vec![method], b.build());
        }
    }
    doc
}

/// The body an operation reads: its main fields (as Vault names them), others allowed.
fn request_fields(op: &str) -> ObjectBuilder {
    let fields: &[(&str, bool, Type)] = match op {
        "secrets.write" | "secrets.patch" => &[("data", true, Type::Object)],
        "transit.encrypt" => &[("plaintext", true, Type::String)],
        "transit.decrypt" | "transit.rewrap" => &[("ciphertext", true, Type::String)],
        "policies.write" | "policies.write-legacy" => &[("policy", true, Type::String)],
        "mounts.create" => &[("type", true, Type::String)],
        "tokens.lookup" | "tokens.revoke" | "tokens.renew" => &[("token", true, Type::String)],
        "tokens.lookup-accessor" | "tokens.revoke-accessor" => &[("accessor", true, Type::String)],
        "tokens.create" | "tokens.create-orphan" => {
            &[("ttl", false, Type::String), ("display_name", false, Type::String)]
        }
        _ => &[],
    };
    let mut b = ObjectBuilder::new().schema_type(Type::Object).description(Some("The operation's fields"));
    for (name, required, schema) in fields {
        b = b.property(*name, ObjectBuilder::new().schema_type(schema.clone()));
        if *required {
            b = b.required(*name);
        }
    }
    b
}

/// `{request_id, lease_id, renewable, lease_duration, data, wrap_info, warnings, auth}`.
fn envelope() -> ObjectBuilder {
    let nullable_object = || ObjectBuilder::new().schema_type(SchemaType::Array(vec![Type::Object, Type::Null]));
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some("Vault's response envelope"))
        .property("request_id", ObjectBuilder::new().schema_type(Type::String))
        .property("lease_id", ObjectBuilder::new().schema_type(Type::String))
        .property("renewable", ObjectBuilder::new().schema_type(Type::Boolean))
        .property("lease_duration", ObjectBuilder::new().schema_type(Type::Integer))
        .property("data", nullable_object())
        .property("wrap_info", nullable_object())
        .property(
            "warnings",
            ArrayBuilder::new()
                .schema_type(SchemaType::Array(vec![Type::Array, Type::Null]))
                .items(ObjectBuilder::new().schema_type(Type::String)),
        )
        .property("auth", nullable_object())
}

/// `{"errors": ["…"]}`.
fn errors() -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .property("errors", ArrayBuilder::new().items(ObjectBuilder::new().schema_type(Type::String)))
        .required("errors")
}
