//! The Vault-compatible API in the OpenAPI document, described from the operation table (its
//! routes are matched by the pipeline, not by axum). `LIST` is documented as `GET …?list=true`.
use utoipa::openapi::path::{HttpMethod, OperationBuilder, ParameterBuilder, ParameterIn};
use utoipa::openapi::response::ResponseBuilder;
use utoipa::openapi::{OpenApi, Required};

use crate::pipeline::{operations, VaultOp};

/// The OpenAPI path of a Vault route template: `/v1/{mount}/data/{path}`.
fn openapi_path(template: &str) -> String {
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

/// Adds the Vault API's paths and its `X-Vault-Token` scheme to the document.
pub(crate) fn describe(doc: &mut OpenApi) {
    use utoipa::openapi::security::{ApiKey, ApiKeyValue, SecurityScheme};
    let components = doc.components.get_or_insert_with(Default::default);
    components
        .add_security_scheme("vault_token", SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-Vault-Token"))));
    for op in operations() {
        let Some(route) = &op.vault else { continue };
        let path = openapi_path(route.path);
        let mut b = OperationBuilder::new()
            .operation_id(Some(format!("vault.{}", op.id)))
            .tag(tag(route.path))
            .summary(Some(op.summary))
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
            b = b.parameter(ParameterBuilder::new().name(seg).parameter_in(ParameterIn::Path).required(Required::True));
        }
        let mut methods = Vec::new();
        for vop in route.ops {
            match vop {
                VaultOp::Read => methods.push(HttpMethod::Get),
                VaultOp::List => {
                    b = b.parameter(
                        ParameterBuilder::new().name("list").parameter_in(ParameterIn::Query).required(Required::True),
                    );
                    methods.push(HttpMethod::Get);
                }
                VaultOp::Write => methods.extend([HttpMethod::Post, HttpMethod::Put]),
                VaultOp::Patch => methods.push(HttpMethod::Patch),
                VaultOp::Delete => methods.push(HttpMethod::Delete),
            }
        }
        methods.dedup();
        doc.paths.add_path_operation(path, methods, b.build());
    }
}
