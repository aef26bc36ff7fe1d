//! Writes the API's routes, as template.yaml declares them, into `$OUT_DIR/routes.rs`:
//! the `$default` route answers 405 for a known path with the wrong method and 404
//! for an unknown one, so it needs the whole table. Built from the template itself
//! (no second list); a route added there is known here at the next build.

use serde_norway::Value;
use std::fmt::Write;
use std::path::PathBuf;

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let template = manifest.join("../../template.yaml");
    println!("cargo:rerun-if-changed={}", template.display());
    let text = std::fs::read_to_string(&template).expect("template.yaml is readable");
    let yaml: Value = serde_norway::from_str(&text).expect("template.yaml is YAML");
    let mut routes = Vec::new();
    for resource in yaml["Resources"]
        .as_mapping()
        .expect("Resources is a mapping")
        .values()
    {
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let properties = &event["Properties"];
            // An HttpApi event without Path and Method is the $default route itself.
            if let (Some(method), Some(path)) =
                (properties["Method"].as_str(), properties["Path"].as_str())
            {
                routes.push((method.to_uppercase(), path.to_owned()));
            }
        }
    }
    routes.sort();
    let mut out = String::from("/// (method, path) of every route of template.yaml.\n");
    out.push_str("pub const TEMPLATE_ROUTES: &[(&str, &str)] = &[\n");
    for (method, path) in &routes {
        writeln!(out, "    ({method:?}, {path:?}),").expect("writing to a String");
    }
    out.push_str("];\n");
    let dest = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo")).join("routes.rs");
    std::fs::write(dest, out).expect("OUT_DIR is writable");
}
