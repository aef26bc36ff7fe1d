use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    inferloop::telemetry::init();
    let app = trends::App::from_env().await?;
    lambda_http::run(service_fn(|req| trends::handle(&app, req))).await
}
