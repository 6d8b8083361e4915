//! `docs/GUARANTEES.md` prints every limit from the structs that hold them
//! (`LinkLimits`, `NodeLimits`): the table between its `limits:` markers
//! is made from their declarations, so the page, the documentation and
//! the defaults cannot disagree. `IPCHNL_BLESS=1 cargo test -p
//! ipchnl-manager --test guarantees_doc` writes the table anew after a
//! limit changes.

use manager::ManagerConfig;

const BEGIN: &str =
    "<!-- limits: made from LinkLimits and NodeLimits; see manager/tests/guarantees_doc.rs -->";
const END: &str = "<!-- /limits -->";

/// The table the page prints: a row per limit, its field, what it bounds
/// and its default.
fn table() -> String {
    let mut out = String::from("| limit | what | default |\n|---|---|---|\n");
    let config = ManagerConfig::default();
    for (scope, rows) in [("link", config.link.rows()), ("limits", config.limits.rows())] {
        for row in rows {
            assert!(row.doc_states_default(), "{}: its docs do not say its default {}", row.name, row.shown);
            let what = row.what().replace('|', "\\|");
            out.push_str(&format!("| `{scope}.{}` | {what} | {} |\n", row.name, row.shown));
        }
    }
    out
}

#[test]
fn the_guarantees_page_prints_every_limit_as_the_code_has_it() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/GUARANTEES.md");
    let page = std::fs::read_to_string(&path).expect("docs/GUARANTEES.md");
    let start = page.find(BEGIN).expect("the page has the limits' begin marker") + BEGIN.len();
    let end = page[start..].find(END).expect("the page has the limits' end marker") + start;
    let expected = format!("\n{}", table());
    if page[start..end] != expected {
        if std::env::var_os("IPCHNL_BLESS").is_some() {
            let page = format!("{}{expected}{}", &page[..start], &page[end..]);
            std::fs::write(&path, page).expect("written");
            return;
        }
        panic!(
            "docs/GUARANTEES.md's limits differ from the code's; run IPCHNL_BLESS=1 cargo test -p ipchnl-manager \
             --test guarantees_doc.\nThe code's:\n{expected}"
        );
    }
}

#[test]
fn every_limit_documents_its_default() {
    let config = ManagerConfig::default();
    for row in config.limit_rows() {
        assert!(row.doc_states_default(), "{}: docs {:?}, value {}", row.name, row.doc, row.shown);
    }
}
