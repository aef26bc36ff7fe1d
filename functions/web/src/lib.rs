//! The web function: the API as a whole. Today it is the gateway's `$default` route,
//! which API Gateway sends every request that no route of template.yaml takes: an
//! unknown path gets 404, a known path with a method it does not serve gets 405 with
//! `Allow`, both in the one error shape (API Gateway's own answer would be
//! `{"message":"Not Found"}`). The API description, its docs page and the dashboard
//! (DESIGN.md §12) are to be served from here as well.

use inferloop::http::RequestMeta;
use inferloop::http::error_response;
use inferloop::http::router::RouteSet;
use lambda_http::{Body, Request, Response};
use std::convert::Infallible;

include!(concat!(env!("OUT_DIR"), "/routes.rs"));

pub struct App {
    /// Every route of template.yaml, without handlers.
    pub routes: RouteSet,
}

impl App {
    /// Refuses to start when the table built from the template is malformed.
    pub fn new() -> Result<Self, String> {
        Ok(Self {
            routes: RouteSet::new(TEMPLATE_ROUTES)?,
        })
    }
}

/// The Lambda entry point: every request gets an answer, in the one error shape.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    let meta = RequestMeta::from_request(&req);
    let err = app.routes.unmatched(&req);
    tracing::info!(
        request_id = %meta.request_id,
        method = %req.method(),
        path = %req.uri().path(),
        code = err.code(),
        "no route"
    );
    Ok(error_response(&err, &meta.request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(method: &str, path: &str) -> Response<Body> {
        let app = App::new().unwrap();
        let req = lambda_http::http::Request::builder()
            .method(method)
            .uri(path)
            .body(Body::Empty)
            .unwrap();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(handle(&app, req))
            .unwrap()
    }

    #[test]
    fn the_template_routes_are_known() {
        assert!(TEMPLATE_ROUTES.contains(&("POST", "/login")));
        assert!(TEMPLATE_ROUTES.contains(&("DELETE", "/users/{username}")));
    }

    #[test]
    fn unknown_paths_are_404_and_wrong_methods_405_in_the_one_shape() {
        let missing = answer("GET", "/nowhere");
        assert_eq!(missing.status(), 404);
        let Body::Text(text) = missing.body() else {
            panic!("a JSON body")
        };
        assert!(text.contains(r#""code":"not_found""#), "{text}");
        let wrong = answer("GET", "/login");
        assert_eq!(wrong.status(), 405);
        assert_eq!(wrong.headers()["allow"], "POST");
        let users = answer("PUT", "/users");
        assert_eq!(users.headers()["allow"], "GET, POST");
        assert_eq!(answer("PATCH", "/users/bob").headers()["allow"], "DELETE");
    }
}
