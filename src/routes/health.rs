//! `GET /healthz`: the process is up and serving.

use actix_web::HttpResponse;

/// 200 `ok` while the server accepts work; 503 once it is draining, so a load balancer
/// stops sending new clients here.
pub async fn healthz(state: actix_web::web::Data<super::AppState>) -> HttpResponse {
    if state.shutdown.is_triggered() {
        HttpResponse::ServiceUnavailable()
            .content_type("text/plain; charset=utf-8")
            .body("draining\n")
    } else {
        HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("ok\n")
    }
}
