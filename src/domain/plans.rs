//! Plans (issue 23, section 3): named settings that keys follow, so that
//! one edit changes the rate limit, quota or IP allowlist of every key on
//! the plan. A key on a plan may keep its own value for any of these
//! fields: the field is then *overridden*, and the plan's edits leave it
//! alone. A plan's permissions are the most its keys may hold.

use super::input::FieldError;

/// A setting a key follows from its plan, or overrides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    RateLimit,
    Quota,
    AllowedIps,
}

impl Field {
    pub const ALL: [Field; 3] = [Field::RateLimit, Field::Quota, Field::AllowedIps];

    /// The name in storage, the API and the audit trail.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::RateLimit => "rate_limit",
            Field::Quota => "quota",
            Field::AllowedIps => "allowed_ips",
        }
    }

    /// How pages name it.
    pub fn label(self) -> &'static str {
        match self {
            Field::RateLimit => "rate limit",
            Field::Quota => "usage quota",
            Field::AllowedIps => "IP allowlist",
        }
    }

    pub fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.as_str() == s.trim())
    }
}

/// The fields a key overrides, as stored (`rate_limit,quota`): unknown
/// names are ignored, so an older or newer value never breaks a read.
pub fn overrides(stored: &str) -> Vec<Field> {
    Field::ALL
        .into_iter()
        .filter(|f| stored.split(',').any(|s| s.trim() == f.as_str()))
        .collect()
}

/// The stored form of a set of overridden fields, in a fixed order.
pub fn stored(fields: &[Field]) -> String {
    Field::ALL
        .into_iter()
        .filter(|f| fields.contains(f))
        .map(Field::as_str)
        .collect::<Vec<_>>()
        .join(",")
}

/// A plan's name: 1 to 60 visible characters, the key-name rules.
pub fn parse_name(raw: &str) -> Result<String, FieldError> {
    if raw.trim().is_empty() {
        return Err(FieldError::new(
            "name",
            "Name the plan, e.g. \"Partner – standard\".",
        ));
    }
    let name = super::keys::parse_name(raw)?;
    if raw.chars().count() > 60 {
        return Err(FieldError::new(
            "name",
            "Keep the plan's name to 60 characters.",
        ));
    }
    Ok(name)
}

/// The name as plans are told apart: "Gold" and "gold" are one plan.
pub fn name_key(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Whether a key may hold `permissions` on a plan allowing `allowed`
/// (`None`: any); the ones it may not.
pub fn outside<'a>(permissions: &'a [String], allowed: Option<&[String]>) -> Vec<&'a str> {
    match allowed {
        None => Vec::new(),
        Some(list) => permissions
            .iter()
            .filter(|p| !list.contains(p))
            .map(String::as_str)
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_round_trip_in_a_fixed_order_and_ignore_unknown_names() {
        let fields = overrides("quota, teleport,rate_limit");
        assert_eq!(fields, vec![Field::RateLimit, Field::Quota]);
        assert_eq!(stored(&fields), "rate_limit,quota");
        assert_eq!(stored(&[]), "");
        assert!(overrides("").is_empty());
    }

    #[test]
    fn permissions_outside_a_plan() {
        let held = vec!["data:read".to_owned(), "data:write".to_owned()];
        assert!(outside(&held, None).is_empty());
        assert_eq!(
            outside(&held, Some(&["data:read".to_owned()])),
            vec!["data:write"]
        );
    }

    #[test]
    fn names_are_compared_without_case() {
        assert_eq!(name_key(" Gold "), name_key("gold"));
        assert!(parse_name(&"x".repeat(61)).is_err());
        assert_eq!(parse_name(" Gold ").unwrap(), "Gold");
    }
}
