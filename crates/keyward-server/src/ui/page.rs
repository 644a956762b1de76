//! The pages' frame: head, navigation, the logout form, and the error page.
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use keyward_core::Capability;
use maud::{html, Markup, DOCTYPE};

use crate::auth::Caller;
use crate::error::ApiResult;
use crate::pipeline::Ctx;

/// Who is looking at a page: the frame's navigation and its forms' CSRF token.
pub(crate) struct Viewer {
    /// The session's CSRF token.
    pub csrf: String,
    /// The name shown (the token's display name).
    pub name: String,
    /// The administration pages the caller may open (label, link).
    pub admin: Vec<(&'static str, &'static str)>,
}

impl Viewer {
    /// The viewer of a request.
    pub(crate) fn of(ctx: &Ctx, req: &axum::extract::Request) -> ApiResult<Self> {
        let caller = ctx.caller()?;
        let csrf = req.extensions().get::<super::Csrf>().map(|c| c.0.clone()).unwrap_or_default();
        Ok(Self { csrf, name: caller.inner.token.display_name.clone(), admin: admin_links(caller) })
    }

    /// The hidden CSRF field every form of a change carries.
    pub(crate) fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf); }
    }
}

fn admin_links(caller: &Caller) -> Vec<(&'static str, &'static str)> {
    [
        ("Tokens", "/ui/tokens", "sys/tokens"),
        ("Policies", "/ui/policies", "sys/policies"),
        ("Access", "/ui/access", "sys/auth"),
        ("Audit", "/ui/audit", "sys/audit"),
        ("Keys", "/ui/keys", "sys/keys"),
    ]
    .into_iter()
    .filter(|(_, _, path)| caller.can(Capability::Sudo, path))
    .map(|(label, link, _)| (label, link))
    .collect()
}

/// A whole page: the frame around `body` (navigation when someone is logged in).
pub(crate) fn page(title: &str, viewer: Option<&Viewer>, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                @if let Some(v) = viewer { meta name="csrf-token" content=(v.csrf); }
                title { (title) " · keyward" }
                link rel="icon" href="data:,";
                link rel="stylesheet" href="/ui/assets/ui.css";
                script src="/ui/assets/ui.js" defer {}
            }
            body {
                header {
                    a.brand href="/ui" { "keyward" }
                    @if let Some(v) = viewer {
                        nav {
                            a href="/ui" { "Projects" }
                            a href="/ui/stale" { "Stale" }
                            @for (label, link) in &v.admin { a href=(link) { (label) } }
                        }
                        form.logout method="post" action="/ui/logout" {
                            (v.csrf_field())
                            span.who { (v.name) }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    };
    Html(markup.into_string()).into_response()
}

/// The page of an error: its status and message (which never hold a secret).
pub(crate) fn error(status: StatusCode, message: &str) -> Html<String> {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (status.as_u16()) " · keyward" }
                link rel="stylesheet" href="/ui/assets/ui.css";
            }
            body {
                header { a.brand href="/ui" { "keyward" } }
                main {
                    h1 { (status.canonical_reason().unwrap_or("Error")) }
                    p.error role="alert" { (message) }
                    p { a href="/ui" { "Back to the projects" } }
                }
            }
        }
    };
    Html(markup.into_string())
}

/// A flash line above a page's content (`?done=…` after a change).
pub(crate) fn notice(text: Option<&str>) -> Markup {
    html! { @if let Some(t) = text { p.notice role="status" { (t) } } }
}

/// A time as a person reads it: `2026-12-05 05:19:26 UTC`.
pub(crate) fn when(nanos: keyward_core::Nanos) -> String {
    readable(&keyward_core::format_rfc3339(nanos))
}

/// An RFC 3339 time (as audit entries hold it) as [`when`] shows times.
pub(crate) fn readable(rfc3339: &str) -> String {
    match rfc3339.get(..19) {
        Some(day_time) => format!("{} UTC", day_time.replace('T', " ")),
        None => rfc3339.to_owned(),
    }
}

/// A duration in words, to the largest unit (`3d`, `5h`, `12m`).
pub(crate) fn age(secs: u64) -> String {
    match secs {
        s if s >= 86_400 => format!("{}d", s / 86_400),
        s if s >= 3_600 => format!("{}h", s / 3_600),
        s if s >= 60 => format!("{}m", s / 60),
        s => format!("{s}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_to_the_second_in_utc() {
        assert_eq!(when(1_764_912_366_208_481_777), "2025-12-05 05:26:06 UTC");
    }

    #[test]
    fn ages_read_in_their_largest_unit() {
        assert_eq!(age(5), "5s");
        assert_eq!(age(125), "2m");
        assert_eq!(age(7_200), "2h");
        assert_eq!(age(3 * 86_400 + 5), "3d");
    }

    #[test]
    fn error_pages_escape_what_they_show() {
        let page = error(StatusCode::BAD_REQUEST, "<script>x</script>").0;
        assert!(!page.contains("<script>x") && page.contains("&lt;script&gt;"));
    }
}
