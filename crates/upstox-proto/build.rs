//! Generates the feed's Rust types from our own `.proto` with a vendored `protoc` (no apt step).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    println!("cargo:rerun-if-changed=proto/MarketDataFeedV3.proto");
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    config.compile_protos(&["proto/MarketDataFeedV3.proto"], &["proto"])?;
    Ok(())
}
