//! A key's IP allowlist: the addresses and CIDR ranges a key may be used
//! from. Parsed once where it is typed (a form, the API) into its
//! normalised form, stored as that text, and parsed again once per cached
//! key record, never per check.

use crate::domain::input::FieldError;
use ipnet::IpNet;
use std::net::IpAddr;

/// The most entries one key's allowlist holds.
pub const MAX_ENTRIES: usize = 100;

/// The field the forms and the API name.
pub const FIELD: &str = "allowed_ips";

/// A parsed, non-empty allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowlist(Vec<IpNet>);

/// One entry: an address (a /32 or /128) or a CIDR range, the host bits of
/// a range cleared (`10.1.2.3/8` is `10.0.0.0/8`). The one reading of an
/// address-or-range, also for `KEYWARD_TRUSTED_PROXIES`.
pub fn parse_net(entry: &str) -> Option<IpNet> {
    entry
        .parse::<IpNet>()
        .map(|n| n.trunc())
        .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
        .ok()
}

impl Allowlist {
    /// Whether a check from `ip` passes. An IPv4-mapped IPv6 address
    /// (`::ffff:127.0.0.2`, what a dual-stack socket reports) counts as the
    /// IPv4 address it carries.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        self.0.iter().any(|net| net.contains(&ip))
    }

    /// The entries of `other` that no entry of this list contains: what a
    /// list narrower than this one may not hold (empty: `other` is within
    /// this list).
    pub fn uncovered(&self, other: &Allowlist) -> Vec<String> {
        other
            .0
            .iter()
            .zip(other.entries())
            .filter(|(net, _)| !self.0.iter().any(|mine| mine.contains(*net)))
            .map(|(_, shown)| shown)
            .collect()
    }

    /// The entries as shown and stored: an address alone, a range in CIDR
    /// form.
    pub fn entries(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|n| {
                if n.prefix_len() == n.max_prefix_len() {
                    n.addr().to_string()
                } else {
                    n.to_string()
                }
            })
            .collect()
    }

    /// The stored form: the entries, comma-separated.
    pub fn to_stored(&self) -> String {
        self.entries().join(",")
    }

    /// Read the stored form back; `None` for no allowlist. Entries that do
    /// not parse (none are ever written) are skipped, and a list left
    /// empty allows nothing rather than everything.
    pub fn from_stored(stored: Option<&str>) -> Option<Allowlist> {
        let stored = stored?;
        Some(Allowlist(
            stored
                .split(',')
                .map(str::trim)
                .filter(|e| !e.is_empty())
                .filter_map(parse_net)
                .collect(),
        ))
    }
}

/// Parse an allowlist as typed: entries separated by commas or line
/// breaks, blank ones ignored, duplicates kept once. Nothing at all is no
/// allowlist (`None`). An entry that is neither an address nor a CIDR
/// range is named; more than [`MAX_ENTRIES`] is refused.
pub fn parse(raw: &str) -> Result<Option<Allowlist>, FieldError> {
    let mut nets: Vec<IpNet> = Vec::new();
    for entry in raw
        .split([',', '\n', '\r'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let Some(net) = parse_net(entry) else {
            let shown: String = entry.chars().filter(|c| !c.is_control()).take(60).collect();
            return Err(FieldError::new(
                FIELD,
                format!(
                    "\"{shown}\" is not an IP address or CIDR range: write one like 203.0.113.7, 198.51.100.0/24 or 2001:db8::/32."
                ),
            ));
        };
        if !nets.contains(&net) {
            nets.push(net);
        }
    }
    if nets.len() > MAX_ENTRIES {
        return Err(too_many(nets.len()));
    }
    Ok((!nets.is_empty()).then_some(Allowlist(nets)))
}

/// The error for a list longer than [`MAX_ENTRIES`]: `given` entries as
/// typed, or items as a JSON list sent them (blank and repeated ones count
/// there, as the API's `maxItems` says).
pub fn too_many(given: usize) -> FieldError {
    FieldError::new(
        FIELD,
        format!(
            "An allowlist holds at most {MAX_ENTRIES} entries ({given} given): use CIDR ranges to cover neighbouring addresses."
        ),
    )
}

/// The stored form of a parsed allowlist, `None` for none.
pub fn stored(list: Option<&Allowlist>) -> Option<String> {
    list.map(Allowlist::to_stored)
}

/// The entries of a stored allowlist, for showing (empty: none).
pub fn stored_entries(stored: Option<&str>) -> Vec<String> {
    Allowlist::from_stored(stored)
        .map(|l| l.entries())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_normalises_and_allows() {
        let list = parse(" 127.0.0.2 ,\n10.1.2.3/8\r\n\n2001:db8::1/32, 127.0.0.2")
            .unwrap()
            .unwrap();
        assert_eq!(
            list.entries(),
            vec!["127.0.0.2", "10.0.0.0/8", "2001:db8::/32"]
        );
        assert!(list.allows(ip("127.0.0.2")));
        assert!(list.allows(ip("::ffff:127.0.0.2")));
        assert!(!list.allows(ip("127.0.0.3")));
        assert!(list.allows(ip("10.200.0.1")));
        assert!(list.allows(ip("2001:db8:ffff::9")));
        assert_eq!(Allowlist::from_stored(Some(&list.to_stored())), Some(list));
    }

    #[test]
    fn empty_is_none_and_bad_entries_are_named() {
        assert_eq!(parse(" , \n").unwrap(), None);
        let e = parse("10.0.0.0/8, 10.0.0.300").unwrap_err();
        assert_eq!(e.field, FIELD);
        assert!(e.message.contains("\"10.0.0.300\""), "{}", e.message);
        assert!(parse("10.0.0.0/33").is_err());
        let many: Vec<String> = (0..=MAX_ENTRIES).map(|i| format!("10.0.{i}.1")).collect();
        assert!(
            parse(&many.join(","))
                .unwrap_err()
                .message
                .contains("101 given")
        );
        assert!(parse(&many[..MAX_ENTRIES].join("\n")).is_ok());
    }

    #[test]
    fn a_stored_list_left_empty_allows_nothing() {
        let list = Allowlist::from_stored(Some("")).unwrap();
        assert!(!list.allows(ip("127.0.0.1")));
        assert_eq!(Allowlist::from_stored(None), None);
    }
}
