use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    inferloop::telemetry::init();
    let app = retrain::App::from_env().await?;
    inferloop::dispatch::run(|invocation| retrain::invoke(&app, invocation)).await
}
