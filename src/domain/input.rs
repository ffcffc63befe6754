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
    if value.chars().any(char::is_control) {
        return Err(FieldError::new(
            field,
            format!("{label} must not contain control characters."),
        ));
    }
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
