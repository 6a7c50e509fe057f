//! Prints a document's text as the report parser reads it:
//! `cargo run -p closeout-document --example to_text -- FILE`.

use std::path::Path;

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: to_text FILE");
        std::process::exit(2);
    };
    let path = Path::new(&path);
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            std::process::exit(1);
        }
    };
    match closeout_document::to_text(&bytes, closeout_document::media_type_of(path, &bytes)) {
        Ok(text) => print!("{text}"),
        Err(e) => {
            eprintln!("{}: {e}", path.display());
            std::process::exit(1);
        }
    }
}
