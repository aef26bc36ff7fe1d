use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    inferloop::telemetry::init();
    let app = drift::App::from_env().await?;
    inferloop::dispatch::run(|invocation| drift::invoke(&app, invocation)).await
}
