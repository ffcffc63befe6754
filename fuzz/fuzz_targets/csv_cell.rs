//! CSV export escaping (`web::export::cell`): whatever a stranger typed into
//! a name, tag, user agent or email, the cell a spreadsheet reads back must
//! not start a formula, and must be the escaped text exactly.
#![no_main]

use keyward::web::export::cell;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let escaped = cell(text);
    assert!(!escaped.starts_with(['=', '+', '-', '@', '\t', '\r']));
    assert!(escaped == text || escaped == format!("'{text}"));
    // Written and read back as the export does: one record, same text.
    let mut out = csv::Writer::from_writer(Vec::new());
    if out.write_record([escaped.as_str(), "next"]).is_err() {
        return;
    }
    let Ok(bytes) = out.into_inner() else { return };
    let mut read = csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(bytes.as_slice());
    let records: Vec<csv::StringRecord> = read.records().filter_map(Result::ok).collect();
    assert_eq!(records.len(), 1, "{escaped:?}");
    assert_eq!(&records[0][0], escaped.as_str());
    assert_eq!(&records[0][1], "next");
});
