//! Validated user input. Each newtype is parsed once at the edge; the rest of
//! the code can rely on it being well-formed. Error messages are shown to
//! users as they are, so they say what to do.

use std::fmt;

/// A problem with one form field: which field, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
}

impl FieldError {
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Characters that reorder the text around them (bidirectional embeddings,
/// overrides, isolates and marks): in a name they can make "Grafana
/// (read-only)" display as something else, so names refuse them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that take no visible space (zero-width, joiners, fillers,
/// the byte-order mark, variation selectors, the soft hyphen).
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180E}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'..='\u{2064}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
        )
        || is_bidi_control(c)
}

/// The checks every piece of text shown to other people passes: no control
/// characters (line breaks only where `multi_line`), no bidirectional
/// overrides, and, when not empty, at least one visible character.
pub fn check_display_text(
    field: &'static str,
    label: &str,
    value: &str,
    multi_line: bool,
) -> Result<(), FieldError> {
    if value
        .chars()
        .any(|c| c.is_control() && !(multi_line && matches!(c, '\n' | '\r' | '\t')))
    {
        return Err(FieldError::new(
            field,
            format!("{label} must not contain control characters."),
        ));
    }
    if value.chars().any(is_bidi_control) {
        return Err(FieldError::new(
            field,
            format!(
                "{label} must not contain characters that change the direction of text (such as U+202E)."
            ),
        ));
    }
    if !value.is_empty() && value.chars().all(is_invisible) {
        return Err(FieldError::new(
            field,
            format!("{label} must contain visible characters."),
        ));
    }
    Ok(())
}

fn bounded_text(
    field: &'static str,
    label: &str,
    raw: &str,
    max: usize,
) -> Result<String, FieldError> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(FieldError::new(field, format!("{label} is required.")));
    }
    if value.chars().count() > max {
        return Err(FieldError::new(
            field,
            format!("{label} must be at most {max} characters."),
        ));
    }
    check_display_text(field, label, value, false)?;
    Ok(value.to_owned())
}

/// A normalised (trimmed, lower-cased) email address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let value = raw.trim().to_lowercase();
        let err = || FieldError::new("email", "Enter an email address like name@example.com.");
        if value.is_empty() {
            return Err(FieldError::new("email", "Email is required."));
        }
        if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(err());
        }
        let (local, domain) = value.split_once('@').ok_or_else(err)?;
        if local.is_empty() || domain.is_empty() || domain.contains('@') || !domain.contains('.') {
            return Err(err());
        }
        if domain.starts_with('.') || domain.ends_with('.') {
            return Err(err());
        }
        Ok(Email(value))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A person's display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        bounded_text("name", "Name", raw, 100).map(PersonName)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A workspace's display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkspaceName(String);

impl WorkspaceName {
    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        bounded_text("workspace", "Workspace name", raw, 100).map(WorkspaceName)
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A new password that meets the policy: at least 12 characters (NIST
/// SP 800-63B style: length over composition rules), at most 1024 so hashing
/// cost stays bounded.
#[derive(Clone, PartialEq, Eq)]
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_LEN: usize = 12;

    /// `confirm` must repeat the password exactly.
    pub fn parse(raw: &str, confirm: &str) -> Result<Self, FieldError> {
        let len = raw.chars().count();
        if len < Self::MIN_LEN {
            return Err(FieldError::new(
                "password",
                format!("Password must be at least {} characters.", Self::MIN_LEN),
            ));
        }
        if len > 1024 {
            return Err(FieldError::new(
                "password",
                "Password must be at most 1024 characters.",
            ));
        }
        if raw != confirm {
            return Err(FieldError::new(
                "password_confirm",
                "The two passwords do not match.",
            ));
        }
        Ok(NewPassword(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

// Never print a password, not even in debug output.
impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalised_and_checked() {
        assert_eq!(
            Email::parse("  Ada@Example.COM ").unwrap().as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "a b@example.com",
            "ada@example",
            "a@b@c.de",
            "ada@.com",
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn names_are_trimmed_bounded_and_required() {
        assert_eq!(PersonName::parse(" Ada ").unwrap().into_inner(), "Ada");
        assert!(PersonName::parse("   ").is_err());
        assert!(PersonName::parse(&"x".repeat(101)).is_err());
        assert!(PersonName::parse("a\u{0}b").is_err());
        assert!(WorkspaceName::parse(&"x".repeat(100)).is_ok());
    }

    #[test]
    fn invisible_and_direction_changing_text_is_refused() {
        for bad in [
            "\u{200B}",
            " \u{200B}\u{FEFF} ",
            "\u{2060}\u{00AD}",
            "evil\u{202E}gpj.exe",
            "a\u{2066}b",
        ] {
            assert!(PersonName::parse(bad).is_err(), "{bad:?} should be refused");
        }
        for good in ["Ada Lovelace", "Zoë", "李小龙", "O'Brien-Smith", "👩‍💻 Dev"] {
            assert!(
                PersonName::parse(good).is_ok(),
                "{good:?} should be accepted"
            );
        }
        assert!(check_display_text("d", "Description", "line one\nline two", true).is_ok());
        assert!(check_display_text("d", "Description", "line one\nline two", false).is_err());
        assert!(check_display_text("d", "Description", "", true).is_ok());
    }

    #[test]
    fn passwords_need_length_and_confirmation() {
        assert!(NewPassword::parse("short", "short").is_err());
        let e = NewPassword::parse("long enough pw", "long enough pX").unwrap_err();
        assert_eq!(e.field, "password_confirm");
        assert!(NewPassword::parse("long enough pw", "long enough pw").is_ok());
        assert!(
            !format!(
                "{:?}",
                NewPassword::parse("long enough pw", "long enough pw").unwrap()
            )
            .contains("long")
        );
    }
}
