//! Masks shown in listings and non-reveal reads.

/// Known provider prefixes that stay visible in a mask (longest first where they overlap).
const PREFIXES: &[&str] = &[
    "sk_live_",
    "sk_test_",
    "rk_live_",
    "rk_test_",
    "pk_live_",
    "pk_test_",
    "whsec_",
    "github_pat_",
    "ghp_",
    "gho_",
    "ghu_",
    "ghs_",
    "ghr_",
    "glpat-",
    "xoxb-",
    "xoxp-",
    "xoxa-",
    "xapp-",
    "AKIA",
    "ASIA",
    "AIza",
    "sk-ant-",
    "sk-proj-",
    "sk-",
    "SG.",
    "shpat_",
    "npm_",
    "pypi-",
    "dop_v1_",
    "hf_",
    "kw_",
];

/// Masks a string: a known provider prefix, then `....` and the last 4 characters — but only
/// when the hidden part is at least 8 characters and at least half the value; else `****`.
pub fn mask_value(value: &str) -> String {
    const HIDDEN: &str = "****";
    let chars: Vec<char> = value.chars().collect();
    let total = chars.len();
    let prefix = PREFIXES.iter().find(|p| value.starts_with(**p)).map_or(0, |p| p.chars().count());
    let shown = prefix + 4;
    if total < shown {
        return HIDDEN.into();
    }
    let hidden = total - shown;
    if hidden < 8 || hidden * 2 < total {
        return HIDDEN.into();
    }
    let head: String = chars[..prefix].iter().collect();
    let tail: String = chars[total - 4..].iter().collect();
    format!("{head}....{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn examples() {
        assert_eq!(mask_value("sk_test_51H8abcdEFGH1234"), "sk_test_....1234");
        assert_eq!(mask_value("ghp_abcdefghijklmnopqrstuvwxyz0123456789"), "ghp_....6789");
        assert_eq!(mask_value("short"), "****");
        assert_eq!(mask_value("sk_test_1234567890"), "****");
        assert_eq!(mask_value("postgres://user:pass@db/app"), "..../app");
        assert_eq!(mask_value("ünïcødé-välüé-lønger"), "....nger");
    }

    proptest! {
        #[test]
        fn mask_never_reveals_more_than_half(v in "\\PC{0,80}") {
            let m = mask_value(&v);
            let n = v.chars().count();
            let revealed = m.chars().filter(|_| true).count().saturating_sub(4);
            prop_assert!(m == "****" || revealed * 2 <= n);
        }
    }
}
