//! Fuzz target: `closeout_report::parse` on arbitrary bytes (as lossy UTF-8),
//! and `render_summary` on whatever it accepts. Any panic is a bug; keep the
//! input as a regression test in crates/report/tests/.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(report) = closeout_report::parse(&text) {
        let _ = closeout_report::render_summary(&report);
    }
});
