//! The table of operations: every route of the server, with its auth class, the capability it
//! needs and when its audit entry commits. The native router and the Vault dispatcher are made
//! from it; `docs/capabilities.md` is generated from it (and a test keeps the two equal).
use axum::http::Method;
use keyward_api::paths;
use keyward_core::Capability::{Create, Delete, Destroy, List, Patch, Read, Sudo, Update, Use};

use super::{AuthClass, Effect, NativeRoute, Need, Operation, VaultOp, VaultRoute};
use crate::proxy::{call as proxy_call, routes as proxy};
use crate::routes::{audit, backup, keys, mounts, policies, secrets, tokens};
use crate::ui::{admin as ui_admin, assets as ui_assets, login as ui_login, secrets as ui_secrets};
use crate::vault::{auth as vauth, jwt as vjwt, kv, probes, sys as vsys, token as vtoken, transit, wrapping as vwrap};

/// A secret: `<mount>/<path>`.
const SECRET: &str = "{mount}/{path}";

macro_rules! native {
    ($method:expr, $path:expr, $handler:path) => {
        Some(NativeRoute { method: $method, path: $path, handler: |c, r| Box::pin($handler(c, r)) })
    };
}

macro_rules! vault {
    ([$($op:ident),+], $path:literal, $handler:path) => {
        Some(VaultRoute { ops: &[$(VaultOp::$op),+], path: $path, handler: |c, r| Box::pin($handler(c, r)) })
    };
}

fn op(id: &'static str, summary: &'static str, need: Need, effect: Effect) -> Operation {
    let auth = if need == Need::Nothing { AuthClass::None } else { AuthClass::Token };
    Operation { id, summary, auth, need, effect, native: None, vault: None }
}

/// An operation of auth class `wrapping`: a wrapping token, presented or in the body.
fn wrapping(id: &'static str, summary: &'static str, effect: Effect) -> Operation {
    Operation { id, summary, auth: AuthClass::Wrapping, need: Need::WrappingToken, effect, native: None, vault: None }
}

/// A login: no token; the request carries the credentials.
fn login(id: &'static str, summary: &'static str) -> Operation {
    Operation {
        id,
        summary,
        auth: AuthClass::Login,
        need: Need::Nothing,
        effect: Effect::Change,
        native: None,
        vault: None,
    }
}

/// A page or call of the web UI: a session (auth class `session`).
fn ui(id: &'static str, summary: &'static str, need: Need, effect: Effect) -> Operation {
    Operation { id, summary, auth: AuthClass::Session, need, effect, native: None, vault: None }
}

impl Operation {
    fn native(mut self, route: Option<NativeRoute>) -> Self {
        self.native = route;
        self
    }

    fn vault(mut self, route: Option<VaultRoute>) -> Self {
        self.vault = route;
        self
    }
}

/// Every operation, grouped by what it is about.
pub(super) fn operations() -> Vec<Operation> {
    use Effect::{Change, Init, Probe, Proxy, Read as Reads};
    let get = Some(Method::GET);
    let post = Some(Method::POST);
    let put = Some(Method::PUT);
    let patch = Some(Method::PATCH);
    let delete = Some(Method::DELETE);
    vec![
        // Probes, initialisation and the API document: no token.
        op("sys.health", "Health: initialised, sealed (keys not loadable), audit sink state", Need::Nothing, Probe)
            .vault(vault!([Read], "sys/health", probes::health)),
        op("sys.seal-status", "Seal status (keyward is never sealed while it can serve)", Need::Nothing, Probe)
            .vault(vault!([Read], "sys/seal-status", probes::seal_status)),
        op("sys.init-status", "Whether the database is initialised", Need::Nothing, Probe).vault(vault!(
            [Read],
            "sys/init",
            probes::init_status
        )),
        op("sys.init", "Initialise once: keys and the root token, with the chain's first entry", Need::Nothing, Init)
            .vault(vault!([Write], "sys/init", probes::init)),
        op("api.openapi", "The OpenAPI document of the native API", Need::Nothing, Reads).native(native!(
            get.clone(),
            paths::OPENAPI,
            crate::openapi::serve_native
        )),
        op("api.openapi-vault", "The OpenAPI document of the Vault-compatible API", Need::Nothing, Reads)
            .vault(vault!([Read], "sys/internal/specs/openapi", crate::openapi::serve_vault)),
        // Mounts.
        op("mounts.list", "The mounts the caller may see", Need::SudoOrAny("sys/mounts"), Reads)
            .native(native!(get.clone(), paths::MOUNTS, mounts::list))
            .vault(vault!([Read], "sys/mounts", vsys::list_mounts)),
        op("mounts.read", "A mount the caller may see", Need::SudoOrAny("sys/mounts"), Reads).vault(vault!(
            [Read],
            "sys/mounts/{mount}",
            vsys::read_mount
        )),
        op("mounts.preflight", "The mount holding a path (KV version detection)", Need::SudoOrAny("sys/mounts"), Reads)
            .vault(vault!([Read], "sys/internal/ui/mounts/{*path}", vsys::ui_mount)),
        op("mounts.create", "Create a kv or transit mount", Need::Cap(Sudo, "sys/mounts"), Change)
            .native(native!(post.clone(), paths::MOUNTS, mounts::create))
            .vault(vault!([Write], "sys/mounts/{mount}", vsys::create_mount)),
        op("mounts.tune.read", "A mount's tuning", Need::SudoOrAny("sys/mounts"), Reads).vault(vault!(
            [Read],
            "sys/mounts/{mount}/tune",
            vsys::read_tune
        )),
        op(
            "mounts.tune.write",
            "Tune a mount (description, lease TTLs, KV version 1 to 2)",
            Need::Cap(Sudo, "sys/mounts"),
            Change,
        )
        .vault(vault!([Write], "sys/mounts/{mount}/tune", vsys::write_tune)),
        op("mounts.delete", "Delete a mount, crypto-shredding it", Need::Cap(Sudo, "sys/mounts"), Change)
            .native(native!(delete.clone(), paths::MOUNT, mounts::delete))
            .vault(vault!([Delete], "sys/mounts/{mount}", vsys::delete_mount)),
        op("kv.config.read", "A kv mount's settings", Need::InMount, Reads).vault(vault!(
            [Read],
            "{kv}/config",
            kv::read_config
        )),
        op("kv.config.write", "Change a kv mount's settings", Need::Cap(Sudo, "sys/mounts"), Change).vault(vault!(
            [Write],
            "{kv}/config",
            kv::write_config
        )),
        // Secrets.
        op("secrets.list", "Secret paths of a mount (rows the caller may list)", Need::InMount, Reads)
            .native(native!(get.clone(), paths::SECRETS, secrets::list))
            .vault(vault!([List], "{kv}/metadata/{*path}", kv::list)),
        op("secrets.read", "A secret, masked; plaintext with ?reveal=true", Need::ListOrReveal(SECRET), Reads)
            .native(native!(get.clone(), paths::SECRET, secrets::read)),
        op("secrets.reveal", "A version's plaintext", Need::Cap(Read, SECRET), Reads).vault(vault!(
            [Read],
            "{kv}/data/{*path}",
            kv::read_data
        )),
        op(
            "secrets.set",
            "Set and unset fields, as a new version (create to create, update or patch to change)",
            Need::AnyOf(&[Create, Update, Patch], SECRET),
            Change,
        )
        .native(native!(patch.clone(), paths::SECRET, secrets::write)),
        op(
            "secrets.write",
            "Replace the whole map, as a new version (create to create, update to change)",
            Need::AnyOf(&[Create, Update], SECRET),
            Change,
        )
        .vault(vault!([Write], "{kv}/data/{*path}", kv::write_data)),
        op(
            "secrets.patch",
            "Merge-patch the current version, as a new one",
            Need::AnyOf(&[Patch, Update], SECRET),
            Change,
        )
        .vault(vault!([Patch], "{kv}/data/{*path}", kv::write_data)),
        op("secrets.delete", "Delete a path with every version, for good", Need::Cap(Destroy, SECRET), Change)
            .native(native!(delete.clone(), paths::SECRET, secrets::delete))
            .vault(vault!([Delete], "{kv}/metadata/{*path}", kv::delete_metadata)),
        op("secrets.versions.delete", "Soft-delete versions", Need::Cap(Delete, SECRET), Change).vault(vault!(
            [Write],
            "{kv}/delete/{*path}",
            kv::delete_versions
        )),
        op("secrets.versions.delete-current", "Soft-delete the current version", Need::Cap(Delete, SECRET), Change)
            .vault(vault!([Delete], "{kv}/data/{*path}", kv::delete_data)),
        op("secrets.versions.undelete", "Undo soft deletes", Need::Cap(Update, SECRET), Change).vault(vault!(
            [Write],
            "{kv}/undelete/{*path}",
            kv::undelete_versions
        )),
        op("secrets.versions.destroy", "Destroy versions for good", Need::Cap(Destroy, SECRET), Change).vault(vault!(
            [Write],
            "{kv}/destroy/{*path}",
            kv::destroy_versions
        )),
        // KV version 1 mounts: unversioned, at <mount>/<path>.
        op("kv1.read", "A KV version 1 secret's plaintext", Need::Cap(Read, SECRET), Reads).vault(vault!(
            [Read],
            "{kv1}/{*path}",
            kv::v1_read
        )),
        op("kv1.write", "Replace a KV version 1 secret", Need::AnyOf(&[Create, Update], SECRET), Change).vault(vault!(
            [Write],
            "{kv1}/{*path}",
            kv::v1_write
        )),
        op("kv1.delete", "Delete a KV version 1 secret", Need::Cap(Delete, SECRET), Change).vault(vault!(
            [Delete],
            "{kv1}/{*path}",
            kv::v1_delete
        )),
        op("kv1.list", "Secret paths of a KV version 1 mount (rows the caller may list)", Need::InMount, Reads)
            .vault(vault!([List], "{kv1}/{*path}", kv::list)),
        op("secrets.history", "Stored versions (times, authors, field names)", Need::Cap(List, SECRET), Reads)
            .native(native!(get.clone(), paths::HISTORY, secrets::history)),
        op("secrets.metadata", "A secret's metadata and versions", Need::Cap(List, SECRET), Reads).vault(vault!(
            [Read],
            "{kv}/metadata/{*path}",
            kv::read_metadata
        )),
        op(
            "secrets.metadata.write",
            "Change a secret's metadata (create to create it, update to change it)",
            Need::AnyOf(&[Create, Update], SECRET),
            Change,
        )
        .vault(vault!([Write, Patch], "{kv}/metadata/{*path}", kv::write_metadata)),
        op("secrets.subkeys", "A map's keys, leaves null", Need::Cap(List, SECRET), Reads).vault(vault!(
            [Read],
            "{kv}/subkeys/{*path}",
            kv::subkeys
        )),
        op("secrets.rollback", "A new version equal to an older one", Need::Cap(Update, SECRET), Change)
            .native(native!(post.clone(), paths::ROLLBACK, secrets::rollback)),
        op("secrets.diff", "Names that differ between two paths", Need::Resolved(Read, "both secrets compared"), Reads)
            .native(native!(get.clone(), paths::DIFF, secrets::diff)),
        op("secrets.stale", "Fields past their rotation limit", Need::Cap(List, "sys/stale"), Reads).native(native!(
            get.clone(),
            paths::STALE,
            secrets::stale
        )),
        // Tokens.
        op("tokens.create", "Create a token under the caller", Need::Cap(Sudo, "sys/tokens"), Change)
            .native(native!(post.clone(), paths::TOKENS, tokens::create))
            .vault(vault!([Write], "auth/token/create", vtoken::create)),
        op("tokens.create-orphan", "Create a token without a parent", Need::Cap(Sudo, "sys/tokens"), Change)
            .vault(vault!([Write], "auth/token/create-orphan", vtoken::create_orphan)),
        op(
            "tokens.create-with-role",
            "Create a token within a token role's allowed policies",
            Need::Cap(Update, "auth/token/create/{name}"),
            Change,
        )
        .vault(vault!([Write], "auth/token/create/{name}", vtoken::create_with_role)),
        op("tokens.roles.list", "Token roles", Need::Cap(List, "auth/token/roles"), Reads).vault(vault!(
            [List],
            "auth/token/roles",
            vtoken::list_roles
        )),
        op(
            "tokens.role.write",
            "Write a token role (its writer holds every policy it allows)",
            Need::Cap(Update, "auth/token/roles/{name}"),
            Change,
        )
        .vault(vault!([Write], "auth/token/roles/{name}", vtoken::write_role)),
        op("tokens.role.read", "A token role", Need::Cap(Read, "auth/token/roles/{name}"), Reads).vault(vault!(
            [Read],
            "auth/token/roles/{name}",
            vtoken::read_role
        )),
        op("tokens.role.delete", "Delete a token role", Need::Cap(Delete, "auth/token/roles/{name}"), Change)
            .vault(vault!([Delete], "auth/token/roles/{name}", vtoken::delete_role)),
        op("tokens.list", "Token records (never token values)", Need::Cap(Sudo, "sys/tokens"), Reads)
            .native(native!(get.clone(), paths::TOKENS, tokens::list))
            .vault(vault!([List], "auth/token/accessors", vtoken::accessors)),
        // Response wrapping.
        wrapping("sys.wrapping.unwrap", "Unwrap a wrapped response, once", Change).vault(vault!(
            [Write],
            "sys/wrapping/unwrap",
            vwrap::unwrap
        )),
        wrapping("sys.wrapping.lookup", "What a wrapping token holds, without unwrapping it", Reads).vault(vault!(
            [Read, Write],
            "sys/wrapping/lookup",
            vwrap::lookup
        )),
        wrapping("sys.wrapping.rewrap", "Move a wrapped response to a new wrapping token", Change).vault(vault!(
            [Write],
            "sys/wrapping/rewrap",
            vwrap::rewrap
        )),
        op(
            "sys.wrapping.wrap",
            "Wrap the body (X-Vault-Wrap-TTL required)",
            Need::Cap(Update, "sys/wrapping/wrap"),
            Reads,
        )
        .vault(vault!([Write], "sys/wrapping/wrap", vwrap::wrap)),
        op("sys.capabilities-self", "What the caller's token may do on Vault paths", Need::Default, Reads)
            .vault(vault!([Write], "sys/capabilities-self", vsys::capabilities_self)),
        op(
            "sys.capabilities",
            "What a token given in the body may do on Vault paths",
            Need::Cap(Sudo, "sys/tokens"),
            Reads,
        )
        .vault(vault!([Write], "sys/capabilities", vsys::capabilities_token)),
        op(
            "sys.capabilities-accessor",
            "What the token with an accessor may do on Vault paths",
            Need::Cap(Sudo, "sys/tokens"),
            Reads,
        )
        .vault(vault!([Write], "sys/capabilities-accessor", vsys::capabilities_accessor)),
        op("tokens.lookup-self", "The caller's own token", Need::Default, Reads)
            .native(native!(get.clone(), paths::TOKEN_SELF, tokens::lookup_self))
            .vault(vault!([Read, Write], "auth/token/lookup-self", vtoken::lookup_self)),
        op("tokens.revoke-self", "Revoke the caller's token and its descendants", Need::Default, Change)
            .native(native!(post.clone(), paths::TOKEN_SELF_REVOKE, tokens::revoke_self))
            .vault(vault!([Write], "auth/token/revoke-self", vtoken::revoke_self)),
        op("tokens.renew-self", "Renew the caller's token", Need::Default, Change).vault(vault!(
            [Write],
            "auth/token/renew-self",
            vtoken::renew_self
        )),
        op("tokens.lookup", "A token given in the body", Need::DefaultOr(Sudo, "sys/tokens"), Reads)
            .native(native!(post.clone(), paths::TOKEN_LOOKUP, tokens::lookup))
            .vault(vault!([Write], "auth/token/lookup", vtoken::lookup)),
        op("tokens.revoke", "Revoke a token given in the body", Need::DefaultOr(Sudo, "sys/tokens"), Change)
            .native(native!(post.clone(), paths::TOKEN_REVOKE, tokens::revoke))
            .vault(vault!([Write], "auth/token/revoke", vtoken::revoke)),
        op("tokens.renew", "Renew a token given in the body", Need::DefaultOr(Sudo, "sys/tokens"), Change)
            .vault(vault!([Write], "auth/token/renew", vtoken::renew)),
        op("tokens.lookup-accessor", "A token by accessor", Need::DefaultOr(Sudo, "sys/tokens"), Reads)
            .native(native!(get.clone(), paths::TOKEN_ACCESSOR, tokens::lookup_accessor))
            .vault(vault!([Write], "auth/token/lookup-accessor", vtoken::lookup_accessor)),
        op("tokens.revoke-accessor", "Revoke a token by accessor", Need::DefaultOr(Sudo, "sys/tokens"), Change)
            .native(native!(delete.clone(), paths::TOKEN_ACCESSOR, tokens::revoke_accessor))
            .vault(vault!([Write], "auth/token/revoke-accessor", vtoken::revoke_accessor)),
        // Policies.
        op("policies.list", "Policy names", Need::Cap(Sudo, "sys/policies"), Reads)
            .native(native!(get.clone(), paths::POLICIES, policies::list))
            .vault(vault!([List], "sys/policies/acl", vsys::list_policies)),
        op("policies.list-legacy", "Policy names (Vault's legacy path)", Need::Cap(Sudo, "sys/policies"), Reads)
            .vault(vault!([Read], "sys/policy", vsys::list_policies_legacy)),
        op("policies.read", "A policy", Need::Cap(Sudo, "sys/policies"), Reads)
            .native(native!(get.clone(), paths::POLICY, policies::read))
            .vault(vault!([Read], "sys/policies/acl/{name}", vsys::read_policy)),
        op("policies.read-legacy", "A policy (legacy: `rules`)", Need::Cap(Sudo, "sys/policies"), Reads).vault(vault!(
            [Read],
            "sys/policy/{name}",
            vsys::read_policy_legacy
        )),
        op("policies.write", "Create or replace a policy", Need::Cap(Sudo, "sys/policies"), Change)
            .native(native!(put.clone(), paths::POLICY, policies::write))
            .vault(vault!([Write], "sys/policies/acl/{name}", vsys::write_policy)),
        op(
            "policies.write-legacy",
            "Create or replace a policy (legacy path)",
            Need::Cap(Sudo, "sys/policies"),
            Change,
        )
        .vault(vault!([Write], "sys/policy/{name}", vsys::write_policy)),
        op("policies.delete", "Delete a policy", Need::Cap(Sudo, "sys/policies"), Change)
            .native(native!(delete.clone(), paths::POLICY, policies::delete))
            .vault(vault!([Delete], "sys/policies/acl/{name}", vsys::delete_policy)),
        op("policies.delete-legacy", "Delete a policy (legacy path)", Need::Cap(Sudo, "sys/policies"), Change)
            .vault(vault!([Delete], "sys/policy/{name}", vsys::delete_policy)),
        // Keys.
        op("keys.status", "Master keys and data-key versions", Need::Cap(Sudo, "sys/keys"), Reads).native(native!(
            get.clone(),
            paths::KEYS,
            keys::status
        )),
        op("keys.rotate", "Add a data-key version to a mount", Need::Cap(Sudo, "sys/keys"), Change).native(native!(
            post.clone(),
            paths::KEYS_ROTATE,
            keys::rotate
        )),
        op("keys.prune", "Delete unused older data-key versions", Need::Cap(Sudo, "sys/keys"), Change).native(native!(
            post.clone(),
            paths::KEYS_PRUNE,
            keys::prune
        )),
        op("keys.rewrap", "Re-wrap every key under the active master key", Need::Cap(Sudo, "sys/keys"), Change)
            .native(native!(post.clone(), paths::KEYS_REWRAP, keys::rewrap)),
        op("keys.migrate", "Start re-encrypting under the newest data keys", Need::Cap(Sudo, "sys/keys"), Change)
            .native(native!(post.clone(), paths::KEYS_MIGRATE, keys::migrate)),
        op("keys.jobs", "Key jobs", Need::Cap(Sudo, "sys/keys"), Reads).native(native!(
            get.clone(),
            paths::KEY_JOBS,
            keys::jobs
        )),
        op("keys.job", "A key job", Need::Cap(Sudo, "sys/keys"), Reads).native(native!(
            get.clone(),
            paths::KEY_JOB,
            keys::job
        )),
        op("doctor", "Check every key (and every blob with verify_all)", Need::Cap(Sudo, "sys/keys"), Reads)
            .native(native!(get.clone(), paths::DOCTOR, keys::doctor)),
        // Login methods (`sudo` on sys/auth), and AppRole: each identity's paths need a
        // capability of their own, which `sudo` on sys/auth does not give.
        op("auth.methods.list", "The enabled login methods", Need::Cap(Sudo, "sys/auth"), Reads).vault(vault!(
            [Read],
            "sys/auth",
            vauth::list_auth
        )),
        op("auth.methods.enable", "Enable a login method", Need::Cap(Sudo, "sys/auth"), Change).vault(vault!(
            [Write],
            "sys/auth/{path}",
            vauth::enable_auth
        )),
        op("auth.methods.disable", "Disable a login method, revoking its tokens", Need::Cap(Sudo, "sys/auth"), Change)
            .vault(vault!([Delete], "sys/auth/{path}", vauth::disable_auth)),
        op("approle.roles.list", "AppRole roles", Need::Cap(List, "auth/{auth}/role"), Reads).vault(vault!(
            [List],
            "auth/{approle}/role",
            vauth::list_roles
        )),
        op(
            "approle.role.write",
            "Write an AppRole role (its writer holds every policy it grants)",
            Need::Cap(Update, "auth/{auth}/role/{name}"),
            Change,
        )
        .vault(vault!([Write], "auth/{approle}/role/{name}", vauth::write_role)),
        op("approle.role.read", "An AppRole role", Need::Cap(Read, "auth/{auth}/role/{name}"), Reads).vault(vault!(
            [Read],
            "auth/{approle}/role/{name}",
            vauth::read_role
        )),
        op(
            "approle.role.delete",
            "Delete a role, its secret IDs and tokens",
            Need::Cap(Delete, "auth/{auth}/role/{name}"),
            Change,
        )
        .vault(vault!([Delete], "auth/{approle}/role/{name}", vauth::delete_role)),
        op("approle.role-id.read", "A role's role ID", Need::Cap(Read, "auth/{auth}/role/{name}/role-id"), Reads)
            .vault(vault!([Read], "auth/{approle}/role/{name}/role-id", vauth::read_role_id)),
        op(
            "approle.role-id.write",
            "Set a role's role ID",
            Need::Cap(Update, "auth/{auth}/role/{name}/role-id"),
            Change,
        )
        .vault(vault!([Write], "auth/{approle}/role/{name}/role-id", vauth::write_role_id)),
        op(
            "approle.secret-id.create",
            "A new secret ID for a role",
            Need::Cap(Update, "auth/{auth}/role/{name}/secret-id"),
            Change,
        )
        .vault(vault!([Write], "auth/{approle}/role/{name}/secret-id", vauth::create_secret_id)),
        op(
            "approle.secret-id.list",
            "A role's secret ID accessors",
            Need::Cap(List, "auth/{auth}/role/{name}/secret-id"),
            Reads,
        )
        .vault(vault!([List], "auth/{approle}/role/{name}/secret-id", vauth::list_secret_ids)),
        op(
            "approle.secret-id.lookup",
            "A secret ID's record",
            Need::Cap(Update, "auth/{auth}/role/{name}/secret-id/lookup"),
            Reads,
        )
        .vault(vault!([Write], "auth/{approle}/role/{name}/secret-id/lookup", vauth::lookup_secret_id)),
        op(
            "approle.secret-id.destroy",
            "Destroy a secret ID, revoking its tokens",
            Need::Cap(Update, "auth/{auth}/role/{name}/secret-id/destroy"),
            Change,
        )
        .vault(vault!(
            [Write, Delete],
            "auth/{approle}/role/{name}/secret-id/destroy",
            vauth::destroy_secret_id
        )),
        op(
            "approle.secret-id-accessor.lookup",
            "A secret ID's record, by accessor",
            Need::Cap(Update, "auth/{auth}/role/{name}/secret-id-accessor/lookup"),
            Reads,
        )
        .vault(vault!(
            [Write],
            "auth/{approle}/role/{name}/secret-id-accessor/lookup",
            vauth::lookup_secret_id
        )),
        op(
            "approle.secret-id-accessor.destroy",
            "Destroy a secret ID by accessor, revoking its tokens",
            Need::Cap(Update, "auth/{auth}/role/{name}/secret-id-accessor/destroy"),
            Change,
        )
        .vault(vault!(
            [Write, Delete],
            "auth/{approle}/role/{name}/secret-id-accessor/destroy",
            vauth::destroy_secret_id
        )),
        login("approle.login", "Log in with a role ID and secret ID").vault(vault!(
            [Write],
            "auth/{approle}/login",
            vauth::login
        )),
        op("userpass.users.list", "Userpass users", Need::Cap(List, "auth/{auth}/users"), Reads).vault(vault!(
            [List],
            "auth/{userpass}/users",
            vauth::list_users
        )),
        op(
            "userpass.user.write",
            "Create or update a user (its writer holds every policy it grants)",
            Need::Cap(Update, "auth/{auth}/users/{name}"),
            Change,
        )
        .vault(vault!([Write], "auth/{userpass}/users/{name}", vauth::write_user)),
        op(
            "userpass.user.read",
            "A user (never its password or TOTP seed)",
            Need::Cap(Read, "auth/{auth}/users/{name}"),
            Reads,
        )
        .vault(vault!([Read], "auth/{userpass}/users/{name}", vauth::read_user)),
        op(
            "userpass.user.delete",
            "Delete a user, revoking its tokens",
            Need::Cap(Delete, "auth/{auth}/users/{name}"),
            Change,
        )
        .vault(vault!([Delete], "auth/{userpass}/users/{name}", vauth::delete_user)),
        op(
            "userpass.password",
            "Set a user's password, revoking its tokens",
            Need::Cap(Update, "auth/{auth}/users/{name}/password"),
            Change,
        )
        .vault(vault!([Write], "auth/{userpass}/users/{name}/password", vauth::set_password)),
        op(
            "userpass.totp.enroll",
            "Start TOTP enrolment: a new seed as an otpauth URI",
            Need::EnrolOr(Update, "auth/{auth}/users/{name}/totp/enroll"),
            Change,
        )
        .vault(vault!([Write], "auth/{userpass}/users/{name}/totp/enroll", vauth::totp_enroll)),
        op(
            "userpass.totp.confirm",
            "Complete TOTP enrolment with a code",
            Need::EnrolOr(Update, "auth/{auth}/users/{name}/totp/enroll"),
            Change,
        )
        .vault(vault!([Write], "auth/{userpass}/users/{name}/totp/confirm", vauth::totp_confirm)),
        op(
            "userpass.totp.reset",
            "Reset a user's TOTP enrolment, revoking its tokens",
            Need::Cap(Update, "auth/{auth}/users/{name}/totp/reset"),
            Change,
        )
        .vault(vault!([Write], "auth/{userpass}/users/{name}/totp/reset", vauth::totp_reset)),
        login("userpass.login", "Log in with a password and a TOTP code").vault(vault!(
            [Write],
            "auth/{userpass}/login/{name}",
            vauth::login_user
        )),
        // JWT login method.
        op(
            "jwt.config.write",
            "Configure a JWT method's keys and issuer",
            Need::Cap(Update, "auth/{auth}/config"),
            Change,
        )
        .vault(vault!([Write], "auth/{jwt}/config", vjwt::write_config)),
        op("jwt.config.read", "A JWT method's config", Need::Cap(Read, "auth/{auth}/config"), Reads).vault(vault!(
            [Read],
            "auth/{jwt}/config",
            vjwt::read_config
        )),
        op("jwt.roles.list", "JWT roles", Need::Cap(List, "auth/{auth}/role"), Reads).vault(vault!(
            [List],
            "auth/{jwt}/role",
            vjwt::list_roles
        )),
        op(
            "jwt.role.write",
            "Write a JWT role (its writer holds every policy it grants)",
            Need::Cap(Update, "auth/{auth}/role/{name}"),
            Change,
        )
        .vault(vault!([Write], "auth/{jwt}/role/{name}", vjwt::write_role)),
        op("jwt.role.read", "A JWT role", Need::Cap(Read, "auth/{auth}/role/{name}"), Reads).vault(vault!(
            [Read],
            "auth/{jwt}/role/{name}",
            vjwt::read_role
        )),
        op("jwt.role.delete", "Delete a JWT role and its tokens", Need::Cap(Delete, "auth/{auth}/role/{name}"), Change)
            .vault(vault!([Delete], "auth/{jwt}/role/{name}", vjwt::delete_role)),
        login("jwt.login", "Log in with a JWT the platform signed").vault(vault!(
            [Write],
            "auth/{jwt}/login",
            vjwt::login
        )),
        // Audit.
        op("audit.search", "Search and tail the log", Need::Cap(Sudo, "sys/audit"), Reads).native(native!(
            get.clone(),
            paths::AUDIT,
            audit::search
        )),
        op("audit.verify", "Verify the chain against its head and anchor", Need::Cap(Sudo, "sys/audit"), Reads)
            .native(native!(get.clone(), paths::AUDIT_VERIFY, audit::verify)),
        op("audit.anchor", "Anchor the chain's head now", Need::Cap(Sudo, "sys/audit"), Reads).native(native!(
            post.clone(),
            paths::AUDIT_ANCHOR,
            audit::anchor
        )),
        op("audit.archive", "Archive old entries into the archive directory", Need::Cap(Sudo, "sys/audit"), Change)
            .native(native!(post.clone(), paths::AUDIT_ARCHIVE, audit::archive)),
        // Metrics.
        op(
            "sys.metrics",
            "Metrics: Prometheus text with ?format=prometheus, else JSON",
            Need::Cap(Read, "sys/metrics"),
            Reads,
        )
        .vault(vault!([Read], "sys/metrics", crate::metrics::serve)),
        // Backups.
        op("sys.backup", "Take an online, consistent, encrypted backup", Need::Cap(Sudo, "sys/backup"), Reads)
            .native(native!(post.clone(), paths::BACKUP, backup::backup)),
        // The credential proxy.
        op("proxy.routes.list", "Proxy routes", Need::Cap(Sudo, "sys/proxy"), Reads).native(native!(
            get.clone(),
            paths::PROXY_ROUTES,
            proxy::list
        )),
        op("proxy.routes.read", "A proxy route", Need::Cap(Sudo, "sys/proxy"), Reads).native(native!(
            get.clone(),
            paths::PROXY_ROUTE,
            proxy::read
        )),
        op(
            "proxy.routes.write",
            "Create or change a route (also use or read on its credential)",
            Need::Cap(Sudo, "sys/proxy"),
            Change,
        )
        .native(native!(put.clone(), paths::PROXY_ROUTE, proxy::put)),
        op("proxy.routes.delete", "Delete a route", Need::Cap(Sudo, "sys/proxy"), Change).native(native!(
            delete.clone(),
            paths::PROXY_ROUTE,
            proxy::delete
        )),
        op(
            "proxy.call",
            "Call an upstream with a credential injected (use on it)",
            Need::Resolved(Use, "the route's secret"),
            Proxy,
        )
        .native(native!(None, paths::PROXY_CALL, proxy_call)),
        op(
            "proxy.call",
            "Call an upstream with a credential injected (use on it)",
            Need::Resolved(Use, "the route's secret"),
            Proxy,
        )
        .native(native!(None, paths::PROXY_CALL_PATH, proxy_call)),
        // Transit.
        op("transit.keys.list", "Key names", Need::Cap(List, "{mount}/keys"), Reads).vault(vault!(
            [List],
            "{transit}/keys",
            transit::list_keys
        )),
        op("transit.keys.read", "A key's policy (never key material)", Need::Cap(Read, "{mount}/keys/{name}"), Reads)
            .vault(vault!([Read], "{transit}/keys/{name}", transit::read_key)),
        op("transit.keys.create", "Create a key", Need::AnyOf(&[Create, Update], "{mount}/keys/{name}"), Change)
            .vault(vault!([Write], "{transit}/keys/{name}", transit::create_key)),
        op("transit.keys.delete", "Delete a key (deletion_allowed)", Need::Cap(Delete, "{mount}/keys/{name}"), Change)
            .vault(vault!([Delete], "{transit}/keys/{name}", transit::delete_key)),
        op("transit.keys.rotate", "A new key version", Need::Cap(Update, "{mount}/keys/{name}/rotate"), Change)
            .vault(vault!([Write], "{transit}/keys/{name}/rotate", transit::rotate_key)),
        op(
            "transit.keys.trim",
            "Delete versions below min_available_version for good",
            Need::Cap(Update, "{mount}/keys/{name}/trim"),
            Change,
        )
        .vault(vault!([Write], "{transit}/keys/{name}/trim", transit::trim_key)),
        op("transit.keys.config", "A key's settings", Need::Cap(Update, "{mount}/keys/{name}/config"), Change)
            .vault(vault!([Write], "{transit}/keys/{name}/config", transit::configure_key)),
        op(
            "transit.encrypt",
            "Encrypt (update; create alone creates the key first)",
            Need::AnyOf(&[Create, Update], "{mount}/encrypt/{name}"),
            Reads,
        )
        .vault(vault!([Write], "{transit}/encrypt/{name}", transit::encrypt)),
        op("transit.decrypt", "Decrypt", Need::Cap(Update, "{mount}/decrypt/{name}"), Reads).vault(vault!(
            [Write],
            "{transit}/decrypt/{name}",
            transit::decrypt
        )),
        op("transit.rewrap", "Re-encrypt under the latest version", Need::Cap(Update, "{mount}/rewrap/{name}"), Reads)
            .vault(vault!([Write], "{transit}/rewrap/{name}", transit::rewrap)),
        op("transit.datakey", "A fresh data key", Need::Cap(Update, "{mount}/datakey/{kind}/{name}"), Reads)
            .vault(vault!([Write], "{transit}/datakey/{kind}/{name}", transit::datakey)),
        op("transit.hash", "The digest of the input", Need::Cap(Update, "{mount}/hash"), Reads).vault(vault!(
            [Write],
            "{transit}/hash",
            transit::hash
        )),
        op("transit.hash.algorithm", "The digest of the input", Need::Cap(Update, "{mount}/hash/{algorithm}"), Reads)
            .vault(vault!([Write], "{transit}/hash/{algorithm}", transit::hash)),
        op("transit.random", "Random bytes", Need::Cap(Update, "{mount}/random"), Reads).vault(vault!(
            [Write],
            "{transit}/random",
            transit::random
        )),
        op("transit.random.bytes", "Random bytes", Need::Cap(Update, "{mount}/random/{bytes}"), Reads).vault(vault!(
            [Write],
            "{transit}/random/{bytes}",
            transit::random
        )),
        op("transit.hmac", "The HMAC of the input under a key", Need::Cap(Update, "{mount}/hmac/{name}"), Reads)
            .vault(vault!([Write], "{transit}/hmac/{name}", transit::hmac)),
        op(
            "transit.hmac.algorithm",
            "The HMAC of the input under a key",
            Need::Cap(Update, "{mount}/hmac/{name}/{algorithm}"),
            Reads,
        )
        .vault(vault!([Write], "{transit}/hmac/{name}/{algorithm}", transit::hmac)),
        op(
            "transit.export",
            "An exportable key's material (a signing key's public key)",
            Need::Cap(Read, "{mount}/export/{kind}/{name}"),
            Reads,
        )
        .vault(vault!([Read], "{transit}/export/{kind}/{name}", transit::export)),
        op(
            "transit.export.version",
            "One version of an exportable key's material",
            Need::Cap(Read, "{mount}/export/{kind}/{name}/{version}"),
            Reads,
        )
        .vault(vault!([Read], "{transit}/export/{kind}/{name}/{version}", transit::export)),
        op("transit.sign", "Sign the input", Need::Cap(Update, "{mount}/sign/{name}"), Reads).vault(vault!(
            [Write],
            "{transit}/sign/{name}",
            transit::sign
        )),
        op(
            "transit.sign.algorithm",
            "Sign the input hashed with the named algorithm",
            Need::Cap(Update, "{mount}/sign/{name}/{algorithm}"),
            Reads,
        )
        .vault(vault!([Write], "{transit}/sign/{name}/{algorithm}", transit::sign)),
        op(
            "transit.backup",
            "A plaintext backup of a key that allows one (a key disclosure)",
            Need::Cap(Read, "{mount}/backup/{name}"),
            Reads,
        )
        .vault(vault!([Read], "{transit}/backup/{name}", transit::backup)),
        op(
            "transit.restore",
            "Restore a key from a backup this cluster made",
            Need::AnyOf(&[Create, Update], "{mount}/restore"),
            Change,
        )
        .vault(vault!([Write], "{transit}/restore", transit::restore)),
        op(
            "transit.restore.name",
            "Restore a key from a backup under a new name",
            Need::AnyOf(&[Create, Update], "{mount}/restore/{name}"),
            Change,
        )
        .vault(vault!([Write], "{transit}/restore/{name}", transit::restore)),
        op("transit.verify", "Verify an HMAC or a signature", Need::Cap(Update, "{mount}/verify/{name}"), Reads)
            .vault(vault!([Write], "{transit}/verify/{name}", transit::verify)),
        op(
            "transit.verify.algorithm",
            "Verify an HMAC or a signature",
            Need::Cap(Update, "{mount}/verify/{name}/{algorithm}"),
            Reads,
        )
        .vault(vault!([Write], "{transit}/verify/{name}/{algorithm}", transit::verify)),
        // The web UI (`/ui`): its assets and login page need nothing, its logins are logins, and
        // every other page is a session's.
        op("ui.assets.css", "The UI's stylesheet", Need::Nothing, Probe).native(native!(
            get.clone(),
            "/ui/assets/ui.css",
            ui_assets::css
        )),
        op("ui.assets.js", "The UI's script", Need::Nothing, Probe).native(native!(
            get.clone(),
            "/ui/assets/ui.js",
            ui_assets::js
        )),
        op("ui.login-page", "The login page", Need::Nothing, Probe).native(native!(
            get.clone(),
            "/ui/login",
            ui_login::login_page
        )),
        login("ui.login", "Log in to the UI with a password and a TOTP code").native(native!(
            post.clone(),
            "/ui/session",
            ui_login::user_login
        )),
        login("ui.login-token", "Log in to the UI with a token (an 8-hour child session)").native(native!(
            post.clone(),
            "/ui/session/token",
            ui_login::token_login
        )),
        ui("ui.logout", "Log out: revoke the session", Need::OwnSession, Change).native(native!(
            post.clone(),
            "/ui/logout",
            ui_login::logout
        )),
        ui("ui.enrol", "The TOTP enrolment page", Need::Enrolment, Reads).native(native!(
            get.clone(),
            "/ui/enrol",
            ui_login::enrol_page
        )),
        ui("ui.enrol.start", "A new TOTP seed as a QR code", Need::Enrolment, Change).native(native!(
            post.clone(),
            "/ui/enrol",
            ui_login::enrol_start
        )),
        ui("ui.enrol.confirm", "Confirm TOTP enrolment with a code", Need::Enrolment, Change).native(native!(
            post.clone(),
            "/ui/enrol/confirm",
            ui_login::enrol_confirm
        )),
        ui("ui.projects", "The projects the session may see", Need::SudoOrAny("sys/mounts"), Reads).native(native!(
            get.clone(),
            "/ui",
            ui_secrets::projects
        )),
        ui("ui.project", "A project's environments", Need::InMount, Reads).native(native!(
            get.clone(),
            "/ui/p/{mount}",
            ui_secrets::project
        )),
        ui("ui.env", "An environment's names and masked values", Need::Cap(List, SECRET), Reads).native(native!(
            get.clone(),
            "/ui/env/{mount}/{*path}",
            ui_secrets::env
        )),
        ui("ui.secrets.reveal", "One value's plaintext, for the page's script", Need::Cap(Read, SECRET), Reads)
            .native(native!(post.clone(), "/ui/api/reveal/{mount}/{*path}", ui_secrets::reveal)),
        ui("ui.secrets.set", "Set one value", Need::AnyOf(&[Create, Update, Patch], SECRET), Change).native(native!(
            post.clone(),
            "/ui/set/{mount}/{*path}",
            ui_secrets::set
        )),
        ui("ui.secrets.unset", "Remove one name", Need::AnyOf(&[Update, Patch], SECRET), Change).native(native!(
            post.clone(),
            "/ui/unset/{mount}/{*path}",
            ui_secrets::unset
        )),
        ui(
            "ui.secrets.import-preview",
            "What a .env import would change (nothing written)",
            Need::AnyOf(&[Create, Update, Patch], SECRET),
            Reads,
        )
        .native(native!(post.clone(), "/ui/import/{mount}/{*path}", ui_secrets::import_preview)),
        ui(
            "ui.secrets.import",
            "Import a .env file as one version",
            Need::AnyOf(&[Create, Update, Patch], SECRET),
            Change,
        )
        .native(native!(post.clone(), "/ui/import-commit/{mount}/{*path}", ui_secrets::import_commit)),
        ui("ui.secrets.history", "An environment's versions", Need::Cap(List, SECRET), Reads).native(native!(
            get.clone(),
            "/ui/history/{mount}/{*path}",
            ui_secrets::history
        )),
        ui("ui.secrets.rollback", "Roll back to an older version", Need::Cap(Update, SECRET), Change).native(native!(
            post.clone(),
            "/ui/rollback/{mount}/{*path}",
            ui_secrets::rollback
        )),
        ui(
            "ui.secrets.diff",
            "Names that differ between two environments",
            Need::Resolved(Read, "both environments compared"),
            Reads,
        )
        .native(native!(get.clone(), "/ui/diff/{mount}", ui_secrets::diff)),
        ui("ui.secrets.stale", "Values past their rotation limit", Need::Cap(List, "sys/stale"), Reads)
            .native(native!(get.clone(), "/ui/stale", ui_secrets::stale)),
        ui("ui.tokens", "Tokens by accessor", Need::Cap(Sudo, "sys/tokens"), Reads).native(native!(
            get.clone(),
            "/ui/tokens",
            ui_admin::tokens
        )),
        ui("ui.tokens.revoke", "Revoke a token by accessor", Need::Cap(Sudo, "sys/tokens"), Change).native(native!(
            post.clone(),
            "/ui/tokens/revoke",
            ui_admin::revoke
        )),
        ui("ui.policies", "Policy names", Need::Cap(Sudo, "sys/policies"), Reads).native(native!(
            get.clone(),
            "/ui/policies",
            ui_admin::policies
        )),
        ui("ui.policy", "A policy's rules, editable", Need::Cap(Sudo, "sys/policies"), Reads).native(native!(
            get.clone(),
            "/ui/policies/{name}",
            ui_admin::policy
        )),
        ui("ui.policy.write", "Save a policy", Need::Cap(Sudo, "sys/policies"), Change).native(native!(
            post.clone(),
            "/ui/policies/{name}",
            ui_admin::save_policy
        )),
        ui("ui.access", "Login methods, users and roles", Need::Cap(Sudo, "sys/auth"), Reads).native(native!(
            get.clone(),
            "/ui/access",
            ui_admin::access
        )),
        ui("ui.audit", "The audit log, filtered, and the chain's status", Need::Cap(Sudo, "sys/audit"), Reads)
            .native(native!(get.clone(), "/ui/audit", ui_admin::audit)),
        ui("ui.keys", "Master keys, data keys, key jobs, doctor", Need::Cap(Sudo, "sys/keys"), Reads).native(native!(
            get.clone(),
            "/ui/keys",
            ui_admin::keys
        )),
    ]
}
