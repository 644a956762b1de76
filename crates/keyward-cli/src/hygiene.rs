//! Process hygiene for a binary that holds secrets in memory: no core dumps, and panics that
//! report where they happened but never what they were about — a panic message can quote a
//! value, a token or a request, and stderr goes to logs.
use std::io::Write;
use std::panic::PanicHookInfo;

/// Core dumps could hold decrypted secrets and keys: switch them off where the OS allows.
pub fn disable_core_dumps() {
    use rustix::process::{setrlimit, Resource, Rlimit};
    let _ = setrlimit(Resource::Core, Rlimit { current: Some(0), maximum: Some(0) });
}

/// Replaces the default panic hook (which prints the panic's message) with [`report`].
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let _ = report(info, &mut std::io::stderr().lock());
    }));
}

/// Writes one line about a panic: its thread and source location, never its message.
pub fn report(info: &PanicHookInfo<'_>, out: &mut dyn Write) -> std::io::Result<()> {
    let thread = std::thread::current();
    let location =
        info.location().map_or_else(|| "an unknown location".to_owned(), |l| format!("{}:{}", l.file(), l.line()));
    writeln!(
        out,
        "keyward: internal error (panic) in thread {:?} at {location}; its message is withheld because it may hold \
         secret data — please report the location",
        thread.name().unwrap_or("unnamed"),
    )
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[test]
    fn a_panic_reports_its_location_and_never_its_message() {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let _ = report(info, &mut *sink.lock().unwrap());
        }));
        let secret = "sk_live_51H8abcdEFGH1234";
        let caught = std::panic::catch_unwind(|| panic!("request body was {secret}"));
        std::panic::set_hook(previous);
        assert!(caught.is_err());
        let text = String::from_utf8(seen.lock().unwrap().clone()).unwrap();
        assert!(text.contains("hygiene.rs:") && text.contains("internal error"), "{text}");
        assert!(!text.contains(secret) && !text.contains("request body"), "{text}");
    }
}
