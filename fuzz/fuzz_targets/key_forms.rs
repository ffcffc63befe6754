//! Form bodies of the create and edit dialogs: decoded as the handlers do
//! (`serde_html_form`, repeated fields allowed), then every field run
//! through the domain validator the create/edit use cases apply to it.
#![no_main]

use keyward::domain::keys as k;
use keyward::web::keys::{actions::EditBody, create::CreateForm};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_html_form::from_bytes::<CreateForm>(data);
    let _ = serde_html_form::from_bytes::<EditBody>(data);
    let Ok(fields) = serde_html_form::from_bytes::<Vec<(String, String)>>(data) else {
        return;
    };
    let today = chrono::NaiveDate::from_ymd_opt(2026, 12, 4).unwrap_or_default();
    let mut expiry = (String::new(), String::new());
    for (name, value) in &fields {
        match name.as_str() {
            "name" => {
                if let Ok(n) = k::parse_name(value) {
                    assert!(!n.trim().is_empty());
                }
            }
            "description" => drop(k::parse_description(value)),
            "tags" => drop(k::parse_tags(value)),
            "resources" => drop(k::parse_resources(value)),
            "rate_limit" => {
                if let Ok(Some(limit)) = k::parse_rate_limit(value) {
                    assert!(limit > 0);
                }
            }
            "grace" => drop(k::parse_grace(value)),
            "expiry" => expiry.0.clone_from(value),
            "expiry_date" => expiry.1.clone_from(value),
            _ => {}
        }
    }
    if let Ok(e) = k::Expiry::parse(&expiry.0, &expiry.1, today) {
        let now = today.and_hms_opt(12, 0, 0).unwrap_or_default();
        if let Some(at) = e.expires_at(now) {
            assert!(at > now, "an expiry chosen in a form is in the future");
        }
    }
});
