//! Logging in and out of the UI: password (and TOTP) logins, first-time TOTP enrolment with a
//! QR code, token logins that mint a child session, logout.
use axum::extract::Request;
use axum::http::header::{HeaderValue, SET_COOKIE};
use axum::response::Response;
use keyward_core::{TokenKind, TokenRequest, UserLogin, ENROL_PURPOSE, UI_SESSION_SECS};
use keyward_crypto::Token;
use maud::{html, Markup, PreEscaped};
use serde::Deserialize;
use zeroize::Zeroizing;

use super::page::{page, Viewer};
use super::{cleared_cookie, form, redirect, session_cookie_header};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::query_of as query;
use crate::guard::ClientIp;
use crate::pipeline::Ctx;

/// The login page.
pub(crate) const LOGIN_PAGE: &str = "/ui/login";
/// Where the password form posts.
pub(crate) const USER_LOGIN: &str = "/ui/session";
/// Where the token form posts.
pub(crate) const TOKEN_LOGIN: &str = "/ui/session/token";

#[derive(Deserialize, Default)]
struct LoginNotice {
    expired: Option<String>,
    enrolled: Option<String>,
    out: Option<String>,
}

/// `GET /ui/login`: the password form (with the TOTP code) and the operators' token form.
pub(crate) async fn login_page(_ctx: Ctx, req: Request) -> ApiResult<Response> {
    let n: LoginNotice = query(&req).unwrap_or_default();
    let notice = if n.expired.is_some() {
        Some("Your session has ended: log in again.")
    } else if n.enrolled.is_some() {
        Some("Two-factor enrolment is complete: log in with a code from your app.")
    } else if n.out.is_some() {
        Some("You are logged out.")
    } else {
        None
    };
    Ok(page("Log in", None, login_forms(notice, None)))
}

fn login_forms(notice: Option<&str>, error: Option<&str>) -> Markup {
    html! {
        (super::page::notice(notice))
        @if let Some(e) = error { p.error role="alert" { (e) } }
        section.card {
            h2 { "With your password" }
            form method="post" action=(USER_LOGIN) autocomplete="off" {
                label { "Username" input name="username" required autocomplete="username" autofocus; }
                label { "Password" input type="password" name="password" required autocomplete="current-password"; }
                label { "Code from your authenticator app" input name="code" inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code" placeholder="123456 (if enrolled)"; }
                details {
                    summary { "Login method" }
                    label { "Userpass mount" input name="mount" value="userpass"; }
                }
                button type="submit" { "Log in" }
            }
        }
        section.card {
            h2 { "With a token (operators)" }
            p.hint { "Pastes a token once: the UI mints an 8-hour child of it for this session, and logging out revokes only the child." }
            form method="post" action=(TOKEN_LOGIN) autocomplete="off" {
                label { "Token" input type="password" name="token" required autocomplete="off"; }
                button type="submit" { "Log in with token" }
            }
        }
    }
}

/// A login's failure shown on the login page, with the error's status and code for the audit.
fn failed_login(e: ApiError) -> Response {
    let status = e.status();
    let mut resp = page("Log in", None, login_forms(None, Some(e.message())));
    *resp.status_mut() = status;
    resp.extensions_mut().insert(e.code());
    resp
}

/// A response that sets the session cookie and goes on to `to`.
fn with_session(token: &Token, req: &Request, to: &str) -> Response {
    let ip = req.extensions().get::<ClientIp>().map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0);
    let mut resp = redirect(to);
    if let Ok(v) = HeaderValue::from_str(&session_cookie_header(token.expose(), ip)) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    resp
}

#[derive(Deserialize)]
struct UserForm {
    username: String,
    password: Zeroizing<String>,
    #[serde(default)]
    code: String,
    #[serde(default)]
    mount: String,
}

/// `POST /ui/session`: a password (and TOTP) login; a user who must enrol gets a 10-minute
/// session good only for enrolling.
pub(crate) async fn user_login(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let ip = req.extensions().get::<ClientIp>().map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0);
    let (parts, body) = req.into_parts();
    let f: UserForm = match form(Request::from_parts(parts.clone(), body)).await {
        Ok(f) => f,
        Err(e) => return Ok(failed_login(e)),
    };
    let mount = if f.mount.trim().is_empty() { "userpass".to_owned() } else { f.mount.trim().to_owned() };
    let code = Some(f.code.trim()).filter(|c| !c.is_empty());
    ctx.audit.locate(&format!("auth/{mount}"), "login");
    let login = ctx.change(|e| ctx.st.kw.login_userpass(&mount, &f.username, f.password, code, true, e)).await;
    let req = Request::from_parts(parts, axum::body::Body::empty());
    match login {
        Ok(UserLogin::Token(t)) => Ok(with_session(&t.token, &req, "/ui")),
        Ok(UserLogin::Enrol(t)) => Ok(with_session(&t.token, &req, "/ui/enrol")),
        Err(e) => {
            crate::vault::auth::count_failed_login(&ctx, ip, &e);
            Ok(failed_login(e))
        }
    }
}

#[derive(Deserialize)]
struct TokenForm {
    token: Zeroizing<String>,
}

/// `POST /ui/session/token`: an operator's token login. The pasted token is authenticated as any
/// token is (lockout, allowed addresses, rate and uses), and the session is a child of it of at
/// most 8 hours with the same policies, so logging out revokes the child only.
pub(crate) async fn token_login(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let (parts, body) = req.into_parts();
    let f: TokenForm = match form(Request::from_parts(parts.clone(), body)).await {
        Ok(f) => f,
        Err(e) => return Ok(failed_login(e)),
    };
    let raw = f.token.trim();
    let parent = match Caller::authenticate(&parts, &ctx.st, Token::parse(raw), Some(raw), true).await {
        Ok(c) => c,
        Err(e) => return Ok(failed_login(e)),
    };
    if parent.inner.token.kind != TokenKind::Service {
        return Ok(failed_login(ApiError::bad_request("only a service token can log in to the UI")));
    }
    let policies = parent.inner.token.policies.clone();
    let request = TokenRequest {
        no_default_policy: !policies.iter().any(|p| p == keyward_core::DEFAULT_POLICY),
        policies,
        ttl_secs: Some(UI_SESSION_SECS),
        explicit_max_ttl_secs: Some(UI_SESSION_SECS),
        display_name: Some(format!("ui-{}", parent.inner.token.display_name)),
        renewable: Some(false),
        kind: TokenKind::UiSession,
        ..TokenRequest::default()
    };
    ctx.audit.set_accessor(parent.accessor());
    let new = match ctx.change(|e| ctx.st.kw.create_token(&parent.inner, request, e)).await {
        Ok(n) => n,
        Err(e) => return Ok(failed_login(e)),
    };
    Ok(with_session(&new.token, &Request::from_parts(parts, axum::body::Body::empty()), "/ui"))
}

/// `POST /ui/logout`: revokes the session's token (and nothing above it).
pub(crate) async fn logout(ctx: Ctx, _req: Request) -> ApiResult<Response> {
    let accessor = ctx.caller()?.accessor().to_owned();
    ctx.change(|e| ctx.st.kw.revoke_accessor(&accessor, e)).await?;
    let mut resp = redirect(&format!("{LOGIN_PAGE}?out=1"));
    resp.headers_mut().insert(SET_COOKIE, HeaderValue::from_static(cleared_cookie()));
    Ok(resp)
}

/// The user and login mount of an enrolment session.
fn enrolling(ctx: &Ctx) -> ApiResult<(String, String)> {
    let meta = &ctx.caller()?.inner.token.meta;
    match (meta.get("purpose"), meta.get("auth_path"), meta.get("username")) {
        (Some(p), Some(m), Some(u)) if p == ENROL_PURPOSE => Ok((m.clone(), u.clone())),
        _ => Err(ApiError::new(crate::error::ErrorCode::Forbidden, "this session is not enrolling a TOTP code")),
    }
}

/// `GET /ui/enrol`: what enrolment is, and the button that makes the QR code.
pub(crate) async fn enrol_page(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let (_, user) = enrolling(&ctx)?;
    let v = Viewer::of(&ctx, &req)?;
    Ok(page(
        "Set up two-factor login",
        None,
        html! {
            p { "Your account, " strong { (user) } ", needs a code from an authenticator app at every login. This session lasts 10 minutes and can only do this." }
            form method="post" action="/ui/enrol" {
                (v.csrf_field())
                button type="submit" { "Show my QR code" }
            }
        },
    ))
}

/// `POST /ui/enrol`: a new TOTP seed, shown once as a QR code (and its text for typing), with
/// the form that confirms it.
pub(crate) async fn enrol_start(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let (mount, user) = enrolling(&ctx)?;
    let v = Viewer::of(&ctx, &req)?;
    let uri = ctx.change(|e| ctx.st.kw.totp_enrol_start(&mount, &user, None, e)).await?;
    let qr = qrcode::QrCode::new(uri.as_bytes())
        .map_err(|_| ApiError::new(crate::error::ErrorCode::Internal, "the QR code could not be drawn"))?;
    let svg = qr.render::<qrcode::render::svg::Color<'_>>().min_dimensions(220, 220).quiet_zone(true).build();
    let svg = Zeroizing::new(svg);
    let svg_start = svg.find("<svg").unwrap_or(0);
    let secret = uri.split("secret=").nth(1).and_then(|s| s.split('&').next()).unwrap_or_default().to_owned();
    let secret = Zeroizing::new(secret);
    let body = html! {
        p { "Scan this code with your authenticator app, then type the 6-digit code it shows." }
        div.qr aria-label="TOTP QR code" { (PreEscaped(&svg[svg_start..])) }
        p { "Or type this key: " code #totp-secret { (secret.as_str()) } }
        (confirm_form(&v))
    };
    Ok(page("Set up two-factor login", None, body))
}

fn confirm_form(v: &Viewer) -> Markup {
    html! {
        form method="post" action="/ui/enrol/confirm" autocomplete="off" {
            (v.csrf_field())
            label { "Code" input name="code" required inputmode="numeric" pattern="[0-9]{6}" autocomplete="one-time-code"; }
            button type="submit" { "Confirm" }
        }
    }
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
}

/// `POST /ui/enrol/confirm`: completes enrolment with a code, ends the enrolment session, and
/// sends the user to log in with a code.
pub(crate) async fn enrol_confirm(ctx: Ctx, req: Request) -> ApiResult<Response> {
    let (mount, user) = enrolling(&ctx)?;
    let v = Viewer::of(&ctx, &req)?;
    let f: CodeForm = form(req).await?;
    if let Err(e) = ctx.change(|e| ctx.st.kw.totp_enrol_confirm(&mount, &user, f.code.trim(), e)).await {
        let body = html! { p.error role="alert" { (e.message()) } (confirm_form(&v)) };
        let mut resp = page("Set up two-factor login", None, body);
        *resp.status_mut() = e.status();
        resp.extensions_mut().insert(e.code());
        return Ok(resp);
    }
    // The enrolment session is spent: its revocation is on record as its own entry.
    let accessor = ctx.caller()?.accessor().to_owned();
    let entry = ctx.audit.entry_now("ui.logout", 200);
    ctx.st.kw.revoke_accessor(&accessor, entry).await?;
    let mut resp = redirect(&format!("{LOGIN_PAGE}?enrolled=1"));
    resp.headers_mut().insert(SET_COOKIE, HeaderValue::from_static(cleared_cookie()));
    Ok(resp)
}
