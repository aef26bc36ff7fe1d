use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    inferloop::telemetry::init();
    let app = web::App::new()?;
    lambda_http::run(service_fn(|req| web::handle(&app, req))).await
}
