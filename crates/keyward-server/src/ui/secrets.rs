//! Projects, environments and their values: masked tables, reveal on purpose, set and unset,
//! `.env` import with a preview, history with rollback, and the diff of two environments.
use std::collections::BTreeMap;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::{now_nanos, validate_secret_path, Capability, MountKind, SecretData};
use maud::{html, Markup};
use serde::Deserialize;
use serde_json::Value;
use zeroize::Zeroizing;

use super::page::{age, notice, page, when, Viewer};
use super::{form, redirect};
use crate::error::{ApiError, ApiResult};
use crate::extract::query_of as query;
use crate::pipeline::Ctx;
use crate::routes::secrets::{mask, patch_as};
use keyward_api::paths::{encode_segment, fill};

/// Most paths a project page lists.
const MAX_PATHS: u32 = 1000;

/// The link to a page about one secret (`env`, `history`, …).
fn link(page: &str, mount: &str, path: &str) -> String {
    format!("/ui/{page}/{}", fill("{mount}/{*path}", &[mount, path]))
}

fn located(ctx: &mut Ctx) -> ApiResult<(String, String)> {
    let (mount, path) = (ctx.take("mount"), ctx.take("path"));
    validate_secret_path(&path)?;
    Ok((mount, path))
}

#[derive(Deserialize, Default)]
struct Search {
    q: Option<String>,
    done: Option<String>,
}

/// `GET /ui`: the projects (kv mounts) the caller may see.
pub(crate) async fn projects(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let caller = ctx.caller()?;
    let sees_all = caller.can(Capability::Sudo, "sys/mounts");
    let mounts: Vec<_> = ctx
        .st
        .kw
        .list_mounts()
        .await?
        .into_iter()
        .filter(|m| m.kind == MountKind::Kv && (sees_all || caller.inner.acl.touches_mount(&m.path)))
        .collect();
    let body = html! {
        @if mounts.is_empty() { p { "No project is visible to you. Ask an administrator for a policy." } }
        @else {
            table {
                thead { tr { th { "Project" } th { "Created" } } }
                tbody { @for m in &mounts {
                    tr { td { a href=(format!("/ui/p/{}", encode_segment(&m.path))) { (m.path) } } td { (when(m.created_at)) } }
                } }
            }
        }
    };
    Ok(page("Projects", Some(&v), body))
}

/// `GET /ui/p/{mount}`: a project's environments the caller may list, searchable by name, and
/// the form comparing two of them.
pub(crate) async fn project(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let s: Search = query(&req)?;
    let caller = ctx.caller()?;
    let mount = ctx.param("mount").to_owned();
    let q = s.q.unwrap_or_default();
    let rows: Vec<_> = ctx
        .st
        .kw
        .list_secrets(&mount, None, MAX_PATHS)
        .await?
        .into_iter()
        .filter(|r| caller.can(Capability::List, &format!("{mount}/{}", r.path)))
        .collect();
    let shown: Vec<_> = rows.iter().filter(|r| q.is_empty() || r.path.contains(q.as_str())).collect();
    let body = html! {
        form.row method="get" {
            label { "Search environments" input type="search" name="q" value=(q); }
            button type="submit" { "Search" }
        }
        table {
            thead { tr { th { "Environment" } th { "Names" } th { "Version" } th { "Changed" } } }
            tbody { @for r in &shown {
                tr {
                    td { a href=(link("env", &mount, &r.path)) { (r.path) } }
                    td { (r.field_count) } td { (r.current_version) } td { (when(r.updated_at)) }
                }
            } }
        }
        @if rows.len() >= 2 {
            h2 { "Compare two environments" }
            form.row method="get" action=(format!("/ui/diff/{}", encode_segment(&mount))) {
                label { "From" select name="a" { @for r in &rows { option value=(r.path) { (r.path) } } } }
                label { "To" select name="b" { @for (i, r) in rows.iter().enumerate() {
                    @if i == 1 { option value=(r.path) selected { (r.path) } } @else { option value=(r.path) { (r.path) } }
                } } }
                button type="submit" { "Compare" }
            }
        }
    };
    Ok(page(&format!("Project {mount}"), Some(&v), body))
}

/// `GET /ui/env/{mount}/{path}`: an environment's names with masked values, when each last
/// changed, its age and stale marker; a reveal button per value for callers with `read`.
pub(crate) async fn env(mut ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let s: Search = query(&req)?;
    let (mount, path) = located(&mut ctx)?;
    let caller = ctx.caller()?;
    let target = format!("{mount}/{path}");
    let (may_read, may_write) = (
        caller.can(Capability::Read, &target),
        caller.can(Capability::Update, &target) || caller.can(Capability::Patch, &target),
    );
    let r = ctx.st.kw.read_secret(&mount, &path, None).await?;
    // Stale as the stale report says: older than the path's, the project's or the default limit.
    let limit = ctx.st.kw.rotate_limit(&r.mount, &r.meta.custom_metadata);
    let q = s.q.unwrap_or_default();
    let now = now_nanos();
    let names: Vec<String> = r.data.fields().keys().cloned().collect();
    ctx.audit.fields(names);
    let reveal_url = link("api/reveal", &mount, &path);
    let body = html! {
        (notice(s.done.as_deref()))
        p.hint { "Version " (r.meta.current_version) " · " a href=(link("history", &mount, &path)) { "history" } " · " a href=(format!("/ui/p/{}", encode_segment(&mount))) { "back to " (mount) } }
        form.row method="get" { label { "Search names" input type="search" name="q" value=(q); } button type="submit" { "Search" } }
        table #values {
            thead { tr { th { "Name" } th { "Value" } th { "Version" } th { "Changed" } th { "Age" } th {} } }
            tbody { @for (name, value) in r.data.fields() {
                @if q.is_empty() || name.to_lowercase().contains(&q.to_lowercase()) {
                    @let stamp = r.version.field_versions.get(name);
                    @let changed = stamp.map_or(r.version.created_at, |s| s.changed_at);
                    @let mask = mask(value);
                    tr data-name=(name) {
                        td { code { (name) } }
                        td { span.secret.mask data-mask=(mask) { (mask) } }
                        td { (stamp.map_or(r.version.version, |s| s.version)) }
                        td { (when(changed)) }
                        @let secs = u64::try_from((now - changed) / 1_000_000_000).unwrap_or(0);
                        td {
                            (age(secs))
                            @if secs > limit { " " span.stale title=(format!("older than its limit of {}", age(limit))) { "stale" } }
                        }
                        td { div.inline {
                            @if may_read { button.reveal.quiet type="button" data-url=(reveal_url) data-field=(name) { "Reveal" } }
                            @if may_write {
                                form method="post" action=(link("unset", &mount, &path)) data-confirm=(format!("Remove {name}?")) {
                                    (v.csrf_field()) input type="hidden" name="name" value=(name);
                                    button.danger type="submit" { "Unset" }
                                }
                            }
                        } }
                    }
                }
            } }
        }
        @if may_write { (write_forms(&v, &mount, &path)) }
    };
    Ok(page(&format!("{mount} / {path}"), Some(&v), body))
}

fn write_forms(v: &Viewer, mount: &str, path: &str) -> Markup {
    html! {
        section.card {
            h2 { "Set a value" }
            form method="post" action=(link("set", mount, path)) autocomplete="off" {
                (v.csrf_field())
                label { "Name" input name="name" required pattern="[A-Za-z_][A-Za-z0-9_.\\-]*"; }
                label { "Value" input type="password" name="value" required autocomplete="new-password"; }
                button type="submit" { "Save" }
            }
        }
        section.card {
            h2 { "Import a .env file" }
            form method="post" action=(link("import", mount, path)) {
                (v.csrf_field())
                label { "Contents" textarea name="text" required spellcheck="false" placeholder="NAME=value" {} }
                label.inline { input type="checkbox" name="replace" value="1"; "Remove names the file does not have" }
                button type="submit" { "Preview" }
            }
        }
    }
}

#[derive(Deserialize)]
struct RevealBody {
    field: String,
}

/// `POST /ui/api/reveal/{mount}/{path}`: one value's plaintext for the page's script — a
/// pipeline read of one field (needs `read`), on record before it leaves.
pub(crate) async fn reveal(mut ctx: Ctx, req: Request) -> ApiResult<Response> {
    let body: RevealBody = crate::extract::json_body(req).await?;
    let (mount, path) = located(&mut ctx)?;
    let r = ctx.st.kw.read_secret(&mount, &path, None).await?;
    let value = r
        .data
        .fields()
        .get(&body.field)
        .ok_or_else(|| ApiError::not_found(format!("field {:?} not found in {mount}/{path}", body.field)))?;
    let text = Zeroizing::new(match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    ctx.st.audit.counters.reveals.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ctx.audit.detail("version", r.version.version);
    ctx.audit.fields(vec![body.field.clone()]);
    tracing::info!(accessor = %ctx.caller()?.accessor(), mount = %mount, path = %path, field = %body.field, "secret revealed (ui)");
    Ok(Json(serde_json::json!({ "field": body.field, "value": text.as_str() })).into_response())
}

#[derive(Deserialize)]
struct SetForm {
    name: String,
    value: Zeroizing<String>,
}

/// `POST /ui/set/{mount}/{path}`: one value set (a new version).
pub(crate) async fn set(mut ctx: Ctx, req: Request) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    let f: SetForm = form(req).await?;
    let name = f.name.trim().to_owned();
    if name.is_empty() {
        return Err(ApiError::bad_request("a name is needed"));
    }
    let set = serde_json::Map::from_iter([(name.clone(), Value::String(f.value.to_string()))]);
    let p = patch_as(ctx.caller()?, &format!("{mount}/{path}"), SecretData::new(set), vec![]);
    ctx.audit.fields(vec![name.clone()]);
    let accessor = ctx.caller()?.accessor().to_owned();
    let s = ctx.change(|e| ctx.st.kw.patch_secret(&mount, &path, p, &accessor, e)).await?;
    Ok(redirect(&format!(
        "{}?done={}",
        link("env", &mount, &path),
        encode_segment(&format!("Saved {name} (version {})", s.version))
    )))
}

#[derive(Deserialize)]
struct NameForm {
    name: String,
}

/// `POST /ui/unset/{mount}/{path}`: one name removed (a new version).
pub(crate) async fn unset(mut ctx: Ctx, req: Request) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    let f: NameForm = form(req).await?;
    let p = patch_as(ctx.caller()?, &format!("{mount}/{path}"), SecretData::default(), vec![f.name.clone()]);
    ctx.audit.fields(vec![f.name.clone()]);
    let accessor = ctx.caller()?.accessor().to_owned();
    let s = ctx.change(|e| ctx.st.kw.patch_secret(&mount, &path, p, &accessor, e)).await?;
    let done = format!("Removed {} (version {})", f.name, s.version);
    Ok(redirect(&format!("{}?done={}", link("env", &mount, &path), encode_segment(&done))))
}

#[derive(Deserialize)]
struct ImportForm {
    text: Zeroizing<String>,
    #[serde(default)]
    replace: Option<String>,
}

/// What an import would do: names added, removed, and (for callers with `read`) changed.
struct ImportPlan {
    parsed: BTreeMap<String, String>,
    added: Vec<String>,
    removed: Vec<String>,
    changed: Option<Vec<String>>,
}

async fn plan(ctx: &Ctx, mount: &str, path: &str, f: &ImportForm) -> ApiResult<ImportPlan> {
    let parsed = keyward_api::dotenv::parse(&f.text)
        .map_err(|e| ApiError::bad_request(format!("the file does not parse: {e}; nothing was imported")))?;
    if parsed.is_empty() {
        return Err(ApiError::bad_request("the file holds no names; nothing was imported"));
    }
    let current: BTreeMap<String, Value> = match ctx.st.kw.read_secret(mount, path, None).await {
        Ok(r) => r.data.fields().iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        Err(keyward_core::CoreError::NotFound(_)) => BTreeMap::new(),
        Err(e) => return Err(e.into()),
    };
    let may_read = ctx.caller()?.can(Capability::Read, &format!("{mount}/{path}"));
    let added = parsed.keys().filter(|k| !current.contains_key(*k)).cloned().collect();
    let removed = match f.replace.is_some() {
        true => current.keys().filter(|k| !parsed.contains_key(*k)).cloned().collect(),
        false => vec![],
    };
    let changed = may_read.then(|| {
        parsed
            .iter()
            .filter(|(k, v)| current.get(*k).is_some_and(|c| c.as_str() != Some(v.as_str())))
            .map(|(k, _)| k.clone())
            .collect()
    });
    Ok(ImportPlan { parsed, added, removed, changed })
}

/// `POST /ui/import/{mount}/{path}`: the preview of a `.env` import — names added and removed
/// (and changed, for callers with `read`) — with the button that commits it. Nothing is written.
pub(crate) async fn import_preview(mut ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let (mount, path) = located(&mut ctx)?;
    let f: ImportForm = form(req).await?;
    let p = plan(&ctx, &mount, &path, &f).await?;
    ctx.audit.fields(p.parsed.keys().cloned().collect());
    let names = |title: &str, list: &[String]| {
        html! { h2 { (title) " (" (list.len()) ")" } @if list.is_empty() { p.hint { "none" } } @else { ul.names { @for n in list { li { code { (n) } } } } } }
    };
    let body = html! {
        p { "Importing " (p.parsed.len()) " names into " code { (mount) "/" (path) } ". Nothing is written until you commit." }
        div #preview {
            (names("Added", &p.added))
            (names("Removed", &p.removed))
            @match &p.changed {
                Some(c) => (names("Changed", c)),
                None => p.hint { "Whether existing values change is shown only to those who may read them." },
            }
        }
        form method="post" action=(link("import-commit", &mount, &path)) {
            (v.csrf_field())
            textarea hidden name="text" { (f.text.as_str()) }
            @if f.replace.is_some() { input type="hidden" name="replace" value="1"; }
            button type="submit" { "Commit the import" }
            " " a href=(link("env", &mount, &path)) { "Cancel" }
        }
    };
    Ok(page("Import preview", Some(&v), body))
}

/// `POST /ui/import-commit/{mount}/{path}`: the import, as one new version.
pub(crate) async fn import_commit(mut ctx: Ctx, req: Request) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    let f: ImportForm = form(req).await?;
    let p = plan(&ctx, &mount, &path, &f).await?;
    let set: serde_json::Map<String, Value> =
        p.parsed.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let mut fields: Vec<String> = p.parsed.keys().cloned().collect();
    fields.extend(p.removed.iter().cloned());
    ctx.audit.fields(fields);
    let patch = patch_as(ctx.caller()?, &format!("{mount}/{path}"), SecretData::new(set), p.removed.clone());
    let accessor = ctx.caller()?.accessor().to_owned();
    let s = ctx.change(|e| ctx.st.kw.patch_secret(&mount, &path, patch, &accessor, e)).await?;
    let done = format!(
        "Imported {} names: {} added, {} removed (version {})",
        p.parsed.len(),
        s.added.len(),
        s.removed.len(),
        s.version
    );
    Ok(redirect(&format!("{}?done={}", link("env", &mount, &path), encode_segment(&done))))
}

/// `GET /ui/history/{mount}/{path}`: the versions (times, authors, names), each with rollback.
pub(crate) async fn history(mut ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let s: Search = query(&req)?;
    let (mount, path) = located(&mut ctx)?;
    let may_update = ctx.caller()?.can(Capability::Update, &format!("{mount}/{path}"));
    let mut versions = ctx.st.kw.history(&mount, &path).await?;
    versions.sort_by_key(|v| std::cmp::Reverse(v.version));
    let latest = versions.first().map_or(0, |x| x.version);
    let body = html! {
        (notice(s.done.as_deref()))
        p.hint { a href=(link("env", &mount, &path)) { "back to the values" } }
        table #history {
            thead { tr { th { "Version" } th { "Written" } th { "By" } th { "Names" } th {} } }
            tbody { @for ver in &versions {
                tr data-version=(ver.version) {
                    td { (ver.version) @if ver.destroyed { " (destroyed)" } @else if ver.deletion_time.is_some() { " (deleted)" } }
                    td { (when(ver.created_at)) }
                    td { code { (ver.created_by) } }
                    td { (ver.fields.join(", ")) }
                    td { @if may_update && ver.version != latest && !ver.destroyed && ver.deletion_time.is_none() {
                        form method="post" action=(link("rollback", &mount, &path)) data-confirm=(format!("Roll back to version {}?", ver.version)) {
                            (v.csrf_field()) input type="hidden" name="version" value=(ver.version);
                            button.quiet type="submit" { "Roll back to this" }
                        }
                    } }
                }
            } }
        }
    };
    Ok(page(&format!("History of {mount} / {path}"), Some(&v), body))
}

#[derive(Deserialize)]
struct RollbackForm {
    version: u64,
}

/// `POST /ui/rollback/{mount}/{path}`: a new version equal to an older one.
pub(crate) async fn rollback(mut ctx: Ctx, req: Request) -> ApiResult<Response> {
    let (mount, path) = located(&mut ctx)?;
    let f: RollbackForm = form(req).await?;
    let caller = ctx.caller()?;
    let may_read = caller.can(Capability::Read, &format!("{mount}/{path}"));
    ctx.audit.detail("from_version", f.version);
    let accessor = caller.accessor().to_owned();
    let s = ctx.change(|e| ctx.st.kw.rollback(&mount, &path, f.version, may_read, &accessor, e)).await?;
    let done = format!("Rolled back to version {} as version {}", f.version, s.version);
    Ok(redirect(&format!("{}?done={}", link("history", &mount, &path), encode_segment(&done))))
}

#[derive(Deserialize)]
struct DiffQuery {
    a: String,
    b: String,
}

/// `GET /ui/diff/{mount}?a=…&b=…`: names missing on either side and names whose values differ —
/// never a value (needs `read` on both, as equality tells about values).
pub(crate) async fn diff(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let q: DiffQuery = query(&req)?;
    let mount = ctx.param("mount").to_owned();
    validate_secret_path(&q.a)?;
    validate_secret_path(&q.b)?;
    ctx.audit.locate(&mount, &q.a);
    ctx.audit.detail("other_path", q.b.clone());
    ctx.authorize_on(&[&format!("{mount}/{}", q.a), &format!("{mount}/{}", q.b)])?;
    let d = ctx.st.kw.diff_secrets(&mount, &q.a, &q.b).await?;
    let list = |title: String, names: &[String]| {
        html! { h2 { (title) " (" (names.len()) ")" } @if names.is_empty() { p.hint { "none" } } @else { ul.names { @for n in names { li { code { (n) } } } } } }
    };
    let body = html! {
        div #diff {
            (list(format!("Only in {}", q.a), &d.only_in_a))
            (list(format!("Only in {}", q.b), &d.only_in_b))
            (list("Values differ".into(), &d.different))
            (list("Same".into(), &d.same))
        }
        p.hint { "Values are never shown here." }
    };
    Ok(page(&format!("{mount}: {} → {}", q.a, q.b), Some(&v), body))
}

/// `GET /ui/stale`: values past their rotation limit in paths the caller may list.
pub(crate) async fn stale(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let caller = ctx.caller()?;
    let fields: Vec<_> = ctx
        .st
        .kw
        .stale_fields(None, None)
        .await?
        .into_iter()
        .filter(|f| caller.can(Capability::List, &format!("{}/{}", f.mount, f.path)))
        .collect();
    let body = html! {
        @if fields.is_empty() { p { "Nothing is past its rotation limit." } }
        @else {
            table {
                thead { tr { th { "Project" } th { "Environment" } th { "Name" } th { "Age" } th { "Limit" } } }
                tbody { @for f in &fields { tr {
                    td { (f.mount) } td { a href=(link("env", &f.mount, &f.path)) { (f.path) } } td { code { (f.field) } }
                    td.stale { (age(f.age_secs)) } td { (age(f.limit_secs)) }
                } } }
            }
        }
    };
    Ok(page("Stale values", Some(&v), body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_encode_each_segment() {
        assert_eq!(link("env", "secret", "accounts/42"), "/ui/env/secret/accounts/42");
        assert_eq!(link("env", "secret", "a b/c&d"), "/ui/env/secret/a%20b/c%26d");
    }

    #[test]
    fn masks_never_show_more_than_the_edges() {
        assert_eq!(mask(&Value::Bool(true)), "****");
        assert!(!mask(&Value::String("sk_live_supersecretvalue1234".into())).contains("supersecret"));
    }
}
