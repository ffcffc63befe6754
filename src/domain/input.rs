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
/// (read-only)" display as something else. They are format characters
/// (Cf), refused like the rest, but named in their own message because
/// that is the attack people look for.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Letters and symbols that draw nothing although Unicode gives them a
/// visible category: the blank braille pattern (So) and the Hangul fillers
/// (Lo). The Unicode data has no property for "draws nothing" among
/// visible categories, so these few are named; every other invisible
/// character is found by its category.
fn is_blank_glyph(c: char) -> bool {
    matches!(
        c,
        '\u{2800}' | '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}'
    )
}

/// What is wrong with one character of text shown to other people, if
/// anything. The rule is by Unicode general category (the `unicode-properties`
/// tables, so new Unicode versions come with the crate, not by hand):
/// control characters (Cc; tabs and line breaks only where `multi_line`),
/// format characters (Cf: zero-width spaces, the byte-order mark, soft
/// hyphens, bidirectional controls, tag characters that smuggle hidden
/// text), line and paragraph separators (Zl, Zp), private-use, surrogate
/// and unassigned code points (Co, Cs, Cn, which includes noncharacters
/// such as U+FFFF) are refused anywhere. The zero-width joiner and
/// non-joiner are the exception: emoji sequences ("👩‍💻") and Persian and
/// Indic spelling need them, and they draw nothing on their own.
fn refusal(c: char, multi_line: bool) -> Option<Refused> {
    use unicode_properties::{GeneralCategory as G, UnicodeGeneralCategory};
    match c.general_category() {
        G::Control if multi_line && matches!(c, '\n' | '\r' | '\t') => None,
        G::Control => Some(Refused::Control),
        G::Format if matches!(c, '\u{200C}' | '\u{200D}') => None,
        G::Format if is_bidi_control(c) => Some(Refused::Direction),
        G::Format
        | G::LineSeparator
        | G::ParagraphSeparator
        | G::PrivateUse
        | G::Surrogate
        | G::Unassigned => Some(Refused::Hidden(c)),
        _ => None,
    }
}

enum Refused {
    Control,
    Direction,
    Hidden(char),
}

/// Whether a character shows something by itself: not white space, not a
/// mark (combining accents, variation selectors: they only change the
/// character before them), not a joiner, not a blank glyph.
fn is_visible(c: char) -> bool {
    use unicode_properties::{GeneralCategoryGroup as Group, UnicodeGeneralCategory};
    !(c.is_whitespace()
        || is_blank_glyph(c)
        || matches!(
            c.general_category_group(),
            Group::Mark | Group::Separator | Group::Other
        ))
}

/// The one definition of "visible text", for every piece of text shown to
/// other people (names of keys, people, workspaces and permissions,
/// descriptions, resources, emails): no character [`refusal`] refuses and,
/// when not empty, at least one [visible](is_visible) character.
pub fn check_display_text(
    field: &'static str,
    label: &str,
    value: &str,
    multi_line: bool,
) -> Result<(), FieldError> {
    for c in value.chars() {
        match refusal(c, multi_line) {
            None => {}
            Some(Refused::Control) => {
                return Err(FieldError::new(
                    field,
                    format!("{label} must not contain control characters."),
                ));
            }
            Some(Refused::Direction) => {
                return Err(FieldError::new(
                    field,
                    format!(
                        "{label} must not contain characters that change the direction of text (such as U+202E)."
                    ),
                ));
            }
            Some(Refused::Hidden(c)) => {
                return Err(FieldError::new(
                    field,
                    format!(
                        "{label} must not contain invisible, private-use or unassigned characters (it contains U+{:04X}).",
                        u32::from(c)
                    ),
                ));
            }
        }
    }
    if !value.is_empty() && !value.chars().any(is_visible) {
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
    // As sent, spaces around it included: the API document's maxLength
    // counts them, and a JSON Schema cannot say that they are dropped.
    if raw.chars().count() > max {
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
        // An address is shown in Users and events: the same characters are
        // refused as in names (a U+202E would reorder what admins read).
        check_display_text("email", "Email", &value, false)?;
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

/// Constant-time comparison of two secrets (a CSRF token, a sign-in's
/// state), so neither can be guessed byte by byte.
pub fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
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
        // Counted as sent: spaces around it count, though they are dropped.
        assert!(PersonName::parse(&format!(" {}", "x".repeat(100))).is_err());
        assert!(PersonName::parse(&format!("{}\u{85}", "x".repeat(99))).is_ok());
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
        assert!(check_display_text("d", "Description", "line one\u{2028}two", true).is_err());
        assert!(check_display_text("d", "Description", "line one\nline two", false).is_err());
        assert!(check_display_text("d", "Description", "", true).is_ok());
    }

    /// Each code point the black-box test found accepted, alone and (where
    /// refused anywhere) inside an otherwise fine name.
    #[test]
    fn names_of_only_invisible_characters_are_refused() {
        let alone = [
            ("blank braille", "\u{2800}"),
            ("combining acute accent", "\u{0301}"),
            ("combining marks", "\u{0301}\u{0308}\u{20DD}"),
            ("line separator", "\u{2028}"),
            ("paragraph separator", "\u{2029}"),
            ("tag letter A", "\u{E0041}"),
            ("noncharacter", "\u{FFFF}"),
            ("private use", "\u{E000}"),
            ("unassigned", "\u{0378}"),
            ("Hangul filler", "\u{3164}"),
            ("Hangul choseong filler", "\u{115F}"),
            ("Hangul jungseong filler", "\u{1160}"),
            ("halfwidth Hangul filler", "\u{FFA0}"),
            ("zero-width joiner", "\u{200D}"),
            ("variation selector", "\u{FE0F}"),
            ("ideographic space", "\u{3000}"),
            ("Mongolian vowel separator", "\u{180E}"),
        ];
        for (what, bad) in alone {
            let e = PersonName::parse(bad).expect_err(what);
            assert_eq!(e.field, "name", "{what}");
            assert!(WorkspaceName::parse(bad).is_err(), "{what}");
            assert!(crate::domain::keys::parse_name(bad).is_err(), "{what}");
        }
        // Hidden anywhere, not only alone: they carry text nobody sees.
        for bad in [
            "Ada\u{2028}Lovelace",
            "Ada\u{E0041}\u{E0042}",
            "Ada\u{FFFF}",
            "Ada\u{E000}",
            "Ada\u{200B}Lovelace",
            "Ada\u{00AD}",
        ] {
            let e = PersonName::parse(bad).unwrap_err();
            assert!(e.message.contains("U+"), "{bad:?}: {}", e.message);
        }
        // Marks and blank glyphs are fine beside visible characters.
        for good in [
            "Zoe\u{0301}",
            "a\u{2800}b",
            "ب\u{200C}ب",
            "🇫🇷 Paris",
            "1\u{FE0F}\u{20E3}",
        ] {
            assert!(PersonName::parse(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn emails_refuse_direction_changes_and_hidden_characters() {
        for bad in [
            "ada\u{202E}moc.elpmaxe@example.com",
            "ada@exa\u{202D}mple.com",
            "ada\u{2066}@example.com",
            "ada\u{200B}@example.com",
            "ada\u{E0041}@example.com",
        ] {
            let e = Email::parse(bad).unwrap_err();
            assert_eq!(e.field, "email", "{bad:?}");
        }
        assert!(Email::parse("zoë@exämple.com").is_ok());
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
