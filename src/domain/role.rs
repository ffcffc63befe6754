use std::fmt;
use std::str::FromStr;

/// A user's role in their workspace (see PRODUCT.md, "People and roles").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Admin,
    Normal,
    Operator,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Admin, Role::Normal, Role::Operator];

    /// The value stored in the database and posted by forms.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Normal => "normal",
            Role::Operator => "operator",
        }
    }

    /// The human label shown in the UI.
    pub fn label(self) -> &'static str {
        match self {
            Role::Admin => "Admin",
            Role::Normal => "Normal user",
            Role::Operator => "Operator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Returned when a string is not one of the known roles.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("role must be one of admin, normal or operator")]
pub struct UnknownRole;

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "normal" => Ok(Role::Normal),
            "operator" => Ok(Role::Operator),
            _ => Err(UnknownRole),
        }
    }
}
