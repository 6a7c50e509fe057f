//! Compiles `proto/` with protox (no system `protoc`), generates prost and
//! tonic code from the descriptor set, and keeps the encoded set in
//! `OUT_DIR` for server reflection and canonical JSON.

use prost::Message;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let files = [
        "common", "events", "findings", "tracker", "metrics", "notify",
    ]
    .map(|name| root.join(format!("closeout/v1/{name}.proto")));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("closeout_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}
