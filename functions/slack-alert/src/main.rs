use lambda_http::Error;

#[tokio::main]
async fn main() -> Result<(), Error> {
    inferloop::telemetry::init();
    let app = slack_alert::App::from_env().await?;
    inferloop::dispatch::run(|invocation| slack_alert::invoke(&app, invocation)).await
}
