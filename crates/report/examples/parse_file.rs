//! Parses a report file and prints the summary (or the canonical JSON with
//! `--json`, or the line-by-line explanation with `--explain`):
//! `cargo run -p closeout-report --example parse_file -- FILE [--json|--explain]`.

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(path) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: parse_file FILE [--json|--explain]");
        std::process::exit(2);
    };
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let text = String::from_utf8_lossy(&bytes);
    match closeout_report::parse(&text) {
        Ok(report) if args.iter().any(|a| a == "--json") => {
            match closeout_proto::json::to_json_pretty("ParsedReport", &report) {
                Ok(json) => println!("{json}"),
                Err(e) => {
                    eprintln!("{e}");
                    std::process::exit(1);
                }
            }
        }
        Ok(report) if args.iter().any(|a| a == "--explain") => {
            print!("{}", closeout_report::render_explanation(&report));
        }
        Ok(report) => print!("{}", closeout_report::render_summary(&report)),
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    }
}
