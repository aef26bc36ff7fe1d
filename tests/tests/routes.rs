//! Every route is declared in three places that must agree: each function's route
//! table (its lib.rs), the deployed API (template.yaml's HttpApi events) and
//! `cargo lambda watch`'s router (Cargo.toml). Local runs are only worth what they share
//! with production, and a route added in one place only fails here, by name.

use serde_norway::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

type Route = (String, String, String); // (METHOD, path, function)

/// What one declaration of the API says.
#[derive(Debug, Default, Clone)]
struct Declared {
    /// (method, path, function) of every route.
    routes: BTreeSet<Route>,
    /// The function of the gateway's `$default` route, if there is one.
    default_function: Option<String>,
}

/// The watch router: a path goes to one function for every method (`"/x" = "f"`) or
/// per method (`"/x" = [{method, function}]`); `/{*path}` is the catch-all.
#[derive(Debug, Default, Clone)]
struct WatchRouter {
    any_method: BTreeMap<String, String>,
    per_method: BTreeSet<Route>,
    catch_all: Option<String>,
}

const CATCH_ALL: &str = "/{*path}";

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

fn template_routes(text: &str) -> Declared {
    let template: Value = serde_norway::from_str(text).unwrap();
    let mut declared = Declared::default();
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
            let properties = &event["Properties"];
            match (properties["Method"].as_str(), properties["Path"].as_str()) {
                (Some(method), Some(path)) => {
                    declared.routes.insert((
                        method.to_uppercase(),
                        path.to_owned(),
                        function.clone(),
                    ));
                }
                // SAM makes an HttpApi event without Path and Method the $default route.
                (None, None) => {
                    assert!(
                        declared
                            .default_function
                            .replace(function.clone())
                            .is_none(),
                        "two $default routes"
                    );
                }
                other => {
                    panic!("{function}: an HttpApi event with only one of Method, Path: {other:?}")
                }
            }
        }
    }
    declared
}

fn watch_router(text: &str) -> WatchRouter {
    let manifest: toml::Table = text.parse().unwrap();
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"]
        .as_table()
        .expect("[workspace.metadata.lambda.watch.router]");
    let mut watch = WatchRouter::default();
    for (path, target) in router {
        match target {
            toml::Value::String(function) if path == CATCH_ALL => {
                watch.catch_all = Some(function.clone());
            }
            toml::Value::String(function) => {
                watch.any_method.insert(path.clone(), function.clone());
            }
            toml::Value::Array(targets) => {
                for target in targets {
                    watch.per_method.insert((
                        target["method"].as_str().unwrap().to_uppercase(),
                        path.clone(),
                        target["function"].as_str().unwrap().to_owned(),
                    ));
                }
            }
            other => panic!("{path}: a router entry is a function or a list, not {other:?}"),
        }
    }
    watch
}

/// Every function's own route table.
fn function_tables() -> BTreeSet<Route> {
    fn table<A: inferloop::http::Service>(
        name: &str,
        router: &inferloop::http::Router<A>,
    ) -> Vec<Route> {
        router.check().unwrap_or_else(|e| panic!("{name}: {e}"));
        router
            .routes()
            .map(|r| (r.method().to_string(), r.path().to_owned(), name.to_owned()))
            .collect()
    }
    let mut routes = BTreeSet::new();
    routes.extend(table("login", login::routes()));
    routes.extend(table("audit-logs", audit_logs::routes()));
    routes.extend(table("predict", predict::routes()));
    routes.extend(table("feedback", feedback::routes()));
    routes.extend(table("trends", trends::routes()));
    routes.extend(table("slack-alert", slack_alert::routes()));
    routes.extend(table("drift", drift::routes()));
    routes.extend(table("retrain", retrain::routes()));
    routes
}

/// What disagrees between the three declarations, one line per route.
fn disagreements(
    template: &Declared,
    tables: &BTreeSet<Route>,
    watch: &WatchRouter,
) -> Vec<String> {
    let mut problems = Vec::new();
    for route in template.routes.difference(tables) {
        problems.push(format!(
            "{route:?} is in template.yaml but in no function's route table"
        ));
    }
    for route in tables.difference(&template.routes) {
        problems.push(format!(
            "{route:?} is in a function's route table but not in template.yaml"
        ));
    }
    for (method, path, function) in &template.routes {
        let by_watch = watch.any_method.get(path).cloned().or_else(|| {
            watch
                .per_method
                .iter()
                .find(|(m, p, _)| m == method && p == path)
                .map(|(_, _, f)| f.clone())
        });
        if by_watch.as_deref() != Some(function.as_str()) {
            problems.push(format!(
                "({method}, {path}) is served by {function} in template.yaml, by {by_watch:?} under cargo lambda watch"
            ));
        }
    }
    let template_paths: BTreeSet<&str> =
        template.routes.iter().map(|(_, p, _)| p.as_str()).collect();
    for path in watch.any_method.keys() {
        if !template_paths.contains(path.as_str()) {
            problems.push(format!(
                "{path} is in Cargo.toml's router but not in template.yaml"
            ));
        }
    }
    for route in watch.per_method.difference(&template.routes) {
        problems.push(format!(
            "{route:?} is in Cargo.toml's router but not in template.yaml"
        ));
    }
    if watch.catch_all != template.default_function {
        problems.push(format!(
            "the $default route goes to {:?} in template.yaml, {CATCH_ALL} to {:?} under cargo lambda watch",
            template.default_function, watch.catch_all
        ));
    }
    problems
}

fn declared() -> (Declared, BTreeSet<Route>, WatchRouter) {
    let template = template_routes(&std::fs::read_to_string(root().join("template.yaml")).unwrap());
    let watch = watch_router(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap());
    (template, function_tables(), watch)
}

#[test]
fn the_route_tables_the_template_and_the_watch_router_declare_the_same_routes() {
    let (template, tables, watch) = declared();
    assert!(template.routes.len() >= 15, "{:?}", template.routes);
    let problems = disagreements(&template, &tables, &watch);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn a_route_declared_in_one_place_only_is_named() {
    let (template, tables, watch) = declared();
    let mut extra_table = tables.clone();
    extra_table.insert(("PUT".into(), "/users/{username}".into(), "login".into()));
    let problems = disagreements(&template, &extra_table, &watch);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].contains("PUT") && problems[0].contains("not in template.yaml"));

    let mut moved = watch.clone();
    moved.any_method.insert("/feedback".into(), "trends".into());
    moved.any_method.insert("/nowhere".into(), "login".into());
    moved.catch_all = None;
    let problems = disagreements(&template, &tables, &moved);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("/feedback") && p.contains("trends")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("/nowhere")),
        "{problems:?}"
    );
    assert!(
        problems.iter().any(|p| p.contains("$default")),
        "{problems:?}"
    );

    let mut missing = template.clone();
    missing.routes.retain(|(_, p, _)| p != "/health");
    let problems = disagreements(&missing, &tables, &watch);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("/health") && p.contains("not in template.yaml")),
        "{problems:?}"
    );
}

#[test]
fn every_routed_function_is_a_crate_of_the_workspace() {
    let (template, _, watch) = declared();
    let functions = template
        .routes
        .iter()
        .map(|(_, _, f)| f.clone())
        .chain(template.default_function)
        .chain(watch.any_method.values().cloned());
    for function in functions {
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

/// Without a cache the per-user rate limit fails open, so API Gateway's own throttle is
/// the limit a default deploy has: every route has one, and the costly ones (an Argon2
/// verification, an image decode) a tighter one, each naming a route that exists.
#[test]
fn the_gateway_throttles_every_route_and_login_and_predict_more() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let template: Value = serde_norway::from_str(&text).unwrap();
    let api = &template["Resources"]["HttpApi"]["Properties"];
    let default = &api["DefaultRouteSettings"];
    assert!(default.get("ThrottlingRateLimit").is_some());
    assert!(default.get("ThrottlingBurstLimit").is_some());
    let routes = template_routes(&text).routes;
    let keys: BTreeSet<String> = routes.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    let throttled: BTreeSet<String> = api["RouteSettings"]
        .as_mapping()
        .expect("RouteSettings")
        .keys()
        .map(|k| k.as_str().unwrap().to_owned())
        .collect();
    for key in &throttled {
        assert!(
            keys.contains(key),
            "RouteSettings names {key}, which is no route"
        );
    }
    for (method, path, function) in &routes {
        if path == "/login" || (function == "predict" && method == "POST") {
            assert!(
                throttled.contains(&format!("{method} {path}")),
                "{method} {path} has no throttle of its own"
            );
        }
    }
}

/// Least privilege where DynamoDB can express it: the account listing and the account
/// check read no password hash, and feedback may set only a prediction's label.
#[test]
fn iam_conditions_narrow_what_roles_may_read_and_write() {
    let text = std::fs::read_to_string(root().join("template.yaml")).unwrap();
    let template: Value = serde_norway::from_str(&text).unwrap();
    let attributes_of = |statement: &Value| -> Vec<String> {
        statement["Condition"]["ForAllValues:StringEquals"]["dynamodb:Attributes"]
            .as_sequence()
            .map(|list| {
                list.iter()
                    .map(|a| a.as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    };
    let statements = |policy: &Value| -> Vec<Value> {
        policy["Statement"]
            .as_sequence()
            .cloned()
            .unwrap_or_default()
    };
    let check = &template["Resources"]["AccountCheckPolicy"]["Properties"]["PolicyDocument"];
    let check = statements(check);
    assert_eq!(check.len(), 1);
    assert_eq!(attributes_of(&check[0]), ["username", "user_id", "role"]);
    let function_statements = |id: &str| -> Vec<Value> {
        template["Resources"][id]["Properties"]["Policies"]
            .as_sequence()
            .unwrap()
            .iter()
            .flat_map(statements)
            .collect()
    };
    let scan = function_statements("LoginFunction")
        .into_iter()
        .find(|s| format!("{:?}", s["Action"]).contains("dynamodb:Scan"))
        .expect("login scans Users");
    let listed = attributes_of(&scan);
    assert!(
        !listed.is_empty() && !listed.contains(&"password_hash".to_owned()),
        "{listed:?}"
    );
    let label = function_statements("FeedbackFunction")
        .into_iter()
        .find(|s| {
            format!("{:?}", s["Action"]).contains("dynamodb:UpdateItem")
                && format!("{:?}", s["Resource"]).contains("PredictionsTable")
        })
        .expect("feedback marks predictions");
    assert_eq!(
        attributes_of(&label),
        ["prediction_id", "true_label", "labelled_at"]
    );
}
