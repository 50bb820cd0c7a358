//! Prometheus metrics (names in seconds, conventional suffixes), one registry per service
//! instance. The HTTP middleware that fills the request metrics is the `http` module's.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

/// All metrics of one service instance, in their own registry (tests run many side by side).
pub struct Metrics {
    registry: Registry,
    /// Requests by route pattern and status code.
    pub http_requests: IntCounterVec,
    /// Request latency by route pattern.
    pub http_duration: HistogramVec,
    /// ONNX Runtime run time by model.
    pub ort_duration: HistogramVec,
    /// Images per ONNX Runtime run by model.
    pub ort_batch: HistogramVec,
    /// Images generated, by model.
    pub images_generated: IntCounterVec,
    /// Images scored by the feature extractor.
    pub images_scored: IntCounter,
    /// Scoring jobs waiting or running.
    pub jobs_queue_depth: IntGauge,
    /// 1 for the provider each model runs on.
    pub model_provider: IntGaugeVec,
    /// Feature cache lookups by result (`hit`, `miss`).
    pub feature_cache_lookups: IntCounterVec,
    /// Bytes the feature cache holds on disk.
    pub feature_cache_bytes: IntGauge,
    /// Entries (scored sets) in the feature cache.
    pub feature_cache_entries: IntGauge,
    /// Hits over lookups since start (0 before the first lookup).
    pub feature_cache_hit_ratio: prometheus::Gauge,
}

/// Label for requests that matched no route (keeps cardinality bounded).
pub const UNMATCHED: &str = "unmatched";

impl Metrics {
    /// Registers every metric in a fresh registry.
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let http_requests = IntCounterVec::new(
            Opts::new(
                "http_requests_total",
                "HTTP requests by route pattern and status.",
            ),
            &["route", "status"],
        )?;
        let http_duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency.").buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
            ]),
            &["route"],
        )?;
        let ort_duration = HistogramVec::new(
            HistogramOpts::new("ort_run_duration_seconds", "ONNX Runtime session run time.").buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["model"],
        )?;
        let ort_batch = HistogramVec::new(
            HistogramOpts::new("ort_batch_size", "Images per ONNX Runtime run.")
                .buckets(vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]),
            &["model"],
        )?;
        let images_generated = IntCounterVec::new(
            Opts::new("images_generated_total", "Images generated."),
            &["model"],
        )?;
        let images_scored =
            IntCounter::new("images_scored_total", "Images run through the feature extractor.")?;
        let jobs_queue_depth = IntGauge::new("jobs_queue_depth", "Scoring jobs queued or running.")?;
        let model_provider = IntGaugeVec::new(
            Opts::new(
                "model_provider",
                "1 for the execution provider each model runs on.",
            ),
            &["model", "provider"],
        )?;
        let feature_cache_lookups = IntCounterVec::new(
            Opts::new(
                "feature_cache_lookups_total",
                "Feature cache lookups of uploaded sets.",
            ),
            &["result"],
        )?;
        let feature_cache_bytes = IntGauge::new("feature_cache_bytes", "Bytes of features in the cache.")?;
        let feature_cache_entries =
            IntGauge::new("feature_cache_entries", "Scored sets whose features are cached.")?;
        let feature_cache_hit_ratio = prometheus::Gauge::new(
            "feature_cache_hit_ratio",
            "Feature cache hits over lookups since start.",
        )?;
        registry.register(Box::new(feature_cache_lookups.clone()))?;
        registry.register(Box::new(feature_cache_bytes.clone()))?;
        registry.register(Box::new(feature_cache_entries.clone()))?;
        registry.register(Box::new(feature_cache_hit_ratio.clone()))?;
        registry.register(Box::new(http_requests.clone()))?;
        registry.register(Box::new(http_duration.clone()))?;
        registry.register(Box::new(ort_duration.clone()))?;
        registry.register(Box::new(ort_batch.clone()))?;
        registry.register(Box::new(images_generated.clone()))?;
        registry.register(Box::new(images_scored.clone()))?;
        registry.register(Box::new(jobs_queue_depth.clone()))?;
        registry.register(Box::new(model_provider.clone()))?;
        Ok(Metrics {
            registry,
            http_requests,
            http_duration,
            ort_duration,
            ort_batch,
            images_generated,
            images_scored,
            jobs_queue_depth,
            model_provider,
            feature_cache_lookups,
            feature_cache_bytes,
            feature_cache_entries,
            feature_cache_hit_ratio,
        })
    }

    /// Records one ONNX Runtime run of `model` over `batch` images.
    pub fn observe_run(&self, model: &str, batch: usize, seconds: f64) {
        self.ort_duration.with_label_values(&[model]).observe(seconds);
        self.ort_batch.with_label_values(&[model]).observe(batch as f64);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        String::from_utf8(buf).map_err(|e| prometheus::Error::Msg(e.to_string()))
    }
}
