//! Pure domain logic: no I/O, no HTTP, no database types.

pub mod allowlist;
pub mod audit;
pub mod ceiling;
pub mod chart;
pub mod ids;
pub mod input;
pub mod keys;
pub mod password;
pub mod plans;
pub mod policy;
pub mod quota;
pub mod recovery;
pub mod role;
pub mod throttle;
pub mod time;
pub mod useragent;
pub mod webhooks;

pub use role::Role;
