use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    inferloop::telemetry::init();
    let app = feedback::App::from_env().await?;
    lambda_http::run(service_fn(|req| feedback::handle(&app, req))).await
}
