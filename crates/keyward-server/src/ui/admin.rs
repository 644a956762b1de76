//! The administration pages (for `sudo` holders): tokens, policies, login methods, the audit
//! log and the keys.
use axum::extract::Request;
use axum::response::Response;
use keyward_core::{now_nanos, parse_policy_document, AuditEntry, AuthKind};
use std::ops::ControlFlow;

use maud::html;
use serde::Deserialize;

use super::page::{notice, page, readable, when, Viewer};
use super::{form, redirect};
use crate::error::{ApiError, ApiResult};
use crate::extract::query_of as query;
use crate::pipeline::Ctx;
use crate::routes::audit::{scan, EntryFilter};

/// Most tokens and audit entries a page shows.
const PAGE_ROWS: usize = 200;
/// Audit entries read at a time, backwards from the head, by the audit page.
const AUDIT_WINDOW: u64 = 1000;

#[derive(Deserialize, Default)]
struct Done {
    done: Option<String>,
}

/// `GET /ui/tokens`: tokens by accessor with their policies and expiry, each revocable.
pub(crate) async fn tokens(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let d: Done = query(&req)?;
    let now = now_nanos();
    let own = ctx.caller()?.accessor().to_owned();
    // Live tokens only, by accessor: pages are read until the page is full or the table ends.
    let mut rows = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let batch = ctx.st.kw.list_tokens(after.as_deref(), 1000).await?;
        let full = batch.len() == 1000;
        after = batch.last().map(|t| t.accessor.clone());
        rows.extend(batch.into_iter().filter(|t| !t.revoked && t.expires_at.is_none_or(|e| e > now)));
        if !full || rows.len() >= PAGE_ROWS {
            break;
        }
    }
    rows.truncate(PAGE_ROWS);
    let body = html! {
        (notice(d.done.as_deref()))
        p.hint { "Live tokens by accessor (the first " (PAGE_ROWS) "; " code { "keyward token list" } " pages through all). Token values are never shown." }
        table #tokens {
            thead { tr { th { "Accessor" } th { "Name" } th { "Type" } th { "Policies" } th { "Expires" } th { "Last used" } th {} } }
            tbody { @for t in &rows {
                tr data-accessor=(t.accessor) {
                    td { code { (t.accessor) } } td { (t.display_name) } td { (t.kind.as_str()) }
                    td { (t.policies.join(", ")) }
                    td { (t.expires_at.map(when).unwrap_or_else(|| "never".into())) }
                    td { (t.last_used.map(when).unwrap_or_default()) }
                    td { @if t.accessor != own {
                        form method="post" action="/ui/tokens/revoke" data-confirm="Revoke this token and its children?" {
                            (v.csrf_field()) input type="hidden" name="accessor" value=(t.accessor);
                            button.danger type="submit" { "Revoke" }
                        }
                    } @else { span.hint { "this session" } } }
                }
            } }
        }
    };
    Ok(page("Tokens", Some(&v), body))
}

#[derive(Deserialize)]
struct AccessorForm {
    accessor: String,
}

/// `POST /ui/tokens/revoke`: revokes a token by accessor, with its descendants.
pub(crate) async fn revoke(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let f: AccessorForm = form(req).await?;
    ctx.audit.locate("", &f.accessor);
    let n = ctx.change(|e| ctx.st.kw.revoke_accessor(&f.accessor, e)).await?;
    Ok(redirect(&format!("/ui/tokens?done=Revoked+{n}+token(s)")))
}

/// `GET /ui/policies`: the policies by name.
pub(crate) async fn policies(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let names = ctx.st.kw.list_policies().await?;
    let body = html! {
        ul { @for n in &names { li { a href=(format!("/ui/policies/{n}")) { (n) } } } }
        section.card {
            h2 { "New policy" }
            form method="get" action="/ui/policies/new" { label { "Name" input name="name" required pattern="[A-Za-z0-9_.\\-]+"; } button type="submit" { "Create" } }
        }
    };
    Ok(page("Policies", Some(&v), body))
}

#[derive(Deserialize, Default)]
struct NewName {
    name: Option<String>,
}

/// `GET /ui/policies/{name}`: a policy's rules, in the TOML form, editable (`new?name=…` starts
/// an empty one).
pub(crate) async fn policy(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let d: Done = query(&req)?;
    let n: NewName = query(&req).unwrap_or_default();
    let name = match (ctx.param("name"), n.name) {
        ("new", Some(n)) => n,
        (name, _) => name.to_owned(),
    };
    let text = match ctx.st.kw.read_policy(&name).await {
        Ok(p) => toml_of(&p.rules),
        Err(keyward_core::CoreError::NotFound(_)) => String::new(),
        Err(e) => return Err(e.into()),
    };
    Ok(policy_page(&v, &name, &text, None, d.done.as_deref()))
}

fn toml_of(rules: &[keyward_core::Rule]) -> String {
    rules
        .iter()
        .map(|r| {
            let caps: Vec<String> = r.capabilities.iter().map(|c| format!("{:?}", c.as_str())).collect();
            format!("[[rules]]\npath = {:?}\ncapabilities = [{}]\n", r.path, caps.join(", "))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn policy_page(v: &Viewer, name: &str, text: &str, error: Option<&str>, done: Option<&str>) -> Response {
    let builtin = name == keyward_core::ROOT_POLICY || name == keyward_core::DEFAULT_POLICY;
    let body = html! {
        (notice(done))
        @if let Some(e) = error { p.error role="alert" id="policy-error" { (e) } }
        @if builtin { p.hint { "A built-in policy: it cannot be changed." } pre { (text) } }
        @else {
            form.card.wide method="post" action=(format!("/ui/policies/{name}")) {
                (v.csrf_field())
                label { "Rules (TOML or JSON)" textarea name="document" spellcheck="false" { (text) } }
                button type="submit" { "Save" }
            }
        }
        p { a href="/ui/policies" { "All policies" } }
    };
    page(&format!("Policy {name}"), Some(v), body)
}

#[derive(Deserialize)]
struct PolicyForm {
    document: String,
}

/// `POST /ui/policies/{name}`: saves a policy; a document that does not validate is shown again
/// with the error beside it.
pub(crate) async fn save_policy(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let name = ctx.param("name").to_owned();
    let f: PolicyForm = form(req).await?;
    let saved = match parse_policy_document(&f.document) {
        Ok(rules) => ctx.change(|e| ctx.st.kw.write_policy(&name, rules, e)).await,
        Err(e) => Err(ApiError::from(e)),
    };
    match saved {
        Ok(()) => Ok(redirect(&format!("/ui/policies/{name}?done=Saved"))),
        Err(e) => {
            let mut resp = policy_page(&v, &name, &f.document, Some(e.message()), None);
            *resp.status_mut() = e.status();
            resp.extensions_mut().insert(e.code());
            Ok(resp)
        }
    }
}

/// `GET /ui/access`: the login methods, with their users and roles.
pub(crate) async fn access(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let kw = &ctx.st.kw;
    let mut sections = Vec::new();
    for m in kw.auth_mounts().await? {
        let members: Vec<String> = match m.kind {
            AuthKind::Userpass => kw
                .userpass_users(&m.path)
                .await?
                .into_iter()
                .map(|u| {
                    let totp = match (u.config.totp_required, u.totp_enrolled) {
                        (false, _) => "no TOTP",
                        (true, true) => "TOTP enrolled",
                        (true, false) => "TOTP not enrolled yet",
                    };
                    format!("user {} — policies {} — {totp}", u.name, u.config.token_policies.join(", "))
                })
                .collect(),
            AuthKind::AppRole => {
                kw.approle_roles(&m.path).await?.into_iter().map(|r| format!("role {}", r.name)).collect()
            }
            AuthKind::Jwt => kw.jwt_roles(&m.path).await?.into_iter().map(|r| format!("role {r}")).collect(),
        };
        sections.push((m, members));
    }
    let body = html! {
        @if sections.is_empty() { p { "No login method is enabled besides tokens." } }
        @for (m, members) in &sections {
            section.card.wide {
                h2 { (m.path) " (" (m.kind.as_str()) ")" }
                @if !m.description.is_empty() { p.hint { (m.description) } }
                ul { @for line in members { li { (line) } } }
            }
        }
    };
    Ok(page("Login methods", Some(&v), body))
}

#[derive(Deserialize, Default)]
struct AuditFilter {
    since: Option<String>,
    accessor: Option<String>,
    path: Option<String>,
    operation: Option<String>,
    request_id: Option<String>,
    failed: Option<String>,
    verify: Option<String>,
}

fn some(s: &Option<String>) -> Option<&str> {
    s.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// `GET /ui/audit`: the newest entries matching the filters, each linked to its request's
/// other entries, with the chain's verification (on request) and the last anchor.
pub(crate) async fn audit(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let f: AuditFilter = query(&req)?;
    let st = &ctx.st;
    let filter = EntryFilter {
        accessor: some(&f.accessor),
        operation: some(&f.operation),
        request_id: some(&f.request_id),
        path: some(&f.path),
        failed: f.failed.is_some(),
        since: some(&f.since),
    };
    let matches = filter.matcher()?;
    // Newest first: windows of the log are read backwards from its head until the page is full,
    // so the usual view reads a few hundred rows, not the whole log.
    let mut entries: Vec<AuditEntry> = Vec::new();
    let mut upper = st.kw.audit_head().await?.map_or(0, |(seq, _)| seq);
    while upper > 0 && entries.len() < PAGE_ROWS {
        let lower = upper.saturating_sub(AUDIT_WINDOW);
        let (mut window, mut older_gone) = (Vec::new(), true);
        scan(st, lower, |seq, e| {
            if seq > upper {
                return ControlFlow::Break(()); // read already (or nothing left at or below `upper`)
            }
            older_gone = false;
            if matches(&e) {
                window.push(e);
            }
            if seq == upper {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        })
        .await?;
        entries.extend(window.into_iter().rev());
        if older_gone {
            break; // the entries below were archived
        }
        upper = lower;
    }
    entries.truncate(PAGE_ROWS);
    let anchor =
        st.audit.anchor_file.as_deref().map(crate::audit::last_anchor).transpose().map_err(ApiError::bad_request)?;
    let report = match f.verify.is_some() {
        true => Some(st.kw.verify_audit(anchor.clone().flatten()).await?),
        false => None,
    };
    let text = |s: &Option<String>| s.clone().unwrap_or_default();
    let body = html! {
        section.card.wide {
            @match &report {
                Some(r) if r.ok => p.ok #chain { "The chain verifies: " (r.entries) " entries up to " (r.last_seq) "." },
                Some(r) => p.error #chain { "The chain is broken at " (r.broken_seq.unwrap_or(0)) ": " (r.reason.clone().unwrap_or_default()) },
                None => form method="get" { input type="hidden" name="verify" value="1"; button.quiet type="submit" { "Verify the chain now" } },
            }
            p.hint { @match anchor.flatten() {
                Some((seq, hash)) => { "Last anchor: entry " (seq) ", " code { (hex::encode(&hash[..hash.len().min(8)])) "…" } }
                None => "No anchor file is configured (see --audit-anchor-file).",
            } }
        }
        form.row method="get" {
            label { "Since" input name="since" placeholder="1h" value=(text(&f.since)); }
            label { "Accessor" input name="accessor" value=(text(&f.accessor)); }
            label { "Path" input name="path" placeholder="secret/prod*" value=(text(&f.path)); }
            label { "Operation" input name="operation" placeholder="secrets.reveal" value=(text(&f.operation)); }
            label { "Request id" input name="request_id" value=(text(&f.request_id)); }
            label.inline { @if f.failed.is_some() { input type="checkbox" name="failed" value="1" checked; } @else { input type="checkbox" name="failed" value="1"; } "failures only" }
            button type="submit" { "Filter" }
        }
        table #audit {
            thead { tr { th { "#" } th { "Time" } th { "Operation" } th { "Status" } th { "Accessor" } th { "Path" } th { "Names" } th { "Request" } } }
            tbody { @for e in &entries {
                tr data-operation=(e.operation) {
                    td { (e.seq) } td { (readable(&e.time)) } td { code { (e.operation) } }
                    td { @if e.status >= 400 { span.error { (e.status) } } @else { (e.status) } }
                    td { code { (e.accessor) } } td { (e.mount) "/" (e.path) } td { (e.fields.join(", ")) }
                    td { @if !e.request_id.is_empty() { a href=(format!("/ui/audit?request_id={}", e.request_id)) { "same request" } } }
                }
            } }
        }
        p.hint { "Shows the newest " (PAGE_ROWS) " matching entries." }
    };
    Ok(page("Audit log", Some(&v), body))
}

#[derive(Deserialize, Default)]
struct DoctorAsk {
    doctor: Option<String>,
}

/// `GET /ui/keys`: master keys, data-key versions per project, key jobs, and doctor's checks when
/// asked (`?doctor=1`: they verify the whole audit chain, too long to run on every view).
pub(crate) async fn keys(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let v = Viewer::of(&ctx, &req)?;
    let ask: DoctorAsk = query(&req)?;
    let kw = &ctx.st.kw;
    let status = kw.key_status().await?;
    let jobs = kw.key_jobs().await?;
    let doctor = match ask.doctor {
        Some(_) => Some(kw.doctor(false).await?),
        None => None,
    };
    let body = html! {
        h2 { "Master keys" }
        table { thead { tr { th { "Tag" } th { "Active" } th { "Configured" } th { "Keys it wraps" } th { "Retirable" } } }
            tbody { @for k in &status.keks { tr { td { code { (k.tag) } } td { (k.active) } td { (k.configured) } td { (k.wrapped_keys) } td { (k.retirable) } } } } }
        h2 { "Data keys" }
        table { thead { tr { th { "Project" } th { "Version" } th { "Wrapped by" } th { "Values it seals" } } }
            tbody { @for d in &status.deks { tr { td { (d.mount) } td { (d.version) } td { code { (d.kek_tag) } } td { (d.blobs) } } } } }
        h2 { "Key jobs" }
        @if jobs.is_empty() { p.hint { "No key job has run." } }
        @else { table { thead { tr { th { "Job" } th { "Kind" } th { "Project" } th { "Status" } th { "Progress" } } }
            tbody { @for j in &jobs { tr {
                td { code { (j.id) } } td { (j.kind) } td { (j.mount.clone().unwrap_or_default()) } td { (j.status) }
                td { progress max=(j.total.max(1)) value=(j.done) {} " " (j.done) " / " (j.total) }
            } } } } }
        h2 { "Doctor" }
        @match &doctor {
            Some(d) => {
                p #doctor { @if d.ok { span.ok { "Every check passed" } } @else { span.error { "Problems found" } }
                    " — master keys " (d.master_keys_ok) ", self-test " (d.self_test_ok) ", audit " (d.audit_ok)
                    ", rows " (d.rows_ok) " (" (d.rows_checked) " checked)" }
                @if !d.problems.is_empty() { ul { @for p in &d.problems { li.error { (p) } } } }
            }
            None => form method="get" {
                input type="hidden" name="doctor" value="1";
                button.quiet type="submit" { "Run doctor" }
                " " span.hint { "checks every master key, a crypto self-test, the audit chain and every row's MAC" }
            },
        }
    };
    Ok(page("Keys", Some(&v), body))
}
