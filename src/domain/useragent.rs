//! A short name for the client behind a User-Agent string: "Chrome 156 on
//! Linux", "curl 8.5", for the audit trail. The whole string stays one
//! click away; this only has to be right for the clients people use.
//!
//! A small function rather than a crate: the User-Agent crates are either
//! large (uap regex sets) or unmaintained since 2021 (woothee), and the
//! question here is narrow.

/// The version's major part: `156.0.8078.79` → `156`.
fn major(version: &str) -> &str {
    version.split('.').next().unwrap_or(version)
}

/// The version after `token/` in `ua`, if the token is there.
fn version_after<'a>(ua: &'a str, token: &str) -> Option<&'a str> {
    let at = ua.find(token)? + token.len();
    let rest = &ua[at..];
    let end = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '.'))
        .unwrap_or(rest.len());
    Some(&rest[..end]).filter(|v| !v.is_empty())
}

fn browser(ua: &str) -> Option<String> {
    // Order matters: Edge and Opera also say Chrome, Chrome also says Safari.
    let named = [
        ("Edg/", "Edge"),
        ("EdgA/", "Edge"),
        ("OPR/", "Opera"),
        ("Firefox/", "Firefox"),
        ("FxiOS/", "Firefox"),
        ("HeadlessChrome/", "Headless Chrome"),
        ("CriOS/", "Chrome"),
        ("Chrome/", "Chrome"),
    ];
    for (token, name) in named {
        if let Some(v) = version_after(ua, token) {
            return Some(format!("{name} {}", major(v)));
        }
    }
    if ua.contains("Safari/") {
        return Some(match version_after(ua, "Version/") {
            Some(v) => format!("Safari {}", major(v)),
            None => "Safari".to_owned(),
        });
    }
    None
}

fn os(ua: &str) -> Option<&'static str> {
    let platforms = [
        ("Android", "Android"),
        ("iPhone", "iOS"),
        ("iPad", "iPadOS"),
        ("CrOS", "ChromeOS"),
        ("Windows", "Windows"),
        ("Mac OS X", "macOS"),
        ("Macintosh", "macOS"),
        ("Linux", "Linux"),
        ("FreeBSD", "FreeBSD"),
    ];
    platforms
        .into_iter()
        .find(|(token, _)| ua.contains(token))
        .map(|(_, name)| name)
}

/// A short, human name for the client: "Chrome 156 on Linux". Tools that
/// are not browsers keep their own first product token ("curl 8.5.0",
/// "python-requests 2.31.0"). `None` for an empty string.
pub fn short(ua: &str) -> Option<String> {
    let ua = ua.trim();
    if ua.is_empty() {
        return None;
    }
    if ua.starts_with("Mozilla/")
        && let Some(b) = browser(ua)
    {
        return Some(match os(ua) {
            Some(os) => format!("{b} on {os}"),
            None => b,
        });
    }
    // A tool: its first product token, "name/version".
    let first = ua.split_whitespace().next().unwrap_or(ua);
    let short = match first.split_once('/') {
        Some((name, version)) if !name.is_empty() => format!("{name} {version}"),
        _ => first.to_owned(),
    };
    Some(short.chars().take(40).collect())
}

#[cfg(test)]
mod tests {
    use super::short;

    #[test]
    fn browsers_and_tools_get_short_names() {
        let cases = [
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.8078.79 Safari/537.36",
                "Chrome 156 on Linux",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
                "Headless Chrome 156 on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86",
                "Edge 131 on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:133.0) Gecko/20100101 Firefox/133.0",
                "Firefox 133 on macOS",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
                "Safari 18 on macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
                "Safari 18 on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.81 Mobile Safari/537.36",
                "Chrome 131 on Android",
            ),
            ("curl/8.5.0", "curl 8.5.0"),
            ("python-requests/2.31.0", "python-requests 2.31.0"),
            ("Go-http-client/1.1", "Go-http-client 1.1"),
            ("Mozilla/5.0 (compatible; unknown)", "Mozilla 5.0"),
            ("nothing-like-a-product", "nothing-like-a-product"),
        ];
        for (ua, want) in cases {
            assert_eq!(short(ua).as_deref(), Some(want), "{ua}");
        }
        assert_eq!(short("  "), None);
        assert!(short(&"x".repeat(500)).unwrap().len() <= 40);
    }
}
