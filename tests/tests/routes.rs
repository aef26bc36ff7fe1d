//! `cargo lambda watch`'s router (Cargo.toml) and the deployed API (template.yaml) must
//! serve the same routes with the same functions: local runs are only worth what they
//! share with production.

use serde_norway::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

type Route = (String, String, String); // (METHOD, path, function)

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `AuditLogsFunction` → `audit-logs`: SAM logical ids and crate names agree (DESIGN.md §1).
fn function_name(logical_id: &str) -> String {
    let stem = logical_id
        .strip_suffix("Function")
        .unwrap_or_else(|| panic!("{logical_id}: function logical ids end in \"Function\""));
    let mut name = String::new();
    for (i, c) in stem.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('-');
        }
        name.push(c.to_ascii_lowercase());
    }
    name
}

fn template_routes() -> BTreeSet<Route> {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let template: Value = serde_norway::from_str(&text).unwrap();
    let mut routes = BTreeSet::new();
    let resources = template["Resources"].as_mapping().expect("Resources");
    for (id, resource) in resources {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let function = function_name(id.as_str().unwrap());
        let Some(events) = resource["Properties"]["Events"].as_mapping() else {
            continue;
        };
        for event in events.values() {
            if event["Type"].as_str() != Some("HttpApi") {
                continue;
            }
            let path = event["Properties"]["Path"]
                .as_str()
                .expect("Path")
                .to_owned();
            let method = event["Properties"]["Method"]
                .as_str()
                .expect("Method")
                .to_uppercase();
            routes.insert((method, path, function.clone()));
        }
    }
    routes
}

fn watch_routes() -> BTreeSet<Route> {
    let text = std::fs::read_to_string(root().join("Cargo.toml")).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("[workspace.metadata.lambda.watch.router]");
    let mut routes = BTreeSet::new();
    for (path, targets) in router {
        for target in targets.as_array().expect("a list of {method, function}") {
            routes.insert((
                target["method"].as_str().unwrap().to_uppercase(),
                path.clone(),
                target["function"].as_str().unwrap().to_owned(),
            ));
        }
    }
    routes
}

#[test]
fn the_watch_router_and_the_template_serve_the_same_routes() {
    let template = template_routes();
    let watch = watch_routes();
    assert!(!template.is_empty());
    let only_template: Vec<_> = template.difference(&watch).collect();
    let only_watch: Vec<_> = watch.difference(&template).collect();
    assert!(
        only_template.is_empty() && only_watch.is_empty(),
        "only in template.yaml: {only_template:?}\nonly in Cargo.toml's router: {only_watch:?}"
    );
}

#[test]
fn every_routed_function_is_a_crate_of_the_workspace() {
    for (_, _, function) in watch_routes() {
        let manifest = root().join("functions").join(&function).join("Cargo.toml");
        assert!(
            manifest.exists(),
            "{function} has no crate at {}",
            manifest.display()
        );
    }
}

#[test]
fn function_names_follow_the_convention() {
    assert_eq!(function_name("LoginFunction"), "login");
    assert_eq!(function_name("AuditLogsFunction"), "audit-logs");
    assert_eq!(function_name("SlackAlertFunction"), "slack-alert");
}
