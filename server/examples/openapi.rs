//! Prints the OpenAPI document `/v1/openapi.json` serves, for client
//! generators and reviews: `cargo run -p chronos-server --example openapi`.
fn main() {
    let doc = chronos_server::api::document();
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("the document serializes")
    );
}
