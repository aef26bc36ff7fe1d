//! The predict function: `POST /api/v1/predict`, `/api/v2/predict`, `/api/ab/predict`,
//! `/predict` (the production line) and `GET /health`.
//!
//! A request: authenticate → pick the line → rate limit (Redis, fails open) → read the
//! image → the line's production model (registry, sha256-checked) → cache lookup by
//! (model version, image sha256) or decode + preprocess + infer → store the prediction
//! with its 28×28 input and drift features → audit → answer.

pub mod ab;
pub mod discovery;
pub mod input;

use ab::AbSplit;
use inferloop::ApiError;
use inferloop::audit::{Action, Outcome};
use inferloop::auth::Principal;
use inferloop::cache::{Cache, CacheStatus, RateLimit};
use inferloop::config::{self, Env};
use inferloop::domain::{Line, PredictionId};
use inferloop::http::{Anyone, Ctx, HandlerResult, Router, json_response};
use inferloop::model::infer::Prediction;
use inferloop::model::preprocess::{self, INPUT_LEN, Preprocessed};
use inferloop::model::registry::{DEFAULT_POINTER_TTL, LoadedModel, Registry};
use inferloop::service::{ColdStart, Common, Service};
use inferloop::store::models::ModelStore;
use inferloop::store::predictions::{DriftFeatures, PredictionRecord, PredictionStore};
use inferloop::telemetry::millis;
use inferloop::time::now_secs;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, Response};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

pub const SERVICE: &str = "inferloop-predict";

/// Settings of this function alone, from the environment.
#[derive(Debug, Clone)]
pub struct PredictSettings {
    pub predictions_table: String,
    pub models_table: String,
    pub models_bucket: String,
    pub model_name: String,
    pub pointer_ttl: Duration,
    pub retention: Duration,
    pub cache_ttl: Duration,
    pub cache_timeout: Duration,
    pub rate_limit_per_hour: u64,
    pub ab: AbSplit,
    pub redis_url: Option<String>,
    pub cache_name: Option<String>,
}

impl PredictSettings {
    pub fn from_env<F: Fn(&str) -> Option<String>>(
        env: &Env<F>,
    ) -> Result<Self, config::ConfigError> {
        Ok(Self {
            predictions_table: env.required("PREDICTIONS_TABLE")?,
            models_table: env.required("MODELS_TABLE")?,
            models_bucket: env.required("MODELS_BUCKET")?,
            model_name: env.optional("MODEL_NAME").unwrap_or_else(|| "mnist".into()),
            pointer_ttl: Duration::from_secs(env.number_or(
                "MODEL_POINTER_TTL_SECONDS",
                DEFAULT_POINTER_TTL.as_secs(),
                0..=3600,
            )?),
            retention: Duration::from_secs(
                env.number_or("PREDICTION_RETENTION_DAYS", 90, 1..=3650)? * 86_400,
            ),
            cache_ttl: Duration::from_secs(env.number_or(
                "PREDICTION_CACHE_TTL_SECONDS",
                600,
                1..=86_400,
            )?),
            cache_timeout: Duration::from_millis(env.number_or(
                "CACHE_TIMEOUT_MS",
                50,
                1..=1000,
            )?),
            rate_limit_per_hour: env.number_or("RATE_LIMIT_PER_HOUR", 1000, 1..=10_000_000)?,
            ab: AbSplit {
                experiment: env
                    .optional("AB_EXPERIMENT")
                    .unwrap_or_else(|| ab::DEFAULT_EXPERIMENT.into()),
                v2_percent: env.number_or("AB_V2_PERCENT", ab::DEFAULT_V2_PERCENT, 0..=100)?,
            },
            redis_url: env.optional("REDIS_URL"),
            cache_name: env.optional("CACHE_NAME"),
        })
    }
}

pub struct App {
    pub common: Common,
    pub registry: Registry,
    pub predictions: PredictionStore,
    pub cache: Cache,
    pub rate_limit: RateLimit,
    pub settings: PredictSettings,
    started: Instant,
}

impl App {
    /// Cold start: settings, clients, the Redis endpoint, and the production models
    /// loaded before the first request. A missing setting stops it with its name.
    pub async fn from_env() -> Result<Self, lambda_http::Error> {
        let started = Instant::now();
        ROUTES.check()?;
        let env = config::process_env();
        let settings = PredictSettings::from_env(&env)?;
        let start = ColdStart::from_env(&env).await?;
        let sdk_ready = started.elapsed();
        let cache = cache_from_settings(&start.sdk, &settings).await?;
        let app = Self::new(start, settings, cache);
        let clients_ready = started.elapsed();
        // Side by side: the model's fetches and Redis's handshake both wait on the network.
        let ((), cache_connected) = tokio::join!(app.registry.preload(), app.cache.connect());
        // Where a cold start's init goes, in ms (the model's own phases are on its
        // "model loaded" line).
        tracing::info!(
            total_ms = millis(started.elapsed()),
            sdk_ms = millis(sdk_ready),
            clients_ms = millis(clients_ready - sdk_ready),
            preload_ms = millis(started.elapsed() - clients_ready),
            cache_connected,
            "initialised"
        );
        Ok(app)
    }

    pub fn new(start: ColdStart, settings: PredictSettings, cache: Cache) -> Self {
        let registry = Registry::new(
            ModelStore::new(start.dynamodb.clone(), &settings.models_table),
            inferloop::aws::s3(&start.sdk),
            &settings.models_bucket,
            &settings.model_name,
            settings.pointer_ttl,
        );
        Self {
            common: start.common,
            registry,
            predictions: PredictionStore::new(start.dynamodb, &settings.predictions_table),
            cache,
            rate_limit: RateLimit::per_hour(settings.rate_limit_per_hour),
            settings,
            started: Instant::now(),
        }
    }
}

/// `REDIS_URL` if set, else the ElastiCache endpoint named by `CACHE_NAME`, else none.
/// A cache that cannot be found is logged and skipped: predictions work without it.
async fn cache_from_settings(
    sdk: &inferloop::aws::SdkConfig,
    settings: &PredictSettings,
) -> Result<Cache, lambda_http::Error> {
    let url = match (&settings.redis_url, &settings.cache_name) {
        (Some(url), _) => Some(url.clone()),
        (None, Some(name)) => {
            let client = aws_sdk_elasticache::Client::new(sdk);
            match discovery::elasticache_url(&client, name).await {
                Ok(url) => Some(url),
                Err(err) => {
                    tracing::error!(error = %err, cache = name, "cache not found; predicting without it");
                    None
                }
            }
        }
        (None, None) => {
            tracing::warn!("neither REDIS_URL nor CACHE_NAME is set; predicting without a cache");
            None
        }
    };
    Ok(match url {
        // A malformed URL is a configuration error: refuse to start, naming it.
        Some(url) => Cache::new(&url, settings.cache_timeout)?,
        None => Cache::disabled(),
    })
}

impl Service for App {
    fn common(&self) -> &Common {
        &self.common
    }
}

static ROUTES: LazyLock<Router<App>> = LazyLock::new(|| {
    Router::new()
        .user(Method::POST, "/api/v1/predict", predict_v1)
        .user(Method::POST, "/api/v2/predict", predict_v2)
        .user(Method::POST, "/api/ab/predict", predict_ab)
        .user(Method::POST, "/predict", predict_production)
        .anyone(Method::GET, "/health", health)
});

/// This function's route table.
pub fn routes() -> &'static Router<App> {
    &ROUTES
}

/// The Lambda entry point: every request gets an answer, errors in the one shape.
pub async fn handle(app: &App, req: Request) -> Result<Response<Body>, Infallible> {
    Ok(ROUTES.handle(app, req).await)
}

/// Which line a predict route asks for; stored as the prediction's `route`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineChoice {
    /// `/api/v1/predict`, `/api/v2/predict`: that line.
    Named(Line),
    /// `/api/ab/predict`: the caller's A/B arm.
    AbArm,
    /// `/predict`: the registry's default line.
    Production,
}

impl LineChoice {
    /// The `route` a stored prediction names (and the aggregates count by).
    fn route_name(self) -> &'static str {
        match self {
            Self::Named(line) => line.as_str(),
            Self::AbArm => "ab",
            Self::Production => "production",
        }
    }
}

async fn predict_v1(app: &App, cx: Ctx<'_, Principal>) -> HandlerResult {
    predict(app, cx, LineChoice::Named(Line::V1)).await
}

async fn predict_v2(app: &App, cx: Ctx<'_, Principal>) -> HandlerResult {
    predict(app, cx, LineChoice::Named(Line::V2)).await
}

async fn predict_ab(app: &App, cx: Ctx<'_, Principal>) -> HandlerResult {
    predict(app, cx, LineChoice::AbArm).await
}

async fn predict_production(app: &App, cx: Ctx<'_, Principal>) -> HandlerResult {
    predict(app, cx, LineChoice::Production).await
}

#[derive(Serialize)]
struct ModelRef<'a> {
    name: &'a str,
    version: &'a str,
}

/// DESIGN.md §2's answer, with the seeds' field names kept for their clients.
#[derive(Serialize)]
struct PredictResponse<'a> {
    prediction_id: &'a str,
    prediction: u8,
    probability: f32,
    probabilities: [f32; 10],
    model: ModelRef<'a>,
    /// The line that answered, under the seeds' name for it.
    #[serde(rename = "variant")]
    line: &'a str,
    cached: bool,
    latency_ms: f64,
    prediccion: u8,
    probabilidad: f32,
    version: &'a str,
    /// `/api/ab/predict` only: the caller's arm.
    #[serde(skip_serializing_if = "Option::is_none")]
    ab_version: Option<Line>,
}

/// What the cache keeps per (model version, image): everything a stored prediction
/// needs, so a hit skips decoding, preprocessing and inference entirely.
#[derive(Serialize, Deserialize)]
struct CachedAnswer {
    probabilities: [f32; 10],
    features: DriftFeatures,
    /// The 784-byte model input, hex.
    input: String,
}

/// A prediction, however it was obtained.
struct Answer {
    prediction: Prediction,
    features: DriftFeatures,
    input: [u8; INPUT_LEN],
    cached: bool,
}

fn rate_limited(retry_after_secs: u64, limit: u64, line: &str) -> ApiError {
    ApiError::TooManyRequests {
        code: "rate_limited",
        message: format!(
            "at most {limit} predictions per hour on line {line}; try again in {retry_after_secs} s"
        ),
        retry_after_secs,
    }
}

async fn predict(app: &App, cx: Ctx<'_, Principal>, choice: LineChoice) -> HandlerResult {
    let username = cx.caller.username.as_str();
    let (line, ab_arm) = match choice {
        LineChoice::Named(line) => (line.as_str().to_owned(), None),
        LineChoice::AbArm => {
            let arm = app.settings.ab.assign(username);
            (arm.as_str().to_owned(), Some(arm))
        }
        LineChoice::Production => (app.registry.default_line().await?, None),
    };
    if let Err(retry_after) = app
        .rate_limit
        .check(&app.cache, &format!("{username}:{line}"), now_secs())
        .await
    {
        inferloop::telemetry::emit_metric("inferloop", "PredictRateLimited", 1.0, "Count");
        return Err(rate_limited(retry_after, app.rate_limit.limit, &line));
    }
    let image = input::image_bytes(&cx.req).await?;
    let image_sha256 = hex::encode(Sha256::digest(&image));
    let model = app.registry.model_for_line(&line).await?;

    let started = Instant::now();
    let answer = answer(app, &model, &image, &image_sha256).await?;
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;

    let created_at = inferloop::time::now_rfc3339();
    // `cached` tells the caller that *its own* earlier request had this answer: a hit on
    // someone else's upload is served from the cache all the same (the saving is kept),
    // but saying so would tell one user what another uploaded.
    let own_repeat = app
        .cache
        .seen_before(
            &seen_key(username, &cache_key(&model, &image_sha256)),
            app.settings.cache_ttl,
        )
        .await
        .unwrap_or(false);
    let record = PredictionRecord {
        prediction_id: PredictionId::new().to_string(),
        username: username.to_owned(),
        user_id: Some(cx.caller.user_id.clone()),
        created_at,
        model_name: model.name.clone(),
        model_version: model.version.clone(),
        line: model.line.clone(),
        route: choice.route_name().to_owned(),
        ab_arm: ab_arm.map(|arm| arm.as_str().to_owned()),
        experiment: ab_arm.map(|_| app.settings.ab.experiment.clone()),
        digit: answer.prediction.digit,
        probability: answer.prediction.probability,
        probabilities: answer.prediction.probabilities,
        input_sha256: image_sha256,
        latency_ms,
        cached: answer.cached,
        features: answer.features,
        input: answer.input,
        expires_at: now_secs() + app.settings.retention.as_secs(),
    };
    // Every answer is stored (feedback refers to it) with its audit entry, in one
    // transaction; an answer that cannot be is not given.
    let entry = cx
        .audit
        .prepare(
            Action::Predict,
            Outcome::Success,
            serde_json::json!({
                "prediction_id": record.prediction_id,
                "route": record.route,
                "line": record.line,
                "model_version": record.model_version,
                "digit": record.digit,
                "cached": record.cached,
            }),
        )
        .await;
    app.predictions.put(&record, Some(entry)).await?;
    inferloop::telemetry::emit_metric("inferloop", "PredictLatency", latency_ms, "Milliseconds");

    let body = PredictResponse {
        prediction_id: &record.prediction_id,
        prediction: record.digit,
        probability: record.probability,
        probabilities: record.probabilities,
        model: ModelRef {
            name: &record.model_name,
            version: &record.model_version,
        },
        line: &record.line,
        cached: record.cached && own_repeat,
        latency_ms: (latency_ms * 1000.0).round() / 1000.0,
        prediccion: record.digit,
        probabilidad: record.probability,
        version: &record.line,
        ab_version: ab_arm,
    };
    Ok(json_response(StatusCode::OK, &body))
}

/// Marks that `username` has had the answer under `answer_key`; the name is hashed so
/// Redis holds no usernames.
fn seen_key(username: &str, answer_key: &str) -> String {
    let user = hex::encode(&Sha256::digest(username.as_bytes())[..12]);
    format!("seen:{user}:{answer_key}")
}

/// The cache key of DESIGN.md §5: the model version is in it, so a promotion never
/// serves the previous model's answers (the seeds' cache did).
pub fn cache_key(model: &LoadedModel, image_sha256: &str) -> String {
    format!("pred:{}@{}:{image_sha256}", model.name, model.version)
}

async fn answer(
    app: &App,
    model: &LoadedModel,
    image: &[u8],
    image_sha256: &str,
) -> Result<Answer, ApiError> {
    let key = cache_key(model, image_sha256);
    if let Some(hit) = app.cache.get(&key).await.and_then(|text| from_cache(&text)) {
        return Ok(hit);
    }
    let pre: Preprocessed = preprocess::preprocess_bytes(image).map_err(input::preprocess_error)?;
    let prediction = model
        .model
        .predict(&pre.input)
        .map_err(|e| ApiError::Internal(format!("inference failed: {e}")))?;
    let features = DriftFeatures {
        input: pre.features,
        top_probability: prediction.probability,
        entropy: prediction.entropy(),
        predicted_digit: prediction.digit,
    };
    let input = pre.input_bytes();
    let cached = CachedAnswer {
        probabilities: prediction.probabilities,
        features,
        input: hex::encode(input),
    };
    if let Ok(text) = serde_json::to_string(&cached) {
        app.cache.set(&key, &text, app.settings.cache_ttl).await;
    }
    Ok(Answer {
        prediction,
        features,
        input,
        cached: false,
    })
}

/// A cache entry, if it is whole; anything else is a miss (and is overwritten).
fn from_cache(text: &str) -> Option<Answer> {
    let cached: CachedAnswer = serde_json::from_str(text).ok()?;
    let input: [u8; INPUT_LEN] = hex::decode(&cached.input).ok()?.try_into().ok()?;
    if !cached.probabilities.iter().all(|p| p.is_finite()) {
        return None;
    }
    let prediction = Prediction::from_probabilities(&cached.probabilities);
    Some(Answer {
        prediction,
        features: cached.features,
        input,
        cached: true,
    })
}

#[derive(Serialize)]
struct Dependencies {
    database: bool,
    cache: bool,
    model: bool,
}

#[derive(Serialize)]
struct HealthDetails {
    database: String,
    cache: &'static str,
    model: String,
    /// The version each line serves, as loaded in this container.
    models: std::collections::BTreeMap<String, String>,
    default_line: Option<String>,
}

#[derive(Serialize)]
struct HealthResponse {
    status: &'static str,
    service: &'static str,
    timestamp: String,
    uptime_seconds: u64,
    dependencies: Dependencies,
    details: HealthDetails,
}

/// `/health`: 200 when the database answers and the production model is loaded (the
/// cache only degrades it), 503 otherwise. No token needed; nothing about the caller.
async fn health(app: &App, _cx: Ctx<'_, Anyone>) -> HandlerResult {
    let database =
        tokio::time::timeout(Duration::from_secs(2), app.registry.read_pointer_now()).await;
    let (database_ok, database_detail) = match database {
        Ok(Ok(_)) => (true, "ok".to_owned()),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "health: database check failed");
            (false, "unavailable".to_owned())
        }
        Err(_) => (false, "timed out".to_owned()),
    };
    let cache = app.cache.status().await;
    let default_line = app.registry.default_line().await.ok();
    let model = match &default_line {
        Some(line) => app.registry.model_for_line(line).await.map(|_| ()),
        None => Err(inferloop::model::registry::RegistryError::NoProduction {
            name: app.registry.model_name().to_owned(),
            line: "default".into(),
        }),
    };
    let (model_ok, model_detail) = match model {
        Ok(()) => (true, "ok".to_owned()),
        Err(err) => {
            tracing::error!(error = %err, "health: production model unavailable");
            (false, "unavailable".to_owned())
        }
    };
    let healthy = database_ok && model_ok;
    let status = match (healthy, cache) {
        (false, _) => "unhealthy",
        (true, CacheStatus::Unavailable) => "degraded",
        (true, _) => "healthy",
    };
    let body = HealthResponse {
        status,
        service: SERVICE,
        timestamp: inferloop::time::now_rfc3339(),
        uptime_seconds: app.started.elapsed().as_secs(),
        dependencies: Dependencies {
            database: database_ok,
            cache: cache == CacheStatus::Available,
            model: model_ok,
        },
        details: HealthDetails {
            database: database_detail,
            cache: match cache {
                CacheStatus::Available => "ok",
                CacheStatus::Unavailable => "unavailable",
                CacheStatus::NotConfigured => "not_configured",
            },
            model: model_detail,
            models: app.registry.loaded_versions().await.into_iter().collect(),
            default_line,
        },
    };
    let code = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok(json_response(code, &body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_entries_round_trip_and_damage_is_a_miss() {
        let features = DriftFeatures {
            input: inferloop::model::preprocess::InputFeatures {
                raw_width: 28,
                raw_height: 28,
                mean_brightness: 0.1,
                ink_aspect_ratio: 1.0,
                ink_box_share: 0.5,
                input_mean: 0.1,
                input_ink_ratio: 0.1,
            },
            top_probability: 0.9,
            entropy: 0.3,
            predicted_digit: 3,
        };
        let mut probabilities = [0.01f32; 10];
        probabilities[3] = 0.91;
        let text = serde_json::to_string(&CachedAnswer {
            probabilities,
            features,
            input: hex::encode([7u8; INPUT_LEN]),
        })
        .unwrap();
        let hit = from_cache(&text).expect("a whole entry is a hit");
        assert!(hit.cached);
        assert_eq!(hit.prediction.digit, 3);
        assert_eq!(hit.input, [7u8; INPUT_LEN]);
        assert!(from_cache("{").is_none());
        assert!(from_cache(&text.replace(&hex::encode([7u8; 4]), "zz")).is_none());
        let short = serde_json::to_string(&CachedAnswer {
            probabilities,
            features,
            input: hex::encode([7u8; 10]),
        })
        .unwrap();
        assert!(from_cache(&short).is_none());
    }

    #[test]
    fn settings_have_the_documented_defaults() {
        let env = Env::new(|name| match name {
            "PREDICTIONS_TABLE" => Some("p".into()),
            "MODELS_TABLE" => Some("m".into()),
            "MODELS_BUCKET" => Some("b".into()),
            _ => None,
        });
        let s = PredictSettings::from_env(&env).unwrap();
        assert_eq!(s.rate_limit_per_hour, 1000);
        assert_eq!(s.ab.v2_percent, 50);
        assert_eq!(s.pointer_ttl, Duration::from_secs(60));
        assert_eq!(s.cache_timeout, Duration::from_millis(50));
        assert_eq!(s.cache_ttl, Duration::from_secs(600));
        assert_eq!(s.retention, Duration::from_secs(90 * 86_400));
        assert_eq!(s.model_name, "mnist");
        let bad = Env::new(|name| match name {
            "PREDICTIONS_TABLE" | "MODELS_TABLE" | "MODELS_BUCKET" => Some("x".into()),
            "AB_V2_PERCENT" => Some("150".into()),
            _ => None,
        });
        assert!(PredictSettings::from_env(&bad).is_err());
    }
}
