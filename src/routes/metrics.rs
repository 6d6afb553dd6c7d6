//! `GET /metrics`: the counters in the OpenMetrics text format Prometheus scrapes.

use actix_web::{web, HttpResponse};

/// The current metrics.
pub async fn metrics(state: web::Data<super::AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(state.metrics.encode())
}
