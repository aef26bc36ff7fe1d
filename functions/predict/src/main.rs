use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    inferloop::telemetry::init();
    let app = predict::App::from_env().await?;
    lambda_http::run(service_fn(|req| predict::handle(&app, req))).await
}
